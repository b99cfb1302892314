"""Decoding the recogniser's output: Latin look-alike forms fold, a foreign glyph in the row counts."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from safecity.anpr.regions import ALPHABET, normalise
from safecity.vision.plates import PlateRecognizer


@pytest.fixture(scope="module")
def rec() -> PlateRecognizer:
    return PlateRecognizer()


def steps(rec: PlateRecognizer, *rows: dict[str, float]) -> npt.NDArray[np.float32]:
    """A recogniser output: one time step per row of {class: probability}, the rest blank."""
    pred = np.zeros((len(rows), len(rec.vocab)), np.float32)
    for t, row in enumerate(rows):
        for ch, p in row.items():
            pred[t, rec.vocab.index(ch)] = p
        pred[t, 0] = 1.0 - sum(row.values())
    return pred


def chars(*text: str) -> list[dict[str, float]]:
    """One confident step per character, a blank step between them (the pitch is two steps)."""
    out: list[dict[str, float]] = []
    for ch in text:
        out += [{ch: 0.99}, {}]
    return out


# A 7 crossed by a watermark: the recogniser sees 年, with a little 7 and F beside it.
CROSSED_SEVEN = {"年": 0.55, "7": 0.02, "F": 0.01}


def test_a_foreign_glyph_in_the_row_reads_as_a_character_the_format_then_fixes(rec: PlateRecognizer) -> None:
    read = rec._decode(steps(rec, {}, *chars("A", "S", "L", "2", "7"), CROSSED_SEVEN, {}))
    assert read.text == "ASL277"
    # Its certainty is that a character stands there, not which: the recogniser's Latin row says 7.
    assert read.char_conf[-1] == pytest.approx(0.58, abs=0.01)
    assert ALPHABET[int(read.probs[-1].argmax())] == "7"
    cand = normalise(read.text, "pk", read.probs, read.char_conf)
    assert cand is not None and cand.plate == "ASL277"


def test_a_glyph_away_from_the_characters_is_not_one_of_them(rec: PlateRecognizer) -> None:
    # An emblem or a word beside the plate: three pitches from the last character.
    read = rec._decode(steps(rec, *chars("A", "S", "L", "2", "7"), {}, {}, {}, {}, CROSSED_SEVEN, {}))
    assert read.text == "ASL27"


def test_separators_and_faint_glyphs_stay_out(rec: PlateRecognizer) -> None:
    dash = rec._decode(steps(rec, *chars("A", "S", "L"), {"-": 0.9}, {}, *chars("2", "7")))
    assert dash.text == "ASL27"
    faint = rec._decode(steps(rec, *chars("A", "S", "L", "2", "7"), {"年": 0.3, "-": 0.1}, {}))
    assert faint.text == "ASL27"


def test_accented_and_full_width_forms_read_as_their_plain_character(rec: PlateRecognizer) -> None:
    read = rec._decode(steps(rec, {"Ś": 0.9}, {}, {"７": 0.9}, {}, {"a": 0.5, "À": 0.4}, {}))
    assert read.text == "S7A"
    assert read.probs[2][ALPHABET.index("A")] == pytest.approx(1.0)
