"""Which offences the installed models can detect: what the review page and the API say plainly."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OffenceDetection(BaseModel):
    """Whether a model-judged offence (helmet, seat belt) is detected at all, and where it is switched on."""

    offence: str = Field(title="Offence", description="no_helmet or no_seat_belt.")
    task: str = Field(title="Model task", description="The registry task whose model judges it.")
    detected: bool = Field(title="Detected", description="Whether a model for the task is installed here.")
    model: str | None = Field(default=None, title="Model", description="The installed model, if any.")
    licence: str | None = Field(default=None, title="Licence", description="The model's licence.")
    statement: str = Field(title="Statement", description="In plain words, for the page.")
    cameras: list[str] = Field(
        default_factory=list, title="Cameras", description="ANPR cameras with this check switched on."
    )
    review: str = Field(
        default="always reviewed by an officer: never issued automatically",
        title="Review",
        description="How its violations are decided.",
    )
