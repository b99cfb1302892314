"""Property tests of the parsers that read what others send: plate text and bus events.

Whatever arrives, each parser either returns its typed result or raises the error it documents; it
never fails some other way. (The image decoder's headers and the CSV importer have theirs beside
their own specifications, in tests/core.)
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safecity.anpr.models import checked_plate, normalise_plate
from safecity.anpr.regions import normalise
from safecity.core.events import EVENT_TYPES, EventDecodeError, FaceMatch, PlateRead, decode_event

SETTINGS = settings(max_examples=300, derandomize=True, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
plate_like = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789 -.·_/OIQ年", max_size=16)


@SETTINGS
@given(st.text(max_size=40) | plate_like)
def test_normalising_a_plate_is_idempotent_and_drops_every_separator(text: str) -> None:
    plate = normalise_plate(text)
    assert normalise_plate(plate) == plate
    assert not re.search(r"[\s\-.·_/]", plate)
    assert plate == plate.upper()


@SETTINGS
@given(st.text(max_size=40) | plate_like)
def test_a_checked_plate_is_two_to_twelve_letters_and_digits_or_a_value_error(text: str) -> None:
    try:
        plate = checked_plate(text)
    except ValueError as exc:
        assert "is not a plate" in str(exc)
        return
    assert plate == normalise_plate(text)


@SETTINGS
@given(plate_like | st.text(max_size=30), st.sampled_from(["pk", "us", "eu", "br", "auto"]))
def test_region_rules_give_a_plate_of_letters_and_digits_or_nothing(text: str, region: str) -> None:
    candidate = normalise(text, region)
    if candidate is not None:
        assert re.fullmatch(r"[0-9A-Z]+", candidate.plate), candidate
        assert 0 <= candidate.score <= 1


@SETTINGS
@given(json_values)
def test_any_json_is_an_event_or_an_event_decode_error(value: Any) -> None:
    try:
        event = decode_event(value)
    except EventDecodeError:
        return
    assert type(event) in EVENT_TYPES.values()


@SETTINGS
@given(st.sampled_from(sorted(EVENT_TYPES)), st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_an_envelope_of_a_known_type_with_any_fields_decodes_or_says_why(kind: str, fields: dict) -> None:
    try:
        event = decode_event({"type": kind, **fields})
    except EventDecodeError as exc:
        assert str(exc)
        return
    assert event.type == kind


@SETTINGS
@given(
    st.text(min_size=1, max_size=30),
    st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=2, max_size=10),
    st.floats(0, 1),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2400, 1, 1), timezones=st.just(UTC)),
)
def test_an_event_survives_the_wire(key: str, plate: str, confidence: float, at: datetime) -> None:
    sent = PlateRead(key=key, camera_id="khi-0001", plate=plate, confidence=confidence, at=at)
    received = decode_event(json.loads(json.dumps(sent.envelope())))
    assert received == sent


@pytest.mark.parametrize("version", [0, 99, "1", None, 1.5])
def test_an_event_in_a_version_this_process_does_not_know_is_refused(version: object) -> None:
    envelope = {**FaceMatch(key="k", entry_id="e", similarity=0.9).envelope(), "version": version}
    with pytest.raises(EventDecodeError, match="is not one this process understands"):
        decode_event(envelope)
