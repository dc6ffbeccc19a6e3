"""How ``local.text`` reads one page with RapidOCR's models: better than calling the engine as is.

The bare engine (``RapidOCR()(image)``) has failure modes the accuracy bench (bench/accuracy.py) shows:
- it shrinks any page to 2000 px on its longer side before detection, so small print on a phone photo is lost;
- it scales the shorter side up to 736 px, so a 4000×20 strip becomes 147 200 px long and fails;
- its per-line orientation classifier turns some upright lines upside down (``9120…`` read as ``053``);
- it does not notice a page turned 90/180/270 degrees.

Here the models are driven step by step instead:
0. **A first look at 960 px** (``coarse_scale``, ``trusted``): most pages' text is large enough to be found
   at a fraction of the pixels the plan below would pay for. The first look is kept only when it plainly found
   all of the text: no box thinner than ``COARSE_MIN_TEXT``, no text probability outside the boxes, no box
   holding several rows. Otherwise the page is detected by the plan, as if there had been no first look.
1. **Detection at a scale chosen for the page** (``detection_plan``): small pages scaled up as the engine does,
   strips scaled on their short side only and cut into overlapping tiles along their length, large pages
   detected whole at 2000 px and, when the text found is small, again at full resolution in overlapping
   tiles, one tile at a time (memory stays bounded by the tile, not the page).
   Boxes from different tiles that overlap are one line cut by a tile edge and are joined.
2. **Page orientation**: mostly vertical boxes mean a page turned by 90 or 270 degrees; it is turned and
   detected again. Upright or upside down is decided by the recognizer itself: the longest lines are read
   both ways and the way with the higher confidence wins.
3. **Recognition from the full-resolution page**, a page's lines in batches, short lines side by side in one
   row of the recognizer's input (``pack_rows``: the engine pads each to 320 px, mostly padding); a line read
   with low confidence is read again turned 180 degrees, and the better reading is kept (no per-line
   classifier).
Boxes are returned in the coordinates of the page as uploaded; reading order is taken on the page turned
upright and levelled (a skewed form's label and value stay on one row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .local_fields import length_weighted_median

# Detection.
DET_SIDE = 2000  # longest side the detector sees at once (a tile's side); the bare engine's page limit too
DET_SMALL_PAGE = 736  # a page whose shorter side is below this is scaled up to it, as the bare engine does
STRIP_RATIO = 8.0  # longer side / shorter side from which an image is a strip
STRIP_SIDE = 64  # a strip's short side is scaled to about this before detection
FEW_LINES = 3  # fewer boxes than this on a large page seen whole: look again at full size
SMALL_TEXT = 14  # median line height (px) at detection scale below which a large page is detected again at full size
BLANK_RANGE = 24  # a tile whose pixel values all lie within this range holds no text
TILE_OVERLAP = 160  # px at detection scale shared by neighbouring tiles: more than a line of small print is tall
# A first look at a smaller scale (``coarse_scale``), trusted only when it plainly found all the text (``trusted``).
COARSE_SIDE = 960  # longer side of the first look (the size PP-OCR's detector is trained at)
COARSE_GAIN = 1.3  # the plan must cost at least this many times the first look's pixels for it to be worth taking
COARSE_MIN_TEXT = 12  # px at the first look's scale: a thinner box may be the top of smaller, unseen print
COARSE_STRAY = 0.002  # share of the text-probability map outside every box above which text was missed
TEXT_THRESHOLD = 0.3  # the detector's own pixel threshold for text (DBPostProcess.thresh)
# Recognition.
REC_HEIGHT = 48  # the recognition model's input height
REC_BATCH = 8  # crops per recognizer call
REC_MAX_RATIO = 250.0  # the longest line recognized as it is (a 12 000 px wide input)
REC_FLOOR = 320  # px: a row of the recognizer's input is at least this wide (the bare engine's floor): narrower,
# short lines misread (``PAGE 0`` as ``PAGE O`` at 3:1); short lines share a row instead (``pack_rows``)
PACK_GAP = 32  # px of background between short lines sharing a row
REC_SPREAD = 1.15  # widest row of a batch / narrowest (the rest of each row is padding the recognizer reads)
# Orientation and re-reading.
ORIENTATION_SAMPLE = 6  # longest lines read both ways to tell upright from upside down
VERTICAL_RATIO = 1.5  # a box this much taller than wide is vertical text (or a turned page's line)
ORIENTATION_SURE = 0.93  # mean score of those lines from which the page is taken as upright without a check
REREAD_BELOW = 0.9  # a line read with a lower score is read again turned 180 degrees
SKEW_LINES = 3  # long boxes needed to level a page for reading order
SKEW_MIN = math.radians(1.0)  # smaller slopes are the detector's noise


@dataclass
class TextLine:
    text: str
    score: float  # 0-1
    box: np.ndarray  # (4, 2) float32, clockwise from the top-left, in the page's uploaded coordinates
    upright_box: np.ndarray  # the same on the page turned upright and levelled (for reading order only)


@dataclass
class PageReading:
    lines: list[TextLine]
    turned: int = 0  # degrees the page was turned counter-clockwise to be read upright
    tiles: int = 1  # detector passes
    rereads: int = 0  # lines read again turned 180 degrees
    stats: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# geometry (pure functions, unit-tested)


def spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Cut ``[0, length)`` into as few pieces of at most ``tile`` as cover it with at least ``overlap`` shared
    between neighbours, spread evenly."""
    if length <= tile:
        return [(0, length)]
    overlap = min(overlap, tile // 2)
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    return [(round(i * step), round(i * step) + tile) for i in range(count)]


def detection_plan(width: int, height: int) -> tuple[float, list[tuple[int, int, int, int]]]:
    """(scale, tiles) for detecting text on a ``width``×``height`` image in one pass.

    Tiles are (left, top, right, bottom) in image pixels; each, scaled, is at most ``DET_SIDE`` on either side.
    """
    short, long = min(width, height), max(width, height)
    if long >= STRIP_RATIO * short:
        scale = STRIP_SIDE / short  # up for a 20 px strip, down for a 300 px banner
    elif short < DET_SMALL_PAGE:
        scale = max(1.0, min(DET_SMALL_PAGE / short, DET_SIDE / long))
    else:
        scale = min(1.0, DET_SIDE / long)
    tile, overlap = int(DET_SIDE / scale), int(TILE_OVERLAP / scale)
    return scale, [(x0, y0, x1, y1) for y0, y1 in spans(height, tile, overlap) for x0, x1 in spans(width, tile, overlap)]


def full_resolution_plan(width: int, height: int) -> tuple[float, list[tuple[int, int, int, int]]]:
    """Detection at the page's own resolution in ``DET_SIDE`` tiles, for small print on a large page."""
    return 1.0, [(x0, y0, x1, y1) for y0, y1 in spans(height, DET_SIDE, TILE_OVERLAP)
                 for x0, x1 in spans(width, DET_SIDE, TILE_OVERLAP)]


def box_size(box: np.ndarray) -> tuple[float, float]:
    """(width along the top edge, height along the left edge) of a clockwise quadrilateral."""
    return float(np.linalg.norm(box[1] - box[0])), float(np.linalg.norm(box[3] - box[0]))


def _rect(box: np.ndarray) -> tuple[float, float, float, float]:
    return float(box[:, 0].min()), float(box[:, 1].min()), float(box[:, 0].max()), float(box[:, 1].max())


def same_line(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two boxes found in different tiles are pieces of one line: they overlap, and along the
    line's thickness they share at least half of the thinner one."""
    ax0, ay0, ax1, ay1 = _rect(a)
    bx0, by0, bx1, by1 = _rect(b)
    across_x, across_y = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    if across_x <= 0 or across_y <= 0:
        return False
    horizontal = (ax1 - ax0) + (bx1 - bx0) >= (ay1 - ay0) + (by1 - by0)
    if horizontal:
        return across_y >= 0.5 * min(ay1 - ay0, by1 - by0)
    return across_x >= 0.5 * min(ax1 - ax0, bx1 - bx0)


def join_tiles(found: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
    """Boxes of all tiles, (tile index, box) each, with pieces of one line cut by tile edges joined into
    their bounding rectangle. Boxes of one tile are never joined: the detector already kept them apart."""
    parent = list(range(len(found)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Sweep from left to right: only boxes whose horizontal extents meet can be pieces of one line.
    rects = [_rect(box) for _, box in found]
    order = sorted(range(len(found)), key=lambda k: rects[k][0])
    for position, i in enumerate(order):
        for j in order[position + 1:]:
            if rects[j][0] > rects[i][2]:
                break
            if found[i][0] != found[j][0] and same_line(found[i][1], found[j][1]):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(found)):
        groups.setdefault(root(i), []).append(i)
    joined = []
    for members in groups.values():
        if len(members) == 1:
            joined.append(found[members[0]][1])
            continue
        x0, y0, x1, y1 = _rect(np.concatenate([found[i][1] for i in members]))
        joined.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32))
    return joined


def turned_back(boxes: np.ndarray, quarter_turns: int, width: int, height: int) -> np.ndarray:
    """Points of an image turned ``quarter_turns`` × 90 degrees counter-clockwise (``np.rot90``) mapped back
    to the ``width``×``height`` image it was turned from."""
    points = boxes.astype(np.float32).copy()
    w, h = (width, height) if quarter_turns % 2 == 0 else (height, width)  # size of the turned image
    for _ in range(quarter_turns % 4):
        # one turn back (clockwise) of a w×h image: (x, y) -> (h - y, x); the result is h×w
        x, y = points[..., 0].copy(), points[..., 1].copy()
        points[..., 0], points[..., 1] = h - y, x
        w, h = h, w
    return points


def skew(boxes: list[np.ndarray]) -> float:
    """The page's skew in radians: the median slope of the long boxes' top edges, by length; 0 when fewer
    than ``SKEW_LINES`` long boxes say so or the slope is below ``SKEW_MIN`` (levelling by a noisy angle would
    move the far end of a long strip by more than a line's height)."""
    angles = []
    for box in boxes:
        width, height = box_size(box)
        if width >= 2 * height:
            dx, dy = box[1] - box[0]
            angles.append((math.atan2(float(dy), float(dx)), width))
    angle = length_weighted_median(angles) if len(angles) >= SKEW_LINES else 0.0
    return angle if abs(angle) >= SKEW_MIN else 0.0


def levelled(boxes: list[np.ndarray], angle: float) -> list[np.ndarray]:
    """Boxes turned by ``-angle`` about the origin: on a skewed page, a row's label and value then share a
    height again, for reading order."""
    cos, sin = math.cos(-angle), math.sin(-angle)
    turn = np.array([[cos, sin], [-sin, cos]], dtype=np.float32)  # row vectors: p @ turn
    return [box @ turn for box in boxes]


def is_turned_sideways(boxes: list[np.ndarray]) -> bool:
    """True when most of the text (by area) lies in vertical boxes: a page turned by 90 or 270 degrees.
    Square-ish boxes (a character, a stamp) say nothing and are left out."""
    vertical = horizontal = 0.0
    for box in boxes:
        width, height = box_size(box)
        if height >= VERTICAL_RATIO * width:
            vertical += width * height
        elif width >= VERTICAL_RATIO * height:
            horizontal += width * height
    return vertical > 2 * horizontal


# ---------------------------------------------------------------------------
# the models


class Models:
    """RapidOCR's detector and recognizer, called step by step. Stateless between calls: thread-safe as the
    inference sessions are."""

    def __init__(self, ocr: Any):
        self.det = ocr._load_det_model()
        self.rec = ocr._load_rec_model()

    def detect(self, bgr: np.ndarray, scale: float) -> list[np.ndarray]:
        """Boxes in ``bgr``'s pixels, detected at ``scale``."""
        return self.detect_with_map(bgr, scale)[0]

    def detect_with_map(self, bgr: np.ndarray, scale: float) -> tuple[list[np.ndarray], "TextMap"]:
        """Boxes in ``bgr``'s pixels, detected at ``scale``, and the detector's text-probability map."""
        import cv2

        height, width = bgr.shape[:2]
        # The network wants sides that are multiples of 32; a strip's short side is padded, not stretched.
        target_w, target_h = max(32, round(width * scale)), max(32, round(height * scale))
        resized = cv2.resize(bgr, (target_w, target_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        pad_w, pad_h = (-target_w) % 32, (-target_h) % 32
        short_pad = 16 if min(target_w, target_h) < 96 else 0  # a margin around a strip's text helps the detector
        if pad_w or pad_h or short_pad:
            resized = cv2.copyMakeBorder(resized, short_pad, pad_h + short_pad, short_pad, pad_w + short_pad,
                                         cv2.BORDER_REPLICATE)
            extra_h, extra_w = (-resized.shape[0]) % 32, (-resized.shape[1]) % 32
            if extra_h or extra_w:
                resized = cv2.copyMakeBorder(resized, 0, extra_h, 0, extra_w, cv2.BORDER_REPLICATE)
        tensor = (resized.astype(np.float32) * (2 / 255.0) - 1.0).transpose(2, 0, 1)[np.newaxis]
        del resized
        preds = self.det.session(tensor)
        del tensor
        padded_h, padded_w = preds.shape[2], preds.shape[3]
        boxes, _scores = self.det.postprocess_op(preds, (padded_h, padded_w))
        found = []
        factor = np.array([target_w / width, target_h / height], dtype=np.float32)
        for box in boxes:
            box = (np.asarray(box, dtype=np.float32) - short_pad) / factor
            box[:, 0] = box[:, 0].clip(0, width)
            box[:, 1] = box[:, 1].clip(0, height)
            if min(box_size(box)) >= 2:
                found.append(box)
        return found, TextMap(preds[0, 0], factor, short_pad)

    def recognize(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """(text, score) of each crop. Short crops share a row of the recognizer's input (``pack_rows``); rows
        go in batches of similar width (at most REC_SPREAD apart), each padded to its own widest row, so that
        little of a batch is padding. A crop read with low confidence in a shared row is read again alone, and
        that reading stands: neighbours can sway a weak reading of a short word (``性别`` as ``性別``, a QR code's
        corner as ``口口`` at 86 instead of ``回回`` at 40, which ``minConfidence`` drops)."""
        # A line longer than REC_MAX_RATIO is squeezed to it: the input (and memory) stays bounded.
        widths = [max(1, math.ceil(REC_HEIGHT * min(REC_MAX_RATIO, c.shape[1] / max(1, c.shape[0])))) for c in crops]
        rows = pack_rows(widths)
        results = self._read_rows(crops, widths, rows)
        shared = [i for row in rows if len(row) > 1 for i, _ in row if results[i][1] < REREAD_BELOW]
        results.update(self._read_rows(crops, widths, [[(i, 0)] for i in shared]))
        return [results[i] for i in range(len(crops))]

    def _read_rows(self, crops: list[np.ndarray], widths: list[int],
                   rows: list[list[tuple[int, int]]]) -> dict[int, tuple[str, float]]:
        import cv2

        results: dict[int, tuple[str, float]] = {}
        row_widths = [max(REC_FLOOR, row[-1][1] + widths[row[-1][0]]) for row in rows]
        order = sorted(range(len(rows)), key=row_widths.__getitem__)
        for batch in rec_batches([row_widths[r] / REC_HEIGHT for r in order]):
            members = [order[k] for k in batch]
            width = max(row_widths[r] for r in members)
            tensor = np.zeros((len(members), 3, REC_HEIGHT, width), dtype=np.float32)
            for position, r in enumerate(members):
                for i, left in rows[r]:
                    line = cv2.resize(crops[i], (widths[i], REC_HEIGHT)).astype(np.float32)
                    tensor[position, :, :, left:left + widths[i]] = (line * (2 / 255.0) - 1.0).transpose(2, 0, 1)
            preds = self.rec.session(tensor)
            steps = preds.shape[1] / width  # the recognizer's time steps per input column
            for position, r in enumerate(members):
                for i, (start, end) in zip([i for i, _ in rows[r]], row_slices(rows[r], widths, width), strict=True):
                    piece = preds[position:position + 1, math.floor(start * steps):math.ceil(end * steps)]
                    (text, score), = self.rec.postprocess_op(piece, False)[0]
                    results[i] = (text.strip(), float(score))
        return results


@dataclass
class TextMap:
    """The detector's text probability per pixel of its (scaled, padded) input, and how to get there from the
    image's pixels: ``point * factor + pad``."""
    probability: np.ndarray
    factor: np.ndarray
    pad: int

    def on_map(self, box: np.ndarray) -> np.ndarray:
        return box * self.factor + self.pad


def trusted(boxes: list[np.ndarray], text_map: TextMap) -> bool:
    """True when a first look at a small scale plainly found all of the page's text, so that a pass at the
    plan's larger scale would find nothing more. Print too small for that scale shows in three ways, and any
    one of them sends the page to the full pass: boxes thinner than ``COARSE_MIN_TEXT`` (smaller print may sit
    beside them unseen), text probability outside every box (lines seen but too faint to become boxes), and
    boxes holding several rows (lines of small print run together)."""
    import cv2

    if len(boxes) < FEW_LINES:
        return False
    on_map = [text_map.on_map(box) for box in boxes]
    if min(min(box_size(box)) for box in on_map) < COARSE_MIN_TEXT:
        return False
    text = text_map.probability > TEXT_THRESHOLD
    covered = np.zeros(text.shape, dtype=np.uint8)
    cv2.fillPoly(covered, [np.round(box).astype(np.int32) for box in on_map], 1)
    inside = int(np.count_nonzero(text & (covered == 1)))
    outside = int(np.count_nonzero(text)) - inside
    if outside > COARSE_STRAY * inside:
        return False
    return not any(rows_in_box(text_map.probability, box) > 1 for box in on_map)


def rows_in_box(probability: np.ndarray, box: np.ndarray) -> int:
    """Runs of text across a box's thickness, on the map straightened along the box (a page photographed a
    few degrees askew has slanted boxes): 1 for a line, more for lines run together."""
    if min(box_size(box)) < 2:
        return 1
    region = crop(probability, box)  # turned so that the line runs along the rows
    if region.size == 0:
        return 0
    profile = region.mean(axis=1)
    on = profile > 0.5 * float(profile.max())
    return int(on[0]) + int(np.count_nonzero(on[1:] & ~on[:-1]))


def coarse_scale(width: int, height: int, plan_scale: float) -> float | None:
    """The scale of a first look at a page before the plan's (None when the plan is cheap enough as it is,
    or the image is a strip, whose plan is made for its shape)."""
    short, long = min(width, height), max(width, height)
    if long >= STRIP_RATIO * short:
        return None
    scale = min(plan_scale, COARSE_SIDE / long)
    return scale if (plan_scale / scale) ** 2 >= COARSE_GAIN else None


def pack_rows(widths: list[int]) -> list[list[tuple[int, int]]]:
    """Rows of the recognizer's input, each a list of (crop index, left edge in px). A crop narrower than
    ``REC_FLOOR`` shares a row of that width with other short crops, ``PACK_GAP`` apart (first fit, widest
    first): the recognizer reads each row's whole width, so a row of one short crop would be mostly padding.
    Wider crops have a row each."""
    rows: list[list[tuple[int, int]]] = []
    ends: list[int] = []  # right edge of each packed row's last crop
    for i in sorted(range(len(widths)), key=lambda k: -widths[k]):
        if widths[i] >= REC_FLOOR:
            rows.append([(i, 0)])
            ends.append(REC_FLOOR * 2)  # full
            continue
        for r, end in enumerate(ends):
            if end + PACK_GAP + widths[i] <= REC_FLOOR:
                rows[r].append((i, end + PACK_GAP))
                ends[r] = end + PACK_GAP + widths[i]
                break
        else:
            rows.append([(i, 0)])
            ends.append(widths[i])
    return rows


def row_slices(row: list[tuple[int, int]], widths: list[int], row_width: int) -> list[tuple[float, float]]:
    """The columns of a row whose reading belongs to each of its crops: the gaps between crops are split in
    the middle, and the last crop takes the padding after it."""
    cuts = [0.0]
    for (i, left), (_, next_left) in zip(row, row[1:], strict=False):
        cuts.append((left + widths[i] + next_left) / 2)
    cuts.append(float(row_width))
    return list(zip(cuts, cuts[1:], strict=False))


def rec_batches(sorted_ratios: list[float]) -> list[list[int]]:
    """Positions of width/height ratios (ascending) grouped into batches: at most ``REC_BATCH`` rows, the
    widest at most ``REC_SPREAD`` times the narrowest, so that little of a batch is padding."""
    batches: list[list[int]] = []
    for position, ratio in enumerate(sorted_ratios):
        if batches and len(batches[-1]) < REC_BATCH and ratio <= REC_SPREAD * max(sorted_ratios[batches[-1][0]], 1.0):
            batches[-1].append(position)
        else:
            batches.append([position])
    return batches


def crop(bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The line in ``box`` straightened to a horizontal strip (RapidOCR's own cropping)."""
    from rapidocr.utils.process_img import get_rotate_crop_image

    return get_rotate_crop_image(bgr, box.astype(np.float32).copy())


def turned_180(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[::-1, ::-1])


def detect(models: Models, bgr: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Boxes of a whole image: from a first look at a small scale when it is trusted, otherwise by
    ``detection_plan``, and again at full resolution when a large page's text is small; tiles one at a time.
    Also returns the number of detector passes."""
    height, width = bgr.shape[:2]
    scale, tiles = detection_plan(width, height)
    passes = 0
    first_look = coarse_scale(width, height, scale)
    if first_look is not None:
        # Most pages' text is large enough to be found at a fraction of the plan's pixels; a page the first
        # look may have missed some of is detected by the plan as before.
        boxes, text_map = models.detect_with_map(bgr, first_look)
        if trusted(boxes, text_map):
            return boxes, 1
        del text_map
        passes = 1
    boxes, more = _detect_tiles(models, bgr, scale, tiles)
    passes += more
    if scale < 1.0 and max(width, height) / min(width, height) < STRIP_RATIO:
        heights = sorted(min(box_size(b)) * scale for b in boxes)
        # Small print is found in pieces or not at all at 2000 px: a few boxes (a page edge) say nothing.
        if len(heights) < FEW_LINES or heights[len(heights) // 2] < SMALL_TEXT:
            full_scale, full_tiles = full_resolution_plan(width, height)
            boxes, more = _detect_tiles(models, bgr, full_scale, full_tiles)
            passes += more
    return boxes, passes


def _detect_tiles(models: Models, bgr: np.ndarray, scale: float, tiles) -> tuple[list[np.ndarray], int]:
    if len(tiles) == 1:
        return models.detect(bgr, scale), 1
    found: list[tuple[int, np.ndarray]] = []
    passes = 0
    for index, (x0, y0, x1, y1) in enumerate(tiles):
        if is_blank(bgr[y0:y1, x0:x1]):
            continue
        passes += 1
        for box in models.detect(bgr[y0:y1, x0:x1], scale):
            found.append((index, box + np.array([x0, y0], dtype=np.float32)))
    return join_tiles(found), passes


def is_blank(image: np.ndarray) -> bool:
    """True for a tile of plain background (the desk around a photographed page): nothing to detect there.
    Judged on every 4th pixel: the thinnest stroke worth reading is wider than that."""
    sample = image[::4, ::4]
    return sample.size == 0 or int(sample.max()) - int(sample.min()) < BLANK_RANGE


def read_page(models: Models, bgr: np.ndarray) -> PageReading:
    """Every line of a page (BGR, as the engine wants it), in the page's uploaded coordinates."""
    height, width = bgr.shape[:2]
    boxes, passes = detect(models, bgr)
    quarter_turns = 0
    if is_turned_sideways(boxes):
        quarter_turns = 1
        bgr = np.ascontiguousarray(np.rot90(bgr, 1))
        boxes, more = detect(models, bgr)
        passes += more
    crops = [crop(bgr, box) for box in boxes]
    readings = models.recognize(crops)

    # Upright or upside down: the recognizer reads the longest lines both ways; the more confident way wins.
    sample = sorted(range(len(crops)), key=lambda i: -crops[i].shape[1])[:ORIENTATION_SAMPLE]
    if sample and sum(readings[i][1] for i in sample) >= ORIENTATION_SURE * len(sample):
        sample = []  # read with high confidence: upright (no second reading, most pages stop here)
    flipped = models.recognize([turned_180(crops[i]) for i in sample])
    other_way = dict(zip(sample, flipped, strict=False))  # each line's reading the other way round, where known
    if flipped and sum(r[1] for r in flipped) > sum(readings[i][1] for i in sample):
        quarter_turns += 2
        bgr = turned_180(bgr)
        turned_h, turned_w = bgr.shape[:2]
        # The same lines on the turned page; corners re-ordered to start from the new top-left.
        boxes = [np.roll(np.stack([turned_w - box[:, 0], turned_h - box[:, 1]], axis=1), 2, axis=0) for box in boxes]
        crops = [turned_180(c) for c in crops]
        upright_first = readings
        readings = [("", 0.0)] * len(crops)
        for i, reading in zip(sample, flipped, strict=False):
            readings[i] = reading
        other_way = {i: upright_first[i] for i in sample}
        rest = [i for i in range(len(crops)) if i not in other_way]
        for i, reading in zip(rest, models.recognize([crops[i] for i in rest]), strict=False):
            readings[i] = reading

    # A line read with low confidence is read again the other way round; the better reading stays.
    low = [i for i in range(len(crops)) if readings[i][1] < REREAD_BELOW and i not in other_way]
    other_way.update(zip(low, models.recognize([turned_180(crops[i]) for i in low]), strict=False))
    rereads = 0
    for i, other in other_way.items():
        if readings[i][1] < REREAD_BELOW and other[1] > readings[i][1]:
            readings[i] = other
            rereads += 1

    turned_h, turned_w = bgr.shape[:2]
    lines = []
    for box, level, (text, score) in zip(boxes, levelled(boxes, skew(boxes)), readings, strict=False):
        original = turned_back(box, quarter_turns, width, height)
        lines.append(TextLine(text=text, score=score, box=original, upright_box=level))
    return PageReading(lines=lines, turned=90 * quarter_turns, tiles=passes, rereads=rereads,
                       stats={"size": [turned_w, turned_h]})
