"""Cameras: the registry of every feed the centre watches, with its analysis settings, zones and lines."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, column_property, mapped_column

from safecity.core.camera_config import (
    AnalysisSettings,
    CameraConfig,
    Decode,
    Line,
    LinePurpose,
    Lines,
    PtzControl,
    Zone,
    ZonePurpose,
    Zones,
)
from safecity.core.clock import utcnow
from safecity.core.crypto import EncryptedString
from safecity.core.db import Base
from safecity.core.patch import Patch
from safecity.video.onvif import onvif_url_for

# The configuration's models live in core/ so the worker reads them without importing this domain.
__all__ = [
    "AnalysisSettings",
    "CameraConfig",
    "Decode",
    "Line",
    "LinePurpose",
    "Lines",
    "PtzControl",
    "Zone",
    "ZonePurpose",
    "Zones",
]


class CameraKind(StrEnum):
    fixed = "fixed"
    anpr = "anpr"
    face = "face"
    bodycam = "bodycam"


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    district: Mapped[str] = mapped_column(String(100), index=True)
    latitude: Mapped[float]
    longitude: Mapped[float]
    stream_url: Mapped[str] = mapped_column(String(1000), default="")
    # A second, smaller stream of the same camera (same credentials), for the video wall's tiles.
    substream_url: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    username: Mapped[str | None] = mapped_column(String(200))
    # Sealed under the data key, and loaded only where a stream is opened (`list_cameras(with_credentials=
    # True)`); never shown: `CameraOut` says only whether there is one.
    password: Mapped[str | None] = mapped_column(EncryptedString("cameras.password"), deferred=True)
    has_password: Mapped[bool] = column_property(password.is_not(None))
    enabled: Mapped[bool] = mapped_column(default=True)
    # The typed configuration (core/camera_config.py) as stored: every setting written out.
    analysis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    zones: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The number of the configuration version in force (`CameraConfigVersion`), for evidence to cite.
    config_version: Mapped[int] = mapped_column(default=1, server_default="1")
    health_state: Mapped[str] = mapped_column(String(20), default="unknown", index=True)
    health_detail: Mapped[str] = mapped_column(String(500), default="")
    health_since: Mapped[datetime | None]
    # What the camera's ONVIF service said about PTZ when last asked, and at which address (asked again
    # when the address changes): cameras/ptz/service.py keeps these.
    ptz_found: Mapped[bool | None]
    ptz_checked_url: Mapped[str | None] = mapped_column(String(500))
    ptz_checked_at: Mapped[datetime | None]
    ptz_detail: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def config(self) -> CameraConfig:
        """Returns the camera's typed configuration (settings, zones, lines)."""
        return CameraConfig.model_validate(
            {"analysis": self.analysis, "zones": self.zones, "lines": self.lines}
        )

    @property
    def settings(self) -> AnalysisSettings:
        """Returns the camera's typed analysis settings."""
        return AnalysisSettings.model_validate(self.analysis or {})

    @property
    def onvif_url(self) -> str | None:
        """Returns the camera's ONVIF device service: its setting, or the standard path on its stream host."""
        return onvif_url_for(self.stream_url, self.settings.onvif_url)

    @property
    def ptz(self) -> tuple[str, str]:
        """Returns whether the camera can pan, tilt and zoom (`yes`, `no`, `unknown`) and why, in words."""
        settings = self.settings
        if settings.ptz is PtzControl.off:
            return "no", "PTZ is switched off in the camera's settings (analysis.ptz)"
        url = onvif_url_for(self.stream_url, settings.onvif_url)
        if url is None:
            return "no", "the camera has no ONVIF address: set analysis.onvif_url"
        if self.ptz_found is not None and self.ptz_checked_url == url:
            return ("yes" if self.ptz_found else "no"), self.ptz_detail
        if settings.ptz is PtzControl.on:
            return "yes", "its settings say it has PTZ (analysis.ptz); the camera has not been asked yet"
        return "unknown", "the camera has not been asked yet"


class CameraConfigVersion(Base):
    """One version of a camera's configuration: what it was, who made it, when, and what changed.

    Kept when the camera is removed, so evidence that names a version can always be checked against it.
    """

    __tablename__ = "camera_config_versions"
    __table_args__ = (UniqueConstraint("camera_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(2000), default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """Returns a stream URL without its user and password, and those two (decoded) if it had them."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password) if colon else None


def masked_url(url: str, username: str | None, has_password: bool) -> str:
    """Returns a stream URL as people see it: the user name, never the password (`rtsp://admin:•••@…`)."""
    parts = urlsplit(url)
    if not username or not parts.netloc:
        return url
    userinfo = quote(username, safe="") + (":•••" if has_password else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


class CameraIn(BaseModel):
    """A camera as registered or imported."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        title="Id",
        description="Camera id.",
    )
    name: str = Field(min_length=1, max_length=200, title="Name", description="Human name of the camera.")
    kind: CameraKind = Field(title="Type", description="fixed, anpr, face or bodycam.")
    district: str = Field(min_length=1, max_length=100, title="District", description="District it covers.")
    latitude: float = Field(ge=-90, le=90, title="Latitude", description="WGS84 latitude.")
    longitude: float = Field(ge=-180, le=180, title="Longitude", description="WGS84 longitude.")
    stream_url: str = Field(
        default="", max_length=1000, title="Stream", description="rtsp://, http(s)://, file."
    )
    substream_url: str = Field(
        default="",
        max_length=1000,
        title="Sub-stream",
        description="The camera's second, smaller stream (same user and password), shown on the video wall; "
        "empty: the wall shows the main stream.",
    )
    username: str | None = Field(default=None, title="User", description="Stream user name.")
    password: str | None = Field(default=None, title="Password", description="Stream password (never shown).")
    enabled: bool = Field(default=True, title="Enabled", description="Whether the camera is analysed.")
    analysis: AnalysisSettings = Field(
        default_factory=AnalysisSettings, title="Analysis", description="How the camera is analysed."
    )
    zones: Zones = Field(default_factory=list, title="Zones", description="Named polygons with a purpose.")
    lines: Lines = Field(default_factory=list, title="Lines", description="Named lines with a purpose.")

    @property
    def config(self) -> CameraConfig:
        """Returns the configuration this registration gives the camera."""
        return CameraConfig(analysis=self.analysis, zones=self.zones, lines=self.lines)

    @field_validator("stream_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        known = ("rtsp://", "rtsps://", "http://", "https://", "file://", "synthetic://", "/", "./")
        if value and not value.startswith(known) and not value.endswith((".mp4", ".mkv", ".ts", ".avi")):
            raise ValueError("stream URL must be rtsp://, http(s)://, file:// or a video file path")
        return value

    @field_validator("substream_url")
    @classmethod
    def _substream(cls, value: str) -> str:
        value = cls._known_scheme(value)
        if value and split_credentials(value)[1] is not None:
            raise ValueError("the sub-stream uses the camera's user and password: give its URL without them")
        return value

    @model_validator(mode="after")
    def _credentials_out_of_the_url(self) -> CameraIn:
        # A password typed into the URL goes where it is encrypted, never into the shown stream URL.
        self.stream_url, self.username, self.password = _take_credentials(
            self.stream_url, self.username, self.password
        )
        return self


class CameraPatch(Patch):
    """Changes to a registered camera; fields left out stay as they are, null clears credentials or lists.

    `analysis` changes the settings it names and keeps the others (null there clears an optional one;
    `analysis: null` resets them all to their defaults); `zones` and `lines` are replaced whole.
    """

    clearable: ClassVar[frozenset[str]] = frozenset({"username", "password", "analysis", "zones", "lines"})

    name: str | None = Field(default=None, min_length=1, max_length=200)
    district: str | None = Field(default=None, min_length=1, max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    stream_url: str | None = Field(default=None, max_length=1000)
    substream_url: str | None = Field(default=None, max_length=1000)
    username: str | None = None
    password: str | None = None
    enabled: bool | None = None
    analysis: AnalysisSettings | None = None
    zones: Zones | None = None
    lines: Lines | None = None

    @field_validator("stream_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        return CameraIn._known_scheme(value) if value else value

    @field_validator("substream_url")
    @classmethod
    def _substream(cls, value: str | None) -> str | None:
        return CameraIn._substream(value) if value else value

    @model_validator(mode="after")
    def _credentials_out_of_the_url(self) -> CameraPatch:
        if self.stream_url and split_credentials(self.stream_url)[1] is not None:
            # Assigned, so they count as given: the URL's credentials replace the stored ones.
            self.stream_url, self.username, self.password = _take_credentials(
                self.stream_url, self.username, self.password
            )
        return self


def _take_credentials(
    url: str, username: str | None, password: str | None
) -> tuple[str, str | None, str | None]:
    """Returns the URL without credentials and the user and password it or the fields gave."""
    bare, url_user, url_password = split_credentials(url)
    if url_user is None:
        return url, username, password
    if (username is not None and username != url_user) or (
        password is not None and url_password is not None and password != url_password
    ):
        raise ValueError("the stream URL and the username/password fields give different credentials")
    return bare, url_user or username, url_password if url_password is not None else password


class CameraOut(BaseModel):
    """A camera as shown to users: never its password, which no role may read back."""

    id: str
    name: str
    kind: str
    district: str
    latitude: float
    longitude: float
    stream_url: str = Field(
        description="The stream with its user name; a password shows as ••• (`rtsp://admin:•••@host/…`)."
    )
    substream_url: str = Field(description="The second, smaller stream the wall shows; empty: none.")
    password: None = Field(default=None, description="Always null: a camera's password is never shown.")
    has_password: bool = Field(description="Whether a password is stored (encrypted) for the stream.")
    enabled: bool
    analysis: AnalysisSettings
    zones: list[Zone]
    lines: list[Line]
    config_version: int = Field(description="The configuration version in force (see its history).")
    health_state: str
    health_detail: str
    health_since: datetime | None
    ptz: str = Field(
        description="Whether the camera can pan, tilt and zoom: yes, no or unknown (not asked yet)."
    )
    ptz_detail: str = Field(description="Why, in words (what its ONVIF service said, or its settings).")

    @classmethod
    def of(cls, camera: Camera) -> CameraOut:
        """Returns a registered camera as shown to users (the session must still be open)."""
        # Field by field, never the password: reading it would load and decrypt it for nothing.
        shown = {
            name: getattr(camera, name) for name in cls.model_fields if name not in ("password", "ptz_detail")
        }
        shown["ptz"], shown["ptz_detail"] = camera.ptz
        shown["stream_url"] = masked_url(camera.stream_url, camera.username, camera.has_password)
        return cls.model_validate(shown)


class ConfigChange(BaseModel):
    """One change between two versions of a camera's configuration."""

    field: str = Field(description="What changed: `analysis.decode`, `zones['crossing']`, `lines['stop']`.")
    before: Any = Field(description="Its value before (null: it did not exist).")
    after: Any = Field(description="Its value after (null: removed).")


class ConfigVersionOut(BaseModel):
    """One version of a camera's configuration, as listed in its history."""

    model_config = ConfigDict(from_attributes=True)

    camera_id: str
    version: int = Field(description="1 for the first configuration, one more for each change.")
    created_by: str = Field(description="Who made the change (a user, `cli`, `migration`).")
    created_at: datetime
    note: str = Field(
        description="How it came (registered, changed, imported, migrated) and what was dropped."
    )
    changes: list[ConfigChange]


class ConfigVersionDetail(ConfigVersionOut):
    """One version of a camera's configuration, with the whole configuration it put in force."""

    config: CameraConfig


class ImportReport(BaseModel):
    """What a bulk import did, row by row."""

    created: int = 0
    updated: int = 0
    errors: list[str] = Field(default_factory=list)


from safecity.cameras.ptz import models as _ptz  # noqa: E402, F401
