"""Plate-format rules: normalising OCR text per region and fixing look-alike characters by position."""

from __future__ import annotations

import numpy as np
import pytest

from safecity.anpr.regions import ALPHABET, normalise
from safecity.core.errors import InvalidInput


def test_sindh_plate_with_o_for_zero_is_corrected() -> None:
    cand = normalise("ATE-O74", "pk")
    assert cand is not None
    assert cand.plate == "ATE074"
    assert cand.fixes == 1


def test_sindh_plate_with_digit_in_letter_position_is_corrected() -> None:
    cand = normalise("A8C 123", "pk")
    assert cand is not None and cand.plate == "ABC123"


def test_old_karachi_plate_drops_the_city_word() -> None:
    cand = normalise("AC-4903\nKARACHI", "pk")
    assert cand is not None and cand.plate == "AC4903"


def test_punjab_two_line_plate_drops_the_year_tag() -> None:
    cand = normalise("LEA 13\n4521", "pk")
    assert cand is not None
    assert cand.plate == "LEA4521"


def test_exact_format_scores_higher_than_a_fixed_one() -> None:
    clean_read = normalise("ABC123", "pk")
    fixed_read = normalise("A8C123", "pk")
    assert clean_read is not None and fixed_read is not None
    assert clean_read.score > fixed_read.score


def test_stray_character_at_the_edge_is_trimmed() -> None:
    cand = normalise("ERK346AL", "eu")
    assert cand is not None and cand.plate == "RK346AL"


def test_czech_plate_digit_letter_digit_then_four_digits() -> None:
    # Czech plates since 2001 read "2T4 0211": the last four places are digits, so an O there is a 0.
    cand = normalise("2T4 O211", "eu")
    assert cand is not None and cand.plate == "2T40211" and cand.format == "cz"


def test_brazil_grey_plate_fixes_letters_and_digits() -> None:
    cand = normalise("AY0-9034", "br")
    assert cand is not None and cand.plate == "AYO9034"


def test_us_vanity_plate_is_kept_as_read_with_a_low_score() -> None:
    cand = normalise("GWAGEN", "us")
    assert cand is not None
    assert cand.plate == "GWAGEN"
    assert cand.format == "generic"
    assert cand.score < 0.8


def test_camera_timestamp_is_not_a_plate() -> None:
    assert normalise("20140513", "us") is None


def test_auto_region_picks_the_format_that_fits() -> None:
    cand = normalise("7ABC123", "auto")
    assert cand is not None
    assert cand.region == "us"


def test_pakistani_text_with_no_plate_format_is_rejected() -> None:
    assert normalise("PROPERTY", "pk") is None


def test_recogniser_second_choice_wins_over_the_static_map() -> None:
    # Position 4 was read as "Z" but the recogniser also gave "7" a fair chance: a digit is
    # needed there, and the recogniser's own digit choice (7) beats the static Z->2 fix.
    text = "ABCZ12"
    probs = np.full((len(text), len(ALPHABET)), 1e-4, np.float32)
    for i, ch in enumerate(text):
        probs[i, ALPHABET.index(ch)] = 0.9
    probs[3, ALPHABET.index("7")] = 0.3
    cand = normalise(text, "pk", probs)
    assert cand is not None and cand.plate == "ABC712"


def test_unknown_region_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInput) as err:
        normalise("ABC123", "mars")
    assert "pk" in str(err.value)


def test_punjab_year_tag_misread_as_a_letter_is_dropped() -> None:
    cand = normalise("LEBN\n31", "pk")
    assert cand is not None and cand.plate == "LEB31"


def test_province_word_alone_is_not_a_plate_in_any_region() -> None:
    assert normalise("SINDH", "auto") is None


def test_an_unsure_stray_character_is_dropped_before_a_sure_one() -> None:
    # A state emblem read as a faint "4" before ASC7399: either end could go to fit seven
    # characters, and the recogniser's doubt about the "4" decides which.
    sure = np.array([0.7, 1, 1, 1, 1, 1, 1, 1], np.float32)
    cand = normalise("4ASC7399", "us", sure=sure)
    assert cand is not None and cand.plate == "ASC7399"
    sure = np.array([1, 1, 1, 1, 1, 1, 1, 0.7], np.float32)
    cand = normalise("4ASC7399", "us", sure=sure)
    assert cand is not None and cand.plate == "4ASC739"


@pytest.mark.parametrize(
    ("text", "plate"),
    [
        ("WLEC11\n7845", "LEC7845"),  # the wheat emblem read as a W before the series
        ("2LEA14\n1037", "LEA1037"),  # ... or as a digit
        ("LECN1\n7845", "LEC7845"),  # the year tag 11 read as N1
        ("LEA14\n1037", "LEA1037"),  # nothing to drop: the series keeps its first letter
        ("LE13\n4521", "LE4521"),  # a two-letter series is not cut to one
    ],
)
def test_punjab_top_line_yields_its_letter_series(text: str, plate: str) -> None:
    cand = normalise(text, "pk")
    assert cand is not None and cand.plate == plate


@pytest.mark.parametrize(
    ("text", "plate", "country"),
    [
        ("BA3020Z", "BA302OZ", "sk"),  # Bratislava is Slovak: LL DDD LL, the O is a letter
        ("BA2681M", "BA268IM", "sk"),  # ... and so is the I
        ("RK896A0", "RK896AO", "sk"),
        ("ZG1234A", "ZG1234A", "hr"),  # Zagreb is Croatian: LL DDDD L stands
        ("XY3020Z", "XY3020Z", "hr"),  # a code no list holds leaves the formats as they were
    ],
)
def test_a_country_code_decides_between_look_alike_formats(text: str, plate: str, country: str) -> None:
    cand = normalise(text, "eu")
    assert cand is not None
    assert (cand.plate, cand.format) == (plate, country)


def test_another_countrys_shape_still_marks_a_plate_for_a_second_look() -> None:
    # RK is Slovak, but a misread that only the Croatian LL DDDD LL shape explains is kept, weaker,
    # so the reader looks at that spot again close up.
    cand = normalise("RK3346AL", "eu")
    assert cand is not None and cand.format == "hr"
    assert 0.5 < cand.score < normalise("ZG3346AL", "eu").score  # type: ignore[union-attr]
