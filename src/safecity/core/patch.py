"""The base of every PATCH body: a field left out stays as it is, and `null` is refused unless it clears.

A column that may not be empty (a camera's latitude, a hot-list entry's reason) cannot take `null`;
before this base, such a PATCH reached the database and came back as a 500. Fields listed in
`clearable` take `null` to mean "empty it"; the published schema says which is which:

    class CameraPatch(Patch):
        clearable: ClassVar[frozenset[str]] = frozenset({"username", "password"})
        name: str | None = None
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


def _schema_without_null(schema: dict[str, Any], model: type[BaseModel]) -> None:
    clearable: frozenset[str] = getattr(model, "clearable", frozenset())
    for name, field in schema.get("properties", {}).items():
        options = field.get("anyOf")
        if name in clearable or not isinstance(options, list):
            continue
        kept = [option for option in options if option.get("type") != "null"]
        field.pop("anyOf")
        if field.get("default", ...) is None:
            field.pop("default")
        if len(kept) == 1:
            field.update(kept[0])
        else:
            field["anyOf"] = kept


class Patch(BaseModel):
    """Changes to one record; fields left out stay, `null` only clears the fields in `clearable`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_schema_without_null)

    #: Fields to which `null` means "empty it"; every other field refuses `null`.
    clearable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_it_clears(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.clearable:
            raise PydanticCustomError("null_refused", "may not be null; leave it out to keep its value")
        return value
