"""Reads the characters of a plate crop with RapidOCR's bundled PP-OCR recogniser on ONNX Runtime.

The recogniser's vocabulary holds some 18,700 characters (mostly Chinese); plates use only Latin
letters and digits, so decoding keeps those 36 classes (upper and lower case, accented and full-width
forms merged) and treats the rest as separators. Each character read keeps its probability row over
the 36 classes, so the format rules can take the recogniser's own second choice where a position
needs a digit or a letter.

A character the recogniser takes for a letter of another script (a 7 crossed by a photo site's
watermark reads as 年) still stands where a plate character stands: when such a glyph sits one
character pitch from the plate characters read beside it, it is kept as a character of unknown
identity, with the recogniser's Latin probabilities at that step, and the format rules decide
whether the plate has a character there and which (bench/bench_plates.py: one more Pakistani
vehicle photo and one more tilted Punjab crop read exactly, no other read changed).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from safecity.anpr.regions import ALPHABET
from safecity.vision.onnx_session import cpu_session
from safecity.vision.plates.models import bundled_model

GLYPH_REACH = 1.5
"""How far from the nearest plate character a foreign glyph may stand to count as one, in pitches."""

REC_HEIGHT = 48
STRETCH = 1.2
"""Horizontal stretch of every crop before reading.

Plate fonts are condensed: their characters are narrower for their height than the printed text the
recogniser learnt from, and it confuses W with H or M, and 4 with L, on them. Widening the crop by
a fifth read 5 more US plates in 100 on the plate benchmark (1.1 to 1.4 all helped; EU and BR held).
"""


@dataclass
class TextRead:
    """One line of text read from a crop: plate characters only, with per-character probabilities."""

    text: str
    confidence: float
    probs: npt.NDArray[np.float32] = field(repr=False)
    """One row per character: its probabilities over `ALPHABET`, summing to one."""
    char_conf: npt.NDArray[np.float32] = field(repr=False)
    """One value per character: how sure the recogniser is that a character stands there at all."""


class PlateRecognizer:
    """Reads plate text lines with the bundled PP-OCRv6 recogniser.

    rec = PlateRecognizer()
    [line] = rec.read_lines([crop_bgr])
    line.text, line.confidence
    """

    def __init__(
        self, model_path: str | Path | None = None, threads: int | None = None, stretch: float = STRETCH
    ) -> None:
        self.stretch = stretch
        path = Path(model_path) if model_path else bundled_model("PP-OCRv6_rec_small.onnx")
        self.session = cpu_session(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        vocab = ["<blank>", *meta["character"].splitlines(), " "]
        self.vocab = vocab
        """The recogniser's classes in output order: CTC blank first."""
        self._input = self.session.get_inputs()[0].name
        # Map vocabulary columns onto ALPHABET; lower case, accented and full-width forms count as
        # their plain capital. Other letters and digits (Chinese, Greek, circled numbers of several
        # digits...) are foreign glyphs; the rest (spaces, dashes, dots) separate.
        cols: list[list[int]] = [[] for _ in ALPHABET]
        glyphs: list[int] = []
        for i, ch in enumerate(vocab[1:], start=1):
            up = _latin(ch)
            if len(up) == 1 and up in ALPHABET:
                cols[ALPHABET.index(up)].append(i)
            elif len(ch) == 1 and unicodedata.category(ch)[0] in "LN":
                glyphs.append(i)
        self._alnum_cols = cols
        self._glyph_cols = np.array(glyphs, dtype=np.int64)

    def _prep(self, crop: npt.NDArray[np.uint8], width: int) -> npt.NDArray[np.float32]:
        h, w = crop.shape[:2]
        new_w = min(width, max(8, math.ceil(self.stretch * REC_HEIGHT * w / max(h, 1))))
        resized = cv2.resize(crop, (new_w, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
        out = np.zeros((3, REC_HEIGHT, width), dtype=np.float32)
        out[:, :, :new_w] = resized.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
        return out

    def read_lines(self, crops: list[npt.NDArray[np.uint8]], batch: int = 8) -> list[TextRead]:
        """Read each crop (BGR, one line of text); empty text where nothing is legible."""
        crops = [
            c if c.ndim == 3 else np.asarray(cv2.cvtColor(c, cv2.COLOR_GRAY2BGR), np.uint8) for c in crops
        ]
        ratios = [self.stretch * c.shape[1] / max(c.shape[0], 1) for c in crops]
        # Batch crops of similar shape only: every crop in a batch is padded to the widest, and the
        # recogniser's time grows with the width (a plate padded to a long line costs five plates).
        order = sorted(range(len(crops)), key=lambda i: ratios[i])
        groups: list[list[int]] = []
        for i in order:
            if groups and len(groups[-1]) < batch and ratios[i] <= 1.25 * ratios[groups[-1][0]] + 0.5:
                groups[-1].append(i)
            else:
                groups.append([i])
        out: list[TextRead | None] = [None] * len(crops)
        for idx in groups:
            width = int(min(1280, max(96, math.ceil(REC_HEIGHT * max(ratios[i] for i in idx)))))
            x = np.stack([self._prep(crops[i], width) for i in idx])
            preds = self.session.run(None, {self._input: x})[0]
            for i, pred in zip(idx, preds, strict=True):
                out[i] = self._decode(pred)
        return [r for r in out if r is not None]

    def _decode(self, pred: npt.NDArray[np.float32]) -> TextRead:
        alnum = np.stack([pred[:, c].sum(axis=1) for c in self._alnum_cols], axis=1)
        blank = pred[:, 0]
        other = 1.0 - blank - alnum.sum(axis=1)
        # Each time step is blank, a plate character, or some other symbol (a separator here).
        best_alnum = alnum.argmax(axis=1)
        p_alnum = alnum.max(axis=1)
        emit = (p_alnum > blank) & (p_alnum > other)
        p_glyph = pred[:, self._glyph_cols].sum(axis=1)
        glyph = _glyphs(emit, blank, p_glyph, alnum.sum(axis=1), other)
        emit |= glyph
        # A glyph's certainty is how likely a character stands there at all.
        p_alnum = np.where(glyph, p_glyph + alnum.sum(axis=1), p_alnum)
        text: list[str] = []
        rows: list[npt.NDArray[np.float32]] = []
        confs: list[float] = []
        prev = -1
        for t in range(len(pred)):
            if not emit[t]:
                prev = -1
                continue
            k = int(best_alnum[t])
            row = alnum[t] / max(float(alnum[t].sum()), 1e-6)
            if k == prev:
                # A repeated class without a blank between is one character in CTC; merge evidence.
                rows[-1] = np.maximum(rows[-1], row)
                confs[-1] = max(confs[-1], float(p_alnum[t]))
                continue
            prev = k
            text.append(ALPHABET[k])
            rows.append(row.astype(np.float32))
            confs.append(float(p_alnum[t]))
        probs = np.stack(rows) if rows else np.zeros((0, len(ALPHABET)), np.float32)
        conf = float(np.exp(np.mean(np.log(np.clip(confs, 1e-6, 1.0))))) if confs else 0.0
        return TextRead("".join(text), conf, probs, np.array(confs, np.float32))


def _glyphs(
    emit: npt.NDArray[np.bool_],
    blank: npt.NDArray[np.float32],
    p_glyph: npt.NDArray[np.float32],
    p_latin: npt.NDArray[np.float32],
    other: npt.NDArray[np.float32],
) -> npt.NDArray[np.bool_]:
    """Time steps where a foreign glyph stands in the row of plate characters: more likely a
    character than a gap, more likely a glyph than a separator, and within `GLYPH_REACH` character
    pitches of a character read (an emblem or a word beside the plate stands further).
    """
    found = np.zeros(len(emit), bool)
    steps = np.flatnonzero(emit)
    if len(steps) < 2:
        return found
    likely = ~emit & (p_glyph > blank) & (p_glyph > other - p_glyph) & (p_glyph + p_latin > 0.5)
    reach = GLYPH_REACH * float(np.median(np.diff(steps)))
    for t in np.flatnonzero(likely):
        found[t] = np.abs(steps - t).min() <= reach
    return found


def _latin(ch: str) -> str:
    """`ch` as capital Latin letters and digits: accents dropped, full-width and styled forms plain."""
    return "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)).upper()
