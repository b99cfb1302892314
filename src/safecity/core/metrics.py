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
