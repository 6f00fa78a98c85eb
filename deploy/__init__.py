"""Deployment helpers: the local Apache Kafka broker (deploy.kafka)."""
