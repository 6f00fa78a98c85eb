"""Valence's Prometheus metrics, all created in one place.

Names carry the `valence_` prefix and their unit; label sets are fixed. Tests and each
worker pass their own `CollectorRegistry`, so nothing here is process-global.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector

# 1 ms .. 30 s, roughly x2 per step: fine where editors feel latency (50-700 ms).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.175,
    0.25,
    0.35,
    0.5,
    0.7,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
)
BATCH_EVENT_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BATCH_TOKEN_BUCKETS: tuple[float, ...] = (
    16,
    64,
    256,
    1024,
    2048,
    4096,
    8192,
    16384,
    32768,
    65536,
)


@dataclass(frozen=True, slots=True)
class ValenceMetrics:
    registry: CollectorRegistry
    events_in: Counter
    events_out: Counter
    events_dead_lettered: Counter
    events_in_flight: Gauge
    last_progress: Gauge
    end_to_end_latency: Histogram
    inference_duration: Histogram
    suggestion_duration: Histogram
    queue_duration: Histogram
    batch_events: Histogram
    batch_tokens: Histogram
    model_info: Info
    model_ready: Gauge
    worker_ready: Gauge
    batch_max_events: Gauge
    batch_max_tokens: Gauge
    consumer_lag: Gauge
    assigned_partitions: Gauge
    rebalances: Counter
    commit_latency: Histogram
    gpu_utilization: Gauge
    gpu_memory_allocated: Gauge
    process: ProcessCollector

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> ValenceMetrics:
        registry = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=registry,
            events_in=Counter(
                "valence_events_in",
                "Input events received (valid or not).",
                ["topic"],
                registry=registry,
            ),
            events_out=Counter(
                "valence_events_out",
                "Scored events acknowledged by the broker.",
                ["topic"],
                registry=registry,
            ),
            events_dead_lettered=Counter(
                "valence_events_dead_lettered",
                "Events sent to the dead-letter topic and acknowledged, by reason.",
                ["reason"],
                registry=registry,
            ),
            events_in_flight=Gauge(
                "valence_events_in_flight",
                "Events received but not yet acknowledged downstream.",
                registry=registry,
            ),
            last_progress=Gauge(
                "valence_last_progress_timestamp_seconds",
                "Unix time at which an input was last acknowledged (scored or dead-lettered), "
                "or the worker started.",
                registry=registry,
            ),
            end_to_end_latency=Histogram(
                "valence_end_to_end_latency_seconds",
                "From the event's produced_at to its scored event acknowledged by the broker.",
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            inference_duration=Histogram(
                "valence_inference_duration_seconds",
                "Duration of one batched model call.",
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            suggestion_duration=Histogram(
                "valence_suggestion_duration_seconds",
                "Duration of the suggestion/attribution step of one batch that asked for any "
                "(part of the model call).",
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            queue_duration=Histogram(
                "valence_queue_duration_seconds",
                "From an event's decoding to the start of its batch's model call.",
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            batch_events=Histogram(
                "valence_batch_size_events",
                "Events per model call.",
                buckets=BATCH_EVENT_BUCKETS,
                registry=registry,
            ),
            batch_tokens=Histogram(
                "valence_batch_size_tokens",
                "Tokens (without padding) per model call.",
                buckets=BATCH_TOKEN_BUCKETS,
                registry=registry,
            ),
            model_info=Info(
                "valence_model", "The model the worker scores with.", registry=registry
            ),
            model_ready=Gauge(
                "valence_model_ready",
                "1 once the model is loaded and warmed up.",
                registry=registry,
            ),
            worker_ready=Gauge(
                "valence_worker_ready",
                "1 while /ready answers 200 (model warm, group joined, not rebalancing); "
                "set on each scrape.",
                registry=registry,
            ),
            # The configured limits, so dashboards can show how full batches are.
            batch_max_events=Gauge(
                "valence_batch_max_size_events",
                "Configured most events in one model call (batch_max_events).",
                registry=registry,
            ),
            batch_max_tokens=Gauge(
                "valence_batch_max_size_tokens",
                "Configured most tokens in one model call (batch_max_tokens).",
                registry=registry,
            ),
            consumer_lag=Gauge(
                "valence_consumer_lag_messages",
                "Log-end offset minus the group's committed offset, per assigned partition.",
                ["topic", "partition"],
                registry=registry,
            ),
            assigned_partitions=Gauge(
                "valence_consumer_assigned_partitions",
                "Partitions assigned to this worker, per topic.",
                ["topic"],
                registry=registry,
            ),
            rebalances=Counter(
                "valence_consumer_rebalances",
                "Consumer group rebalances this worker took part in.",
                registry=registry,
            ),
            commit_latency=Histogram(
                "valence_consumer_commit_latency_seconds",
                "Duration of one offset commit that committed something.",
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            gpu_utilization=Gauge(
                "valence_gpu_utilization_ratio",
                "GPU busy time over the driver's last sample period, 0..1 (needs nvidia-ml-py).",
                ["device"],
                registry=registry,
            ),
            gpu_memory_allocated=Gauge(
                "valence_gpu_memory_allocated_bytes",
                "GPU memory held by this process's tensors.",
                ["device"],
                registry=registry,
            ),
            # CPU seconds, RSS, open fds of this process as valence_process_* (Linux only).
            process=ProcessCollector(namespace="valence", registry=registry),
        )


@dataclass(frozen=True, slots=True)
class GatewayMetrics:
    """The gateway's metrics (`valence gateway`), in their own registry like the worker's."""

    registry: CollectorRegistry
    requests: Counter
    request_duration: Histogram
    open_sockets: Gauge
    events_accepted: Counter
    events_rejected: Counter
    scored_events_received: Counter
    scored_events_pushed: Counter
    slow_clients_dropped: Counter
    process: ProcessCollector

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> GatewayMetrics:
        registry = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "valence_gateway_requests",
                "HTTP requests answered, by route template, method and status code.",
                ["route", "method", "status"],
                registry=registry,
            ),
            request_duration=Histogram(
                "valence_gateway_request_duration_seconds",
                "From a request's arrival to its response (WebSocket/SSE: to the upgrade).",
                ["route"],
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            open_sockets=Gauge(
                "valence_gateway_open_sockets",
                "Open document streams, by kind (websocket, sse).",
                ["kind"],
                registry=registry,
            ),
            events_accepted=Counter(
                "valence_gateway_events_accepted",
                "Editor events acknowledged by the broker and answered 202.",
                registry=registry,
            ),
            events_rejected=Counter(
                "valence_gateway_events_rejected",
                "Editor events refused with 400, by dead-letter reason.",
                ["reason"],
                registry=registry,
            ),
            scored_events_received=Counter(
                "valence_gateway_scored_events_received",
                "Scored events read from the output topic.",
                registry=registry,
            ),
            scored_events_pushed=Counter(
                "valence_gateway_scored_events_pushed",
                "Scored events handed to open document streams.",
                registry=registry,
            ),
            slow_clients_dropped=Counter(
                "valence_gateway_slow_clients_dropped",
                "Streams closed because their client fell gateway_socket_queue events behind.",
                registry=registry,
            ),
            process=ProcessCollector(namespace="valence", registry=registry),
        )
