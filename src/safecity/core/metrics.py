"""Prometheus metrics shared by every domain."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "safecity_events_total",
    "Events seen on the bus, by type (in a city each is counted by one serve: sum over the serves)",
    ["type"],
    registry=REGISTRY,
)
ALERTS = Counter("safecity_alerts_total", "Alerts raised, by kind", ["kind"], registry=REGISTRY)
FRAMES = Counter("safecity_frames_analysed_total", "Frames analysed by worker pipelines", registry=REGISTRY)
LIVE_CLIENTS = Gauge("safecity_live_clients", "Browsers connected to the live feed", registry=REGISTRY)
HANDLER_SECONDS = Histogram(
    "safecity_handler_seconds", "Time bus handlers take, by consumer", ["consumer"], registry=REGISTRY
)

# The pipeline itself: how consumers keep up, what they give up on, how long events take to land.
BUS_HANDLED = Counter(
    "safecity_bus_handled_total",
    "Events handled by consumer groups, by consumer",
    ["consumer"],
    registry=REGISTRY,
)
BUS_BATCH_SIZE = Histogram(
    "safecity_bus_batch_size",
    "Events per handled batch, by consumer",
    ["consumer"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
    registry=REGISTRY,
)
BUS_BATCH_SECONDS = Histogram(
    "safecity_bus_batch_seconds", "Time a consumer takes for one batch", ["consumer"], registry=REGISTRY
)
BUS_EVENT_LATENCY = Histogram(
    "safecity_bus_event_latency_seconds",
    "From the moment an event describes to its effect committed, by consumer",
    ["consumer"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
BUS_INFRA_RETRIES = Counter(
    "safecity_bus_infrastructure_retries_total",
    "Batches retried because the database, bus or disk was unavailable",
    ["consumer"],
    registry=REGISTRY,
)
BUS_DEAD_LETTERS = Counter(
    "safecity_bus_dead_letters_total", "Events given up on, by consumer", ["consumer"], registry=REGISTRY
)
BUS_LAG = Gauge(
    "safecity_bus_consumer_lag", "Events waiting for a consumer group", ["consumer"], registry=REGISTRY
)
OUTBOX_PENDING = Gauge(
    "safecity_outbox_pending", "Committed events not yet published (outbox rows)", registry=REGISTRY
)
JOB_RUNS = Counter(
    "safecity_job_runs_total", "Periodic job runs, by job and outcome", ["job", "outcome"], registry=REGISTRY
)
LEASE_MOVES = Counter(
    "safecity_lease_moves_total",
    "Camera leases this process took over from another worker (failover or rebalancing)",
    registry=REGISTRY,
)
CAMERAS_HELD = Gauge(
    "safecity_worker_cameras_held", "Cameras this worker holds a lease on", registry=REGISTRY
)
SPOOL_DEPTH = Gauge(
    "safecity_worker_spool_depth", "Events waiting in the worker's local spool for the bus", registry=REGISTRY
)
SPOOL_DROPPED = Counter(
    "safecity_worker_spool_dropped_total",
    "Events dropped because the worker's spool was full",
    registry=REGISTRY,
)
PIPELINE_FAULTS = Counter(
    "safecity_pipeline_faults_total", "Camera pipelines reported stalled or failing", registry=REGISTRY
)

# The media store by retention class, as the last sweep or size report found it.
MEDIA_BYTES = Gauge(
    "safecity_media_bytes", "Bytes in the media store, by retention class", ["class"], registry=REGISTRY
)
MEDIA_OBJECTS = Gauge(
    "safecity_media_objects", "Objects in the media store, by retention class", ["class"], registry=REGISTRY
)
