"""Configuration: `SAFECITY_*` environment variables over an optional YAML file over defaults.

Every field carries a title and a description, so the same source feeds validation, `safecity config
show` and the documentation. An invalid value stops start-up with a message naming the field.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from safecity.core.clock import DEFAULT_DISPLAY_ZONE, zone_named
from safecity.core.errors import InvalidInput


class Settings(BaseSettings):
    """SafeCity's configuration."""

    model_config = SettingsConfigDict(env_prefix="SAFECITY_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        default=Path("data"),
        title="Data folder",
        description="Where the SQLite database, media (crops, clips, evidence) and recordings live.",
    )
    database_url: str | None = Field(
        default=None,
        title="Database URL",
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Empty: SQLite in the data dir.",
    )
    bus: Literal["memory", "nats"] = Field(
        default="memory",
        title="Event bus",
        description="'memory' for one process (embedded), 'nats' for NATS JetStream (city scale).",
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        title="NATS URL",
        description="NATS server(s) used when bus is 'nats'; comma-separated for a cluster.",
    )
    nats_stream: str = Field(
        default="SAFECITY",
        title="NATS stream",
        description="JetStream stream holding every SafeCity event (subjects safecity.>).",
    )
    nats_max_age_days: float = Field(
        default=7.0,
        gt=0,
        title="Stream age limit",
        description="Days the stream keeps an event; an event no consumer handled by then is dropped, so "
        "keep this above the longest outage you plan for.",
    )
    nats_max_bytes: int = Field(
        default=20 * 1024**3,
        ge=1024**2,
        title="Stream size limit",
        description="Bytes the stream may hold; past it the oldest events are dropped (about 600 bytes "
        "an event: 20 GiB holds some 35 million).",
    )
    consumer_in_flight: int = Field(
        default=2,
        ge=1,
        le=16,
        title="Batches in flight",
        description="Batches each consumer group fetches and handles at once in one process.",
    )
    consumer_linger_ms: int = Field(
        default=200,
        ge=0,
        le=2000,
        title="Batch gathering time",
        description="Once its backlog is drained, a process fetches for each consumer group at most "
        "this often (ms), so a moderate flow is handled in batches (most of a batch's cost is per "
        "batch) at the price of up to this much latency; 0 handles each event as it comes.",
    )
    notices_in_serve: bool = Field(
        default=True,
        title="Notices in serve",
        description="Render and send challan notices inside `serve`; set false at city scale and run "
        "`safecity challans notice-worker` processes, so PDF work never slows event intake.",
    )
    lag_alert_events: int = Field(
        default=10_000,
        ge=1,
        title="Backlog alert",
        description="A consumer group this many events behind, and falling further behind, raises an alert.",
    )
    handled_keys_days: float = Field(
        default=8.0,
        gt=0,
        title="Handled keys kept",
        description="Days the record of handled event keys is kept (exactly-once needs it longer than "
        "the stream keeps events).",
    )
    host: str = Field(default="127.0.0.1", title="Listen host", description="Address the web server binds.")
    port: int = Field(
        default=8000, ge=1, le=65535, title="Listen port", description="Port of the web server."
    )
    secret_key: str | None = Field(
        default=None,
        title="Secret key",
        description="Signs the CSRF tokens of web sessions and the live socket's tickets; the same on every "
        "serve of a city, at least 32 random characters. Empty: generated once in the data folder "
        "(embedded only; a city refuses to start without one).",
    )
    ssl_certfile: Path | None = Field(
        default=None,
        title="TLS certificate",
        description="PEM certificate (with its chain) for `serve` to speak HTTPS itself; needs ssl_keyfile. "
        "Under TLS cookies are Secure and responses carry HSTS.",
    )
    ssl_keyfile: Path | None = Field(
        default=None,
        title="TLS private key",
        description="PEM private key of ssl_certfile (readable by the service user only).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        title="Trusted proxies",
        description="Addresses or CIDRs of the reverse proxies in front of `serve`, comma-separated; only a "
        "request coming straight from one has its X-Forwarded-For/-Proto/-Host honoured. Empty: none.",
    )
    metrics_token: str | None = Field(
        default=None,
        title="Metrics token",
        description="Bearer token Prometheus sends to read /metrics (Authorization: Bearer …), from any "
        "address. Empty: /metrics answers only the metrics addresses.",
    )
    metrics_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        title="Metrics addresses",
        description="Addresses or CIDRs allowed to read /metrics without the token, comma-separated "
        "(default: this host only).",
    )
    max_body_bytes: int = Field(
        default=1024**2,
        ge=1024,
        title="Request body limit",
        description="Largest body a signed-in JSON request may send; larger ones get 413 before being read.",
    )
    max_upload_bytes: int = Field(
        default=64 * 1024**2,
        ge=1024,
        title="Upload limit",
        description="Largest body of an upload route (photos, CSV imports, evidence), signed in.",
    )
    max_anonymous_body_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        title="Anonymous body limit",
        description="Largest body a caller without credentials may send (sign-in, the citizens' portal).",
    )
    session_hours: float = Field(
        default=12, gt=0, title="Session length", description="Hours a web session (a sign-in) stays valid."
    )
    login_attempts_per_minute: int = Field(
        default=5,
        ge=1,
        title="Login attempts",
        description="Sign-in attempts allowed per client address in one minute (a browser that signed "
        "in to the account before is exempt); more are refused until the minute is over.",
    )
    login_free_failures: int = Field(
        default=3,
        ge=1,
        title="Free failed sign-ins",
        description="Failed sign-ins to one account before each next attempt from a new browser waits.",
    )
    login_delay_max_s: float = Field(
        default=300,
        gt=0,
        title="Longest sign-in delay",
        description="Longest wait between attempts on one account (the wait doubles with each failure up "
        "to this); never a lock-out, and browsers that signed in before do not wait.",
    )
    token_max_days: float = Field(
        default=30,
        gt=0,
        title="Longest token lifetime",
        description="Days an API token may live at most; older tokens are refused, whatever they say.",
    )
    session_token_max_hours: float = Field(
        default=24,
        gt=0,
        title="Token lifetime from a web session",
        description="Hours a token minted from a web session may live at most (longer ones: "
        "`safecity users token`).",
    )
    totp_required: bool = Field(
        default=False,
        title="Second factor required",
        description="Admins, supervisors and investigators must set up a TOTP authenticator before "
        "anything else.",
    )
    totp_issuer: str = Field(
        default="SafeCity",
        min_length=1,
        max_length=60,
        title="TOTP issuer",
        description="The name authenticator apps show beside the account.",
    )
    display_timezone: str = Field(
        default=DEFAULT_DISPLAY_ZONE,
        title="Display time zone",
        description="IANA time zone people read every date and time in (pages, notices, SMS, e-mail, CLI), "
        "and whose days deadlines end with; times are stored in UTC whatever this says.",
    )
    public_base_url: str | None = Field(
        default=None,
        title="Public address",
        description="The address citizens reach this centre at (https://echallan.example.gov.pk): notices, "
        "QR codes and SMS print <address>/portal. Empty: embedded prints its own listen address with a "
        "warning; a city (bus=nats) refuses to render notices. The demo sets its own.",
    )
    alert_escalate_after_s: float = Field(
        default=120,
        ge=0,
        title="Escalate unacknowledged alerts after (s)",
        description="A priority-1 alert nobody acknowledged this long after it was raised is escalated to "
        "the supervisors (their pages sound and mark it); 0: never.",
    )
    ntp_server: str | None = Field(
        default=None,
        max_length=253,
        title="NTP server",
        description="Camera clocks are measured against this NTP server (host name or address). Empty: "
        "against this host's clock, which the kernel must report NTP-synchronised.",
    )
    clock_probe_every_s: float = Field(
        default=3600,
        ge=0,
        title="Camera clock probe interval (s)",
        description="How often every camera with an ONVIF service has its clock measured; 0: never "
        "(clock checks are then recorded by hand with `safecity enforcement clock-check`).",
    )
    plate_region: Literal["pk", "us", "eu", "br", "auto"] = Field(
        default="pk", title="Plate region", description="Default plate-format rules for ANPR reads."
    )
    plate_read_retention_days: int = Field(
        default=90, ge=1, title="Plate-read retention", description="Days plate reads are kept before purge."
    )
    media_retention_days: dict[str, Annotated[int, Field(ge=0, le=36500)]] = Field(
        default_factory=dict,
        title="Media retention",
        description="Days a stored object is kept for each kind of row that claims it (e.g. "
        '{"violation": 1825, "clip": 90}); 0 keeps it while its row lives. Kinds not named keep their '
        "defaults (`safecity media status` lists them); plate_read follows plate_read_retention_days.",
    )
    media_orphan_grace_hours: float = Field(
        default=24.0,
        ge=0,
        title="Media orphan grace",
        description="Hours an object nobody claims waits before the sweep removes it: longer than any "
        "event may wait on the bus before the row that claims its pictures is written.",
    )
    face_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        title="Face threshold",
        description="Default face-match similarity threshold; empty uses the encoder's measured default "
        "(each encoder has its own scale: set it again when you change face_encoder).",
    )
    face_encoder: Literal["mobilefacenet", "dlib", "insightface-mbf"] = Field(
        default="mobilefacenet",
        title="Face encoder",
        description="'mobilefacenet' (MobileFaceNet 192-d, shipped, the measured default), 'dlib' (dlib's "
        "ResNet 128-d) or 'insightface-mbf' (InsightFace's ArcFace MobileFaceNet 512-d: a plug-in with "
        "non-commercial weights, installed by `safecity models install insightface-mbf "
        "--accept-licence`). Changing it re-encodes the watch-list photos (`safecity faces reencode`); "
        "embeddings of two encoders are never compared.",
    )
    face_detector: Literal["blazeface", "dlib"] = Field(
        default="blazeface",
        title="Face detector",
        description="'blazeface' (BlazeFace full-range, shipped: faces from 20 px in whole frames) or "
        "'dlib' (dlib's HOG with small-face fallbacks).",
    )
    watchlist_closed_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        title="Closed watch-list entries: biometric data kept (days)",
        description="Days after a watch-list entry is refused, removed or expired before its photos and "
        "face embeddings are deleted (the entry's record and its matches stay; a hold keeps them).",
    )
    image_max_megapixels: float = Field(
        default=40,
        gt=0,
        le=1000,
        title="Image pixel limit",
        description="Largest image, in megapixels, any photo, upload, plate image or evidence frame may "
        "declare; a larger one is refused from its header, before it is decoded.",
    )
    image_max_bytes: int = Field(
        default=50 * 1024**2,
        ge=1024,
        title="Image size limit",
        description="Largest image file, in bytes, that is decoded.",
    )
    import_max_bytes: int = Field(
        default=100 * 1024**2,
        ge=1024,
        title="Import size limit",
        description="Largest CSV or YAML file an import reads (cameras, hot lists, the vehicle registry).",
    )
    import_max_rows: int = Field(
        default=500_000,
        ge=1,
        title="Import row limit",
        description="Most rows one import may hold; split a larger file.",
    )
    import_max_field_chars: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        title="Import field limit",
        description="Longest value, in characters, of one CSV field.",
    )
    dispatch_speed_kmh: float = Field(
        default=25.0,
        gt=0,
        le=120,
        title="Dispatch speed",
        description="Average urban speed of patrol units, for the ETA of the nearest units.",
    )
    field_update_keys_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        title="Officer's phone: update keys kept (days)",
        description="Days the key of each arrival or outcome sent from an officer's phone is kept, so a "
        "phone's offline queue sent again is applied once; older keys are deleted once a day.",
    )
    map_tiles: Path | None = Field(
        default=None,
        title="Map tiles",
        description="An .mbtiles or .pmtiles file of the city, raster or vector (MVT: an OpenMapTiles or "
        "Protomaps extract of OpenStreetMap), that the app serves to its maps; empty: the packaged coast "
        "and neighbourhood names. "
        "Check a file with `safecity map check FILE`.",
    )
    road_graph: Path | None = Field(
        default=None,
        title="Road graph",
        description="A GeoJSON file of the city's roads (OpenStreetMap ways with their highway, oneway and "
        "maxspeed tags, e.g. from `osmium export`) that the officer's phone routes along, offline; empty: "
        "a straight line to the incident. Check a file with `safecity map roads FILE`.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", title="Log level", description="Logging verbosity."
    )
    worker_id: str | None = Field(
        default=None,
        max_length=100,
        title="Worker id",
        description="Names this worker in the cluster; unique among running workers. Empty: <host>-<pid>.",
    )
    worker_capacity: int = Field(
        default=10_000,
        ge=1,
        title="Worker capacity",
        description="Most cameras this worker analyses at once, and its weight in the fair share; size it "
        "to the host (the default sets no practical limit: shares are then equal).",
    )
    lease_bucket: str = Field(
        default="safecity-cameras",
        pattern=r"^[-_A-Za-z0-9]+$",
        title="Lease bucket",
        description="Key-value bucket (JetStream KV in a city) holding worker heartbeats and camera leases.",
    )
    lease_heartbeat_s: float = Field(
        default=2.0,
        gt=0,
        title="Lease heartbeat",
        description="Seconds between a worker's heartbeats and renewals of its camera leases.",
    )
    lease_ttl_s: float = Field(
        default=6.0,
        gt=0,
        title="Lease time-out",
        description="A worker or lease not renewed for this long is dead, and its cameras go to others.",
    )
    lease_handover_per_round: int = Field(
        default=8,
        ge=1,
        title="Hand-overs per round",
        description="Cameras a worker hands to a joining one per round (half a heartbeat), gradually.",
    )
    pipeline_stall_s: float = Field(
        default=30.0,
        gt=0,
        title="Pipeline stall time",
        description="A leased camera with no frame analysed (or every frame failing) this long is a fault.",
    )
    unheld_report_s: float = Field(
        default=15.0,
        gt=0,
        title="Unheld camera report",
        description="An enabled camera no live worker has held this long is reported offline.",
    )
    worker_spool_dir: Path | None = Field(
        default=None,
        title="Worker spool folder",
        description="Folder of the worker's spool (worker-spool.db): a local disk of the worker's own, never "
        "a shared volume. Empty: the data folder.",
    )
    worker_spool_max_events: int = Field(
        default=200_000,
        ge=1,
        title="Worker spool size",
        description="Events a worker keeps on disk while the bus is down; beyond this, new events drop.",
    )
    worker_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        title="Worker metrics port",
        description="Port where `safecity worker` serves /metrics for Prometheus (leases, spool, frames); "
        "0: none.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        title="Worker metrics address",
        description="Address the worker's /metrics listens on: this host only by default; set the "
        "worker's own network address (or 0.0.0.0 behind a firewall) for a Prometheus elsewhere.",
    )
    audit_key_file: Path | None = Field(
        default=None,
        title="Audit key file",
        description="File of the audit log's HMAC keys (mode 0600, oldest first, the newest signs), kept "
        "outside the database. Empty: SAFECITY_AUDIT_KEY, else (embedded only) audit.keys beside the "
        "SQLite database, made on first use. A city must name one (`safecity audit new-key`).",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        title="Audit keys",
        description="The audit log's HMAC keys themselves, base64, comma-separated, oldest first (instead of "
        "a key file).",
    )
    audit_checkpoint_file: Path | None = Field(
        default=None,
        title="Audit checkpoint file",
        description="Append-only file of signed checkpoints of the audit log (row count, last row and "
        "hash), away from the database. Empty (embedded only): audit-checkpoints.log beside the SQLite "
        "database. A city must name one on storage every serve reaches.",
    )
    data_key_file: Path | None = Field(
        default=None,
        title="Data key file",
        description="File of the AES-256 keys that encrypt data at rest (camera passwords, TOTP secrets, "
        "face embeddings, photos, notices, evidence frames): mode 0600, oldest first, the newest "
        "encrypts; kept away from the data folder and the database. Empty: SAFECITY_DATA_KEY, else "
        "(embedded only) data.keys in the data folder, made on first use. A city must name one "
        "(`safecity keys new`), the same on every serve and worker.",
    )
    data_key: SecretStr | None = Field(
        default=None,
        title="Data keys",
        description="The data keys themselves, base64, comma-separated, oldest first (instead of a file).",
    )
    payment_gateway_secrets: SecretStr | None = Field(
        default=None,
        title="Payment gateway secrets",
        description="Each payment gateway's HMAC secret for signing its callbacks, as "
        "name=secret pairs separated by commas (names: 1bill, jazzcash, easypaisa, raast). A gateway "
        "without a secret is refused: its callbacks never record a payment.",
    )
    payment_callback_window_s: int = Field(
        default=300,
        ge=30,
        le=3600,
        title="Payment callback window",
        description="Seconds a signed payment callback's timestamp may differ from this server's clock; "
        "older (replayed) or future-dated callbacks are refused.",
    )
    audit_checkpoint_s: float = Field(
        default=300.0,
        gt=0,
        title="Audit checkpoint interval",
        description="Seconds between signed checkpoints of the audit log; rows newer than the last one are "
        "anchored at the next.",
    )
    bodyworn_retention_days: dict[str, Annotated[int, Field(ge=1, le=36500)]] = Field(
        default_factory=lambda: {"uncategorised": 365, "routine": 90, "traffic_stop": 365, "arrest": 2555},
        title="Body-worn retention",
        description="Days a body-worn recording is kept by category, from when it was recorded (e.g. "
        '{"routine": 90, "traffic_stop": 365, "arrest": 2555}); an item in several categories is kept for '
        "the longest; categories not named here are refused at import. Items in an open case or under a "
        "hold are never deleted automatically.",
    )
    bodyworn_recovery_days: int = Field(
        default=7,
        ge=1,
        le=365,
        title="Body-worn recovery window",
        description="Days a deleted body-worn item can still be restored before its file is released to "
        "the media sweep.",
    )
    bodyworn_verify_days: float = Field(
        default=30.0,
        gt=0,
        title="Body-worn re-verification",
        description="Each body-worn original is hashed again at least this often (days); a mismatch raises a "
        "priority-1 alert.",
    )
    bodyworn_upload_hours: float = Field(
        default=72.0,
        gt=0,
        title="Unfinished upload lifetime",
        description="Hours an unfinished chunked upload waits for its next chunk before it is abandoned and "
        "its partial file removed.",
    )
    bodyworn_nearby_m: float = Field(
        default=300.0,
        gt=0,
        le=5000,
        title="Body-worn nearby cameras",
        description="Metres from the officer's GPS track within which a fixed camera is shown beside a "
        "body-worn recording, with its footage of the same moments (a request may ask for another distance).",
    )

    @field_validator("trusted_proxies", "metrics_addresses", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for item in value:
                try:
                    ipaddress.ip_network(str(item), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{item!r} is not an address or CIDR (e.g. 10.0.0.5 or 10.0.0.0/24)"
                    ) from None
        return value

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return zone_named(value).key

    @field_validator("public_base_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = urlsplit(value.strip())
        try:
            port_ok = url.port is None or url.port > 0
        except ValueError:
            port_ok = False
        if (
            url.scheme not in {"http", "https"}
            or not url.hostname
            or not port_ok
            or url.query
            or url.fragment
        ):
            raise ValueError(
                f"{value!r} is not an absolute http(s) address: give scheme and host, e.g. "
                "https://echallan.example.gov.pk (no query, no fragment)"
            )
        return value.strip().rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        """Returns the database URL, defaulting to SQLite in the data folder."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'safecity.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        """Returns the folder of the content-addressed media store."""
        return self.data_dir / "media"


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by SAFECITY_CONFIG (keys are field names without the prefix)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("SAFECITY_CONFIG")
        if not path:
            return {}
        file = Path(path)
        if not file.is_file():
            raise InvalidInput(
                f"config file {file} does not exist", hint="fix SAFECITY_CONFIG or create the file"
            )
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InvalidInput(f"config file {file} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidInput(f"config file {file} must hold a mapping of setting names to values")
        return data


def load_settings(**overrides: Any) -> Settings:
    """Returns validated settings; an invalid value raises InvalidInput naming the field."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]) or "settings"
            problems.append(f"{name} (SAFECITY_{name.upper()}): {err['msg']}")
        raise InvalidInput(
            "invalid configuration: " + "; ".join(problems),
            hint="fix the environment variable or the YAML file named by SAFECITY_CONFIG",
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Returns the process-wide settings, loaded once."""
    return load_settings()
