"""Number-plate format rules per region: normalise OCR text and fix look-alike characters by position.

An OCR engine confuses O/0, I/1, B/8, S/5 and a few more; a plate format says which positions hold
letters and which hold digits, so the right reading of each position follows from the format. Each
region lists its formats as templates (`L` a letter, `D` a digit); `normalise` picks the template the
text fits at the lowest cost and returns the corrected plate with a validity score.

    >>> normalise("ABC-O74", "pk").plate
    'ABC074'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

REGIONS = ("pk", "us", "eu", "br")
"""Regions with format rules; `auto` tries each and keeps the best fit."""

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Column order of the per-character probability rows that `normalise` accepts."""

# Look-alikes seen on plates in both directions; a static fix costs more than a direct read.
_TO_DIGIT = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "U": "0",
    "I": "1",
    "L": "1",
    "J": "1",
    "T": "1",
    "Z": "2",
    "S": "5",
    "B": "8",
    "G": "6",
    "A": "4",
    "E": "3",
}
_TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A", "3": "E", "7": "T"}

# Words printed on plates that are not part of the registration.
_PLATE_WORDS = (
    "KARACHI",
    "SINDH",
    "PUNJAB",
    "ISLAMABAD",
    "PAKISTAN",
    "BALOCHISTAN",
    "KHYBER",
    "PAKHTUNKHWA",
    "GOVT",
    "GOVERNMENT",
    "LAHORE",
    "QUETTA",
    "PESHAWAR",
    "EXCISE",
)


@dataclass(frozen=True)
class Template:
    """One plate format: a pattern of letter/digit classes and how typical it is (0-1)."""

    pattern: str
    weight: float
    name: str


def _t(pattern: str, weight: float, name: str) -> Template:
    return Template(pattern, weight, name)


TEMPLATES: dict[str, tuple[Template, ...]] = {
    # Sindh: AAA-999 (new), AA-9999 and A-9999 KARACHI (old); Punjab and Islamabad: 1-3 letters, 1-4
    # digits (the year tag is removed before matching); commercial plates may end with a letter.
    "pk": (
        _t("LLLDDD", 1.0, "sindh-new"),
        _t("LLDDDD", 1.0, "sindh-old"),
        _t("LDDDD", 0.9, "sindh-old-single"),
        _t("LLLDDDD", 1.0, "punjab"),
        _t("LLLDD", 0.85, "punjab-short"),
        _t("LLDDD", 0.85, "punjab-short"),
        _t("LLLD", 0.7, "punjab-short"),
        _t("LLDD", 0.7, "punjab-short"),
        _t("LLDDDL", 0.8, "commercial"),
        _t("LLLDDDL", 0.75, "commercial"),
    ),
    # US states issue many formats; these cover the common serial formats, the rest falls back to
    # the generic rule with a lower score.
    "us": (
        _t("DLLLDDD", 1.0, "us-7"),
        _t("LLLDDDD", 1.0, "us-7"),
        _t("LLLDDD", 0.95, "us-6"),
        _t("DDDLLL", 0.95, "us-6"),
        _t("LLDDDDD", 0.9, "us-7"),
        _t("DLLDDD", 0.85, "us-6"),
        _t("DDDDLL", 0.85, "us-6"),
        _t("LLLLDDD", 0.85, "us-7"),
        _t("DDDLDDD", 0.85, "us-7"),
        _t("DLDDDDD", 0.85, "us-7"),
        _t("DDLLDDD", 0.85, "us-7"),
        _t("LLDLDL", 0.8, "us-6-alternating"),
    ),
    # Slovakia and Croatia (LL DDD LL, LL DDDD L), Poland, Czechia (1A2 3456, 1AB 2345), Germany.
    "eu": (
        _t("LLDDDLL", 1.0, "sk"),
        _t("LLDDDLL", 1.0, "hr"),
        _t("LLDDDDLL", 1.0, "hr"),
        _t("LLDDDDL", 0.95, "hr"),
        _t("LLDDDL", 0.9, "hr"),
        _t("LLDDDDD", 0.9, "pl"),
        _t("LLLDDDD", 0.85, "pl"),
        _t("DLDDDDD", 0.85, "cz"),
        _t("DLLDDDD", 0.85, "cz"),
        _t("DLDDDD", 0.75, "cz-old"),
        _t("LLLDDD", 0.8, "generic-eu"),
        _t("LLDDDD", 0.8, "generic-eu"),
        _t("LLLLDDD", 0.75, "de"),
        _t("LLLDDDDD", 0.7, "generic-eu"),
    ),
    # Brazil: grey AAA-9999 and Mercosul AAA9A99.
    "br": (
        _t("LLLDDDD", 1.0, "br"),
        _t("LLLDLDD", 0.95, "mercosul"),
    ),
}


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SK_DISTRICTS = _codes(
    "BA BB BC BD BE BI BJ BL BN BR BS BT BY CA DK DS DT GA GL HC HE IL KA KC KE KI KK KM KN KS LC LE "
    "LM LV MA MI ML MT MY NI NM NO NR NZ PB PD PE PK PN PO PP PT PU PV RA RK RS RV SA SB SC SE SI SK "
    "SL SN SO SP SV TA TC TN TO TR TS TT TV VK VT ZA ZC ZH ZI ZM ZV"
)
"""Slovak district codes, the first two letters of a Slovak plate (Ž, Č, Š read without accents)."""

_HR_AREAS = _codes(
    "BJ BM CK DA DE DJ DU GS IM KA KC KR KT KZ MA NA NG OG OS PS PU PZ RI SB SI SK SL ST VK VT VU VZ ZD ZG ZU"
)
"""Croatian registration areas, the first two letters of a Croatian plate."""

_PREFIXES: dict[str, dict[str, frozenset[str]]] = {"eu": {"sk": _SK_DISTRICTS, "hr": _HR_AREAS}}
"""Per region, the countries whose plates start with a code from a closed list.

A plate starting with a code that one country issues fits that country's formats best, and its
look-alike fixes count as under a strict format: `BA 302 OZ` is Slovak (Bratislava), so its `O` is a
letter, not the zero of a Croatian-shaped `BA 3020 Z`. A code no list holds (a new Slovak plate, a
foreign one) leaves every format as it is."""

_FOREIGN_CODE = 0.7
"""Weight of a country's format on a plate whose code only other countries issue.

Not zero: a misread that only another country's shape explains still marks where the plate is, and
the close-up second look reads it again."""

_GENERIC_WEIGHT = {"pk": 0.0, "us": 0.55, "eu": 0.5, "br": 0.0}
"""Score of a plate that fits no template but is plausible text (US vanity plates, odd EU formats)."""


@dataclass(frozen=True)
class Candidate:
    """A plate text normalised to one region's format, with how well it fits (0-1)."""

    plate: str
    region: str
    format: str
    score: float
    fixes: int


def clean(text: str) -> str:
    """Upper-case letters and digits only (spaces, dashes, dots and line breaks removed)."""
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def _strip_words(text: str) -> str:
    upper = text.upper()
    for word in _PLATE_WORDS:
        upper = upper.replace(word, " ")
    return upper


def _pk_series(top: str) -> str | None:
    """The letter series on a Punjab plate's top line with its year tag dropped; None if not one."""
    # Letters and a two-digit year (LEA 13).
    m = re.fullmatch(r"([A-Z]{1,3})(\d{2})", top)
    if m:
        return m.group(1)
    # Series run to three letters at most: whatever follows three letters is the year tag misread
    # (11 taken for N, M, `N1` or `1I`).
    if re.fullmatch(r"[A-Z]{3}[A-Z0-9]{1,2}", top):
        return top[:3]
    return None


def _pk_lines(text: str) -> str:
    """Join a Pakistani plate's lines, dropping the Punjab year tag printed beside the letters."""
    lines = [clean(line) for line in _strip_words(text).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) >= 2:
        if re.fullmatch(r"\d{1,4}", lines[1]):
            # Punjab two-line plate: the series and year on top, the serial number below. The
            # province's emblem left of the letters is sometimes read as one more character.
            for top in (lines[0], lines[0][1:]):
                series = _pk_series(top)
                if series:
                    return series + lines[1]
        if re.fullmatch(r"\d{2}", lines[0]) and len(lines) >= 3:
            return "".join(lines[1:])
    return "".join(lines)


def _cost_static(ch: str, want: str, strict: bool = False) -> tuple[str, float] | None:
    """Reading of `ch` as class `want` (L/D) and its cost, from the static look-alike map."""
    # Under a strict format a look-alike fix costs as much as the recogniser's own doubt would.
    cost = 0.6 if strict else 1.0
    if want == "L":
        if ch.isalpha():
            return ch, 0.0
        fixed = _TO_LETTER.get(ch)
        return (fixed, cost) if fixed else None
    if ch.isdigit():
        return ch, 0.0
    fixed = _TO_DIGIT.get(ch)
    return (fixed, cost) if fixed else None


_STRICT = {"pk", "br"}
"""Regions whose formats are few and strict, so a format is strong evidence for a look-alike fix."""


def _cost_probs(
    ch: str, row: npt.NDArray[np.float32], want: str, strict: bool = False
) -> tuple[str, float] | None:
    """Best reading of one position as class `want`, costed by how much less likely it is."""
    span = slice(0, 10) if want == "D" else slice(10, 36)
    sub = row[span]
    best = int(np.argmax(sub))
    p_best = float(sub[best])
    p_read = float(row[ALPHABET.index(ch)])
    char = ALPHABET[span][best]
    if char == ch:
        return ch, 0.0
    static = _cost_static(ch, want, strict)
    # The recogniser's own second choice is the strongest evidence; the static map backs it up.
    if p_best > 1e-4:
        cost = min(6.0, max(0.2, math.log(max(p_read, 1e-6) / p_best)))
        if static is not None and static[0] == char:
            # A classic look-alike pair (O/0, I/1, B/8, S/5): plate fonts draw them nearly alike, so
            # the recogniser's certainty counts for less; under a strict format it counts for little.
            cost = 0.5 * cost + 0.25
            if strict:
                cost = min(cost, 0.6)
        return char, cost
    return static


def _fit(
    text: str, probs: npt.NDArray[np.float32] | None, tpl: Template, strict: bool = False
) -> tuple[str, float, int] | None:
    if len(text) != len(tpl.pattern):
        return None
    out: list[str] = []
    cost = 0.0
    fixes = 0
    for i, (ch, want) in enumerate(zip(text, tpl.pattern, strict=True)):
        got = _cost_probs(ch, probs[i], want, strict) if probs is not None else _cost_static(ch, want, strict)
        if got is None:
            return None
        out.append(got[0])
        cost += got[1]
        fixes += got[0] != ch
    return "".join(out), cost, fixes


def _prepare(text: str, region: str) -> str:
    return _pk_lines(text) if region == "pk" else clean(_strip_words(text))


_TRIM_COST = 1.5
"""Cost of dropping a stray character at either end (a screw, a border, the EU band's country code).

Scaled by the recogniser's certainty that a character stands there: a state emblem or a screw read
as a faint `4` or `1` is cheaper to drop than a crisp last digit."""

_TIMESTAMP = re.compile(r"(19|20)\d{2}[01]\d[0-3]\d(\d{2,6})?|([01]\d|2[0-3])[0-5]\d[0-5]\d")
"""A date (YYYYMMDD, maybe with a time) or a time of day (HHMMSS) burnt into the frame by a camera."""

_CANONICAL = {"us": str.maketrans({"O": "0"})}
"""Per-region spellings: US states do not issue the letter O on plates and record it as zero."""


def _normalise_one(
    text: str, region: str, probs: npt.NDArray[np.float32] | None, sure: npt.NDArray[np.float32] | None
) -> Candidate | None:
    compact = _prepare(text, region)
    if probs is not None and len(probs) != len(compact):
        # Line joining or word removal changed the length: the rows no longer line up.
        probs = None
    if sure is None or len(sure) != len(compact):
        sure = np.ones(len(compact), np.float32)
    if not compact or _TIMESTAMP.fullmatch(compact):
        # A camera's burnt-in date is the commonest non-plate digit string in a frame.
        return None
    best: Candidate | None = None
    n = len(compact)
    listed = _PREFIXES.get(region, {})
    for tpl in TEMPLATES[region]:
        extra = n - len(tpl.pattern)
        if not 0 <= extra <= 2:
            continue
        for left in range(extra + 1):
            right = n - (extra - left)
            sub_probs = probs[left:right] if probs is not None else None
            fit = _fit(compact[left:right], sub_probs, tpl, region in _STRICT)
            weight = tpl.weight
            if fit is not None and tpl.name in listed:
                owners = {country for country, codes in listed.items() if fit[0][:2] in codes}
                if owners and tpl.name not in owners:
                    weight *= _FOREIGN_CODE
                elif tpl.name in owners and region not in _STRICT:
                    fit = _fit(compact[left:right], sub_probs, tpl, strict=True)
            if fit is None:
                continue
            plate, cost, fixes = fit
            trim = _TRIM_COST * float(sure[:left].sum() + sure[right:].sum())
            score = weight * math.exp(-0.5 * (cost + trim))
            if best is None or score > best.score:
                best = Candidate(plate, region, tpl.name, round(score, 4), fixes)
    generic = _GENERIC_WEIGHT[region]
    # A template that fits without changing a character (trimming at most) explains the read better
    # than taking it as is; otherwise the read as is competes with the fixed one.
    if generic > 0 and 4 <= n <= 8 and (best is None or (best.fixes > 0 and best.score < generic)):
        # Vanity and foreign formats: accept as read, scored low, and only if it carries a digit
        # or is long enough to be unlikely as a stray word.
        # Letters and digits mixed look most like a plate; all digits is often a phone number or a
        # clock, all letters a word (a make, a dealer's name).
        has_digit = any(c.isdigit() for c in compact)
        has_letter = any(c.isalpha() for c in compact)
        if has_digit or n >= 5:
            weight = generic * (1.0 if has_digit and has_letter else 0.8 if has_digit else 0.7)
            best = Candidate(compact, region, "generic", round(weight, 4), 0)
    if best is not None and region in _CANONICAL:
        plate = best.plate.translate(_CANONICAL[region])
        best = Candidate(plate, region, best.format, best.score, best.fixes)
    return best


def normalise(
    text: str,
    region: str = "pk",
    probs: npt.NDArray[np.float32] | None = None,
    sure: npt.NDArray[np.float32] | None = None,
) -> Candidate | None:
    """Normalise OCR `text` to `region`'s plate format (pk, us, eu, br or auto); None if none fits.

    `probs`, when given, holds one row per character of the cleaned text with the recogniser's
    probabilities over `ALPHABET`; it lets a position take the recogniser's own second choice.
    `sure` holds, per character, the recogniser's certainty that a character is there at all (0-1);
    a stray character at either end costs less to drop the less sure it is.
    """
    if region == "auto":
        found = [c for r in REGIONS if (c := _normalise_one(text, r, probs, sure)) is not None]
        return max(found, key=lambda c: c.score, default=None)
    if region not in TEMPLATES:
        from safecity.core.errors import InvalidInput

        raise InvalidInput(f"unknown plate region {region!r}", hint="use one of pk, us, eu, br, auto")
    return _normalise_one(text, region, probs, sure)
