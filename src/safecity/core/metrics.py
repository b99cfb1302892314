"""Prometheus metrics shared by every domain."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter("safecity_events_total", "Events seen on the bus, by type", ["type"], registry=REGISTRY)
ALERTS = Counter("safecity_alerts_total", "Alerts raised, by kind", ["kind"], registry=REGISTRY)
FRAMES = Counter("safecity_frames_analysed_total", "Frames analysed by worker pipelines", registry=REGISTRY)
LIVE_CLIENTS = Gauge("safecity_live_clients", "Browsers connected to the live feed", registry=REGISTRY)
HANDLER_SECONDS = Histogram(
    "safecity_handler_seconds", "Time bus handlers take, by consumer", ["consumer"], registry=REGISTRY
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
