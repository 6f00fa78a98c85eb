"""A local single-node Apache Kafka 4.x broker built from Maven Central jars."""
