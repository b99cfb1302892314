"""Finds and reads number plates in a frame: text lines → plate candidates → OCR → format rules.

The default path runs PP-OCR's text detector once on the (downscaled) frame, groups the lines it
finds into plate-shaped candidates (one line, or two stacked lines for Punjab-style plates), reads
every candidate's lines in one recogniser batch from the full-resolution frame, normalises each
reading to the region's plate formats and keeps the candidates whose format fits. A plate detector
(`OnnxPlateDetector`, `MorphPlateDetector`) can replace the first step; each box it finds is then
read as a crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from safecity.anpr.regions import REGIONS, Candidate, clean, normalise
from safecity.core.errors import InvalidInput
from safecity.vision.plates.detectors import TextLine, TextLineDetector, stacked_pairs, union_box
from safecity.vision.plates.models import Box, PlateDetector, PlateRead
from safecity.vision.plates.recognizer import PlateRecognizer, TextRead

UPSCALE_MAX = 960
"""Largest detector input for an upscaled small image (a crop, a thumbnail)."""
MAX_LINES = 48
"""Lines read per frame at most; a street scene has more text than plates, the best-scored go first."""


@dataclass
class _Reading:
    box: Box
    text: str
    cand: Candidate
    score: float


def _row_merge(lines: list[TextLine]) -> list[Box]:
    """Boxes of text rows: lines side by side at the same height (e.g. `LEA` and `13`) become one."""
    boxes = sorted((ln.box for ln in lines), key=lambda b: b[0])
    rows: list[Box] = []
    used = [False] * len(boxes)
    for i, b in enumerate(boxes):
        if used[i]:
            continue
        cur = b
        used[i] = True
        for j in range(i + 1, len(boxes)):
            if used[j]:
                continue
            c = boxes[j]
            gap = c[0] - (cur[0] + cur[2])
            v_overlap = min(cur[1] + cur[3], c[1] + c[3]) - max(cur[1], c[1])
            low = min(cur[3], c[3])
            if gap < 1.2 * low and v_overlap > 0.6 * low and 0.5 < c[3] / cur[3] < 2:
                cur = union_box([cur, c])
                used[j] = True
        rows.append(cur)
    return rows


def _crop(image: npt.NDArray[np.uint8], box: Box, pad: float = 0.1) -> npt.NDArray[np.uint8]:
    x, y, w, h = box
    # Wider margin sideways: a detector box that clips the first or last character costs a read.
    px, py = int(3 * pad * h + 2), int(pad * h + 2)
    H, W = image.shape[:2]
    return image[max(0, y - py) : min(H, y + h + py), max(0, x - px) : min(W, x + w + px)]


def _text_crop(image: npt.NDArray[np.uint8], box: Box) -> npt.NDArray[np.uint8]:
    """The recogniser's input for one text row: the row's box trimmed top and bottom.

    The detector grows each line's box (its unclip ratio) so that grouping sees whole characters; the
    recogniser reads best when the characters fill the height, and a margin that takes in the frame or
    the state name above costs letters (measured on the plate benchmark: 10% off top and bottom with
    10% of the height added sideways read 16 points more US plates than a 10% margin all round).
    """
    x, y, w, h = box
    # Trim 10% of the height less 2 px (a row only a few pixels tall keeps its margin).
    dy, dx = int(0.1 * h - 2), int(0.1 * h + 2)
    H, W = image.shape[:2]
    return image[max(0, y + dy) : min(H, y + h - dy), max(0, x - dx) : min(W, x + w + dx)]


def _on(row: Box, focus: Box) -> bool:
    """Whether a text row's centre lies inside `focus`, side to side and top to bottom."""
    cx, cy = row[0] + row[2] / 2, row[1] + row[3] / 2
    return focus[0] <= cx <= focus[0] + focus[2] and focus[1] <= cy <= focus[1] + focus[3]


MIN_TILT = 3.0
"""Degrees of tilt from which a plate is turned level before it is read again (`level_from`).

Measured with `bench/bench_plates.py --turn 6`: levelling read 6 more US plates in 100, 8 more
Pakistani crops and 2 more EU plates; on the photos as taken it changed one EU read (an ambiguous
Polish `W0`/`WO`)."""


def _tilt(lines: list[TextLine]) -> float:
    """The median tilt of the text lines' long sides in degrees (clockwise positive), 0 if none.

    Only lines clearly longer than tall count: a short line's rectangle says little about its angle.
    """
    angles = []
    for ln in lines:
        (_, _), (rw, rh), _ = ln.rect
        if max(rw, rh) < 1.5 * min(rw, rh):
            continue
        a, b, c = ln.quad[0], ln.quad[1], ln.quad[2]
        edge = b - a if np.hypot(*(b - a)) >= np.hypot(*(c - b)) else c - b
        angle = float(np.degrees(np.arctan2(edge[1], edge[0])))
        # A side's direction is only defined up to a half turn.
        angles.append((angle + 90) % 180 - 90)
    if not angles:
        return 0.0
    tilt = float(np.median(angles))
    return tilt if abs(tilt) <= 30 else 0.0


def _turn(
    image: npt.NDArray[np.uint8], degrees: float
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """`image` turned by `degrees` about its centre on a canvas big enough to keep every corner."""
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    turn[0, 2] += nw / 2 - w / 2
    turn[1, 2] += nh / 2 - h / 2
    level = cv2.warpAffine(image, turn, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(level, np.uint8), np.asarray(turn, np.float64)


def _turned_box(box: Box, turn: npt.NDArray[np.float64], shape: tuple[int, ...] | None = None) -> Box:
    """The axis-aligned box around `box`'s corners moved by the affine `turn`, clipped to `shape`."""
    x, y, w, h = box
    corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], np.float64)
    moved = corners @ turn[:, :2].T + turn[:, 2]
    x0, y0 = moved.min(axis=0)
    x1, y1 = moved.max(axis=0)
    if shape is not None:
        x0, y0 = max(0.0, x0), max(0.0, y0)
        x1, y1 = min(float(shape[1]), x1), min(float(shape[0]), y1)
    return int(x0), int(y0), round(float(x1 - x0)), round(float(y1 - y0))


def _best(reads: list[PlateRead]) -> PlateRead | None:
    """The most confident read, or None."""
    return max(reads, key=lambda r: r.confidence, default=None)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, min(a[2] * a[3], b[2] * b[3]))


class PlateReader:
    """Reads number plates in BGR frames and crops for one region (pk, us, eu, br or auto).

    reader = PlateReader(region="pk")
    for read in reader.read(frame):
        print(read.plate, read.confidence, read.box)
    """

    def __init__(
        self,
        detector: PlateDetector | None = None,
        recognizer: PlateRecognizer | None = None,
        region: str = "pk",
        lines: TextLineDetector | None = None,
        min_score: float = 0.3,
        max_plates: int = 4,
        refine_top: int = 2,
        retry_side: int = 1280,
        retry_below: float = 0.5,
        level_from: float = MIN_TILT,
    ) -> None:
        if region not in (*REGIONS, "auto"):
            raise InvalidInput(f"unknown plate region {region!r}", hint="use one of pk, us, eu, br, auto")
        self.detector = detector
        self.recognizer = recognizer or PlateRecognizer()
        # 640 px for the first pass: measured as accurate as 960 with refine and retry, and faster.
        self.lines = lines or TextLineDetector(max_side=640)
        self.region = region
        self.min_score = min_score
        self.max_plates = max_plates
        self.refine_top = refine_top
        self.retry_side = retry_side
        self.retry_below = retry_below
        self.level_from = level_from

    def read(self, image_bgr: npt.NDArray[np.uint8]) -> list[PlateRead]:
        """Plates read in the frame, best first; empty when none is legible."""
        image = self._check(image_bgr)
        if self.detector is not None:
            reads = []
            for box in self.detector.detect(image)[: self.max_plates * 3]:
                got = self.read_crop(_crop(image, box, pad=0.15))
                if got is not None:
                    got.box = box
                    reads.append(got)
            return self._select(reads)
        side = max(image.shape[:2])
        found = self.lines.detect_lines(image, max_side=self.lines.max_side)[:MAX_LINES]
        # A tight plate crop passed as a frame is read whole as well; on a street scene that reading
        # is noise and scores below the real plate.
        reads = self._refine(image, found, self._read_groups(image, found, whole=True))
        if not self.retry_side or any(r.confidence >= self.retry_below for r in reads):
            return self._select(reads)
        # Nothing convincing at the coarse scale: small, distant plates need more pixels, taken from
        # the frame itself or, for a small image (a crop, a thumbnail), by upscaling it.
        if side <= self.lines.max_side:
            retry = min(self.retry_side, 3 * side, UPSCALE_MAX)
            if retry > self.lines.max_side:
                found = self.lines.detect_lines(image, max_side=retry)[:MAX_LINES]
                reads += self._refine(image, found, self._read_groups(image, found, whole=True))
            return self._select(reads)
        found = self.lines.detect_lines(image, max_side=min(self.retry_side, side))[:MAX_LINES]
        reads += self._refine(image, found, self._read_groups(image, found))
        return self._select(reads)

    def _refine(
        self, image: npt.NDArray[np.uint8], lines: list[TextLine], reads: list[PlateRead]
    ) -> list[PlateRead]:
        """Re-read the best candidates: close up (the coarse pass's boxes clip small plates) and,
        for a tilted plate, turned level (a tilted row's box takes in the rows around it)."""
        H, W = image.shape[:2]
        out: list[PlateRead] = []
        for rank, read in enumerate(sorted(reads, key=lambda r: -r.confidence)):
            better = None
            if rank < self.refine_top and read.box[2] * read.box[3] > 0.25 * W * H:
                # The plate fills the frame (a crop): only a tilt is worth a second look.
                tilt = _tilt([ln for ln in lines if _on(ln.box, read.box)])
                if abs(tilt) >= self.level_from:
                    better = self._read_level(image, tilt, read.box, self.lines.max_side, whole=True)
            elif rank < self.refine_top:
                better = self._read_close(image, read.box)
            if better is not None and better.confidence > read.confidence:
                out.append(better)
            else:
                out.append(read)
        return out

    def _read_close(self, image: npt.NDArray[np.uint8], box: Box) -> PlateRead | None:
        """The best read of a small candidate from a close crop around it, in frame coordinates."""
        H, W = image.shape[:2]
        x, y, w, h = box
        x0, y0 = max(0, int(x - 0.4 * w)), max(0, int(y - 0.8 * h))
        x1, y1 = min(W, int(x + 1.4 * w)), min(H, int(y + 1.8 * h))
        region = image[y0:y1, x0:x1]
        # Size the detector input so the plate's text stands about 48 px tall: enough to separate
        # lines and characters, no more (detector time grows with the pixels).
        side = int(min(640, max(256, max(region.shape[:2]) * 48 / max(h, 1))))
        found = self.lines.detect_lines(region, max_side=side)[:MAX_LINES]
        # Read only the rows on the candidate itself, not the dealer's name or the state below it.
        focus = (x - x0, y - y0 - h // 4, w, h + h // 2)
        found = [ln for ln in found if _on(ln.box, focus)]
        tilt = _tilt(found)
        if abs(tilt) >= self.level_from:
            better = self._read_level(region, tilt, focus, side)
        else:
            better = _best(self._read_groups(region, found))
        if better is not None:
            bx, by, bw, bh = better.box
            better.box = (bx + x0, by + y0, bw, bh)
        return better

    def _read_level(
        self, image: npt.NDArray[np.uint8], tilt: float, focus: Box, side: int, whole: bool = False
    ) -> PlateRead | None:
        """The best read of the rows on `focus` with `image` turned by `tilt` degrees to level them."""
        level, turn = _turn(image, tilt)
        found = self.lines.detect_lines(level, max_side=side)[:MAX_LINES]
        area = _turned_box(focus, turn)
        found = [ln for ln in found if _on(ln.box, area)]
        better = _best(self._read_groups(level, found, whole=whole))
        if better is not None:
            # Back to the frame: the box around the read's corners turned back.
            better.box = _turned_box(
                better.box, np.asarray(cv2.invertAffineTransform(turn), np.float64), image.shape[:2]
            )
        return better

    def read_crop(self, crop_bgr: npt.NDArray[np.uint8]) -> PlateRead | None:
        """The plate in a tight plate crop (one or two lines of text), or None if unreadable."""
        crop = self._check(crop_bgr)
        h, w = crop.shape[:2]
        # Upscale small crops so the detector sees characters at a size it was trained on.
        side = int(min(960, max(320, 3 * max(h, w)))) if max(h, w) < 320 else min(960, max(h, w))
        found = self.lines.detect_lines(crop, max_side=side)[:MAX_LINES]
        reads = self._read_groups(crop, found, whole=True)
        tilt = _tilt(found)
        if abs(tilt) >= self.level_from and (
            level := self._read_level(crop, tilt, (0, 0, w, h), side, whole=True)
        ):
            reads.append(level)
        best = _best(reads)
        if best is not None:
            best.box = (0, 0, w, h)
            best.crop = crop
        return best

    def _check(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
            raise InvalidInput("the frame is not a non-empty image array", hint="pass a BGR numpy array")
        if image.ndim == 2:
            return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
        if image.shape[2] == 4:
            return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
        return image

    def _read_groups(
        self, image: npt.NDArray[np.uint8], found: list[TextLine], whole: bool = False
    ) -> list[PlateRead]:
        rows = _row_merge(found)
        groups: list[list[Box]] = [[r] for r in rows]
        groups += [[rows[i], rows[j]] for i, j in stacked_pairs(rows)]
        if whole:
            h, w = image.shape[:2]
            groups.append([(0, 0, w, h)])
        row_index = {r: i for i, r in enumerate(rows)}
        crops = [_text_crop(image, r) for r in rows]
        if whole:
            crops.append(image)
            row_index[(0, 0, image.shape[1], image.shape[0])] = len(crops) - 1
        texts = self.recognizer.read_lines(crops) if crops else []
        reads: list[PlateRead] = []
        for group in groups:
            parts = [texts[row_index[b]] for b in group]
            got = self._interpret(parts)
            if got is None:
                continue
            cand, raw, conf = got
            box = union_box(group)
            reads.append(PlateRead(cand.plate, conf, box, cand.region, raw, _crop(image, box)))
        return reads

    def _interpret(self, parts: list[TextRead]) -> tuple[Candidate, str, float] | None:
        raw = "\n".join(p.text for p in parts)
        if not clean(raw):
            return None
        probs = np.concatenate([p.probs for p in parts]) if parts else None
        sure = np.concatenate([p.char_conf for p in parts]) if parts else None
        cand = normalise(raw, self.region, probs, sure)
        if cand is None:
            return None
        ocr = float(np.prod([p.confidence for p in parts]) ** (1 / len(parts)))
        conf = ocr * cand.score
        if conf < self.min_score:
            return None
        return cand, raw, conf

    def _select(self, reads: list[PlateRead]) -> list[PlateRead]:
        # Equally sure reads (two plates in the same format, both read cleanly): the taller text is
        # the nearer vehicle, the one the camera's lane or the photo is about.
        reads.sort(key=lambda r: (-round(r.confidence, 3), -r.box[3]))
        kept: list[PlateRead] = []
        for r in reads:
            if kept and r.confidence < 0.5 * kept[0].confidence:
                # Far weaker than the best read: a sticker, a badge or a word, not a second plate.
                break
            if any(r.plate == k.plate or _overlap(r.box, k.box) > 0.5 for k in kept):
                continue
            if r.crop is not None:
                # A copy, not a view: a view would keep the whole frame alive as long as the read.
                r.crop = r.crop.copy()
            kept.append(r)
            if len(kept) >= self.max_plates:
                break
        return kept
