"""local_engine's steps, fast: tile geometry, page orientation, the 180-degree re-read, with a stand-in for the
models (dark bars are lines; a bar whose dark end is on the left is upright). The real models are driven
end to end in test_pipeline.py."""

from __future__ import annotations

import numpy as np
import pytest

from fcocr.recognizers import local_engine as le

# ---------------------------------------------------------------------------
# geometry


@pytest.mark.parametrize("length,tile,overlap", [(100, 100, 10), (4000, 625, 50), (4001, 2000, 160), (2001, 2000, 160),
                                                 (12800, 2000, 160), (3000, 1000, 900)])
def test_spans_cover_the_length_within_the_tile_size_and_share_the_overlap(length, tile, overlap):
    pieces = le.spans(length, tile, overlap)
    assert pieces[0][0] == 0 and pieces[-1][1] == length
    assert all(0 < end - start <= tile for start, end in pieces)
    shared = min(overlap, tile // 2)
    assert all(prev_end - start >= shared for (_, prev_end), (start, _) in zip(pieces, pieces[1:], strict=False))
    assert len(pieces) == (1 if length <= tile else -(-(length - shared) // (tile - shared)))  # as few as cover it


def test_a_long_thin_strip_is_scaled_on_its_short_side_and_cut_along_its_length():
    scale, tiles = le.detection_plan(4000, 20)
    assert scale == pytest.approx(le.STRIP_SIDE / 20)  # up to 64 px, not the bare engine's 736
    assert len(tiles) > 1
    assert all(y0 == 0 and y1 == 20 for _, y0, _, y1 in tiles)
    assert all((x1 - x0) * scale <= le.DET_SIDE for x0, _, x1, _ in tiles)
    assert tiles[0][0] == 0 and tiles[-1][2] == 4000
    # A vertical strip the same, along its height.
    scale, tiles = le.detection_plan(20, 4000)
    assert all(x0 == 0 and x1 == 20 for x0, _, x1, _ in tiles) and tiles[-1][3] == 4000


def test_pages_keep_the_bare_engines_scale_and_large_ones_get_full_resolution_tiles():
    assert le.detection_plan(1600, 1000) == (1.0, [(0, 0, 1600, 1000)])
    scale, tiles = le.detection_plan(600, 400)  # small: scaled up as the engine does
    assert scale == pytest.approx(736 / 400) and len(tiles) == 1
    scale, tiles = le.detection_plan(4000, 3000)  # large: seen whole first, at 2000 px
    assert scale == 0.5 and tiles == [(0, 0, 4000, 3000)]
    scale, tiles = le.full_resolution_plan(4000, 3000)
    assert scale == 1.0 and len(tiles) == 6
    assert all(x1 - x0 <= le.DET_SIDE and y1 - y0 <= le.DET_SIDE for x0, y0, x1, y1 in tiles)


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def test_pieces_of_a_line_cut_by_a_tile_edge_are_joined_and_nothing_else():
    found = [(0, rect(100, 50, 1990, 80)), (1, rect(1850, 51, 2600, 81)),  # one line across two tiles
             (1, rect(1850, 120, 2600, 150)),  # the next line: same tile pair, other row
             (0, rect(10, 200, 300, 230)), (0, rect(290, 201, 500, 231))]  # same tile: kept apart
    joined = sorted(le.join_tiles(found), key=lambda b: (b[0, 1], b[0, 0]))
    assert len(joined) == 4
    np.testing.assert_allclose(joined[0], rect(100, 50, 2600, 81))


@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3])
def test_points_of_a_turned_image_map_back_to_the_image_it_was_turned_from(quarter_turns):
    image = np.zeros((30, 50), dtype=np.uint8)
    image[7, 41] = 255  # row 7, column 41
    turned = np.rot90(image, quarter_turns)
    y, x = np.argwhere(turned == 255)[0]
    centre = np.array([[[x + 0.5, y + 0.5]]], dtype=np.float32)
    np.testing.assert_allclose(le.turned_back(centre, quarter_turns, 50, 30)[0, 0], [41.5, 7.5], atol=1e-4)


# ---------------------------------------------------------------------------
# orientation and the re-read, on drawn bars


class StandIn:
    """Detection: each dark blob's rotated rectangle. Recognition: a crop whose left end is darker than its
    right end reads as its line's text with confidence 0.97, otherwise as noise with 0.2."""

    def __init__(self, texts_by_length: dict[int, str], weak: set[int] = frozenset()):
        self.texts = texts_by_length
        self.weak = weak  # lines read upright with low confidence only

    def detect(self, bgr, scale):
        import cv2

        dark = (bgr.min(axis=2) < 200).astype(np.uint8)
        contours, _ = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for contour in contours:
            points = cv2.boxPoints(cv2.minAreaRect(contour))
            # clockwise from the top-left, as the engine's detector gives them
            order = np.argsort(points[:, 1])
            top, bottom = points[order[:2]], points[order[2:]]
            top, bottom = top[np.argsort(top[:, 0])], bottom[np.argsort(bottom[:, 0])]
            boxes.append(np.array([top[0], top[1], bottom[1], bottom[0]], dtype=np.float32))
        return boxes

    def detect_with_map(self, bgr, scale):
        # The dark pixels are the text map, at the image's own scale (this detector ignores ``scale``).
        return self.detect(bgr, scale), le.TextMap((bgr.min(axis=2) < 200).astype(np.float32),
                                                   np.ones(2, dtype=np.float32), 0)

    def recognize(self, crops):
        out = []
        for crop in crops:
            grey = crop.mean(axis=2)
            half = grey.shape[1] // 2
            length = round(max(crop.shape[:2]) / 10) * 10
            if grey[:, :half].mean() < grey[:, half:].mean():
                out.append((self.texts[length], 0.5 if length in self.weak else 0.97))
            else:
                out.append(("~" * 3, 0.2))
        return out


def page_of_bars(flipped_lengths: set[int] = frozenset()) -> tuple[np.ndarray, dict[int, str]]:
    """A 600×400 page with five bars of different lengths; a bar's left quarter is black, the rest grey."""
    page = np.full((400, 600, 3), 255, dtype=np.uint8)
    texts = {}
    for row, length in enumerate((500, 420, 360, 300, 240)):
        y = 40 + row * 70
        page[y:y + 24, 40:40 + length] = 120
        if length in flipped_lengths:
            page[y:y + 24, 40 + length - length // 4:40 + length] = 0
        else:
            page[y:y + 24, 40:40 + length // 4] = 0
        texts[length] = f"line {length}"
    return page, texts


@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3])
def test_a_turned_page_is_read_upright_and_its_boxes_stay_on_the_uploaded_page(quarter_turns):
    page, texts = page_of_bars()
    uploaded = np.ascontiguousarray(np.rot90(page, quarter_turns))
    reading = le.read_page(StandIn(texts), uploaded)
    assert sorted(line.text for line in reading.lines) == sorted(texts.values())
    assert all(line.score > 0.9 for line in reading.lines)
    assert reading.turned == (360 - 90 * quarter_turns) % 360
    height, width = uploaded.shape[:2]
    for line in reading.lines:  # each box lies on a dark bar of the page as uploaded
        x, y = line.box.mean(axis=0)
        assert 0 <= x <= width and 0 <= y <= height
        assert uploaded[int(y), int(x)].max() < 200
    # reading order is taken on the upright page: the longest bar is the top one
    top = min(reading.lines, key=lambda line: line.upright_box[:, 1].min())
    assert top.text == "line 500"


def test_a_weak_line_upside_down_on_an_upright_page_is_read_again_the_other_way():
    page, texts = page_of_bars(flipped_lengths={240})
    reading = le.read_page(StandIn(texts), page)
    assert reading.turned == 0 and reading.rereads == 1
    assert sorted(line.text for line in reading.lines) == sorted(texts.values())


def test_a_weak_line_keeps_its_reading_when_the_other_way_is_worse():
    page, texts = page_of_bars()
    reading = le.read_page(StandIn(texts, weak={300}), page)
    assert reading.turned == 0 and reading.rereads == 0
    weak = next(line for line in reading.lines if line.text == "line 300")
    assert weak.score == 0.5


def test_vertical_boxes_mean_a_sideways_page_and_square_ones_say_nothing():
    assert le.is_turned_sideways([rect(0, 0, 20, 300), rect(40, 0, 60, 280), rect(0, 0, 100, 30)])
    assert not le.is_turned_sideways([rect(0, 0, 300, 20), rect(0, 40, 280, 60), rect(0, 0, 20, 100)])
    assert not le.is_turned_sideways([rect(0, 0, 30, 30), rect(50, 50, 80, 80)])


def test_a_tile_of_plain_background_is_skipped_and_one_with_a_stroke_is_not():
    desk = np.full((400, 400, 3), 226, dtype=np.uint8)
    desk += np.random.default_rng(1).integers(0, 8, desk.shape, dtype=np.uint8)  # JPEG-like ripple
    assert le.is_blank(desk)
    desk[200:203, 100:300] = 40  # one thin dark stroke
    assert not le.is_blank(desk)


def test_a_skewed_form_is_levelled_so_a_label_and_its_value_share_a_row():
    angle = np.radians(5)
    turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]], dtype=np.float32)
    label, value = rect(50, 100, 200, 130) @ turn, rect(700, 100, 1000, 130) @ turn  # one row, turned 5 degrees
    below = rect(50, 200, 600, 230) @ turn
    assert abs(value[:, 1].mean() - label[:, 1].mean()) > 30  # skewed: the value sits a row lower
    assert le.skew([label, value, below]) == pytest.approx(angle, abs=1e-3)
    flat_label, flat_value, _ = le.levelled([label, value, below], le.skew([label, value, below]))
    assert abs(flat_value[:, 1].mean() - flat_label[:, 1].mean()) < 1


def test_a_slight_or_lonely_slope_is_not_taken_for_skew():
    slight = np.radians(0.5)
    turn = np.array([[np.cos(slight), np.sin(slight)], [-np.sin(slight), np.cos(slight)]], dtype=np.float32)
    assert le.skew([rect(0, 100 * i, 900, 100 * i + 30) @ turn for i in range(4)]) == 0.0
    assert le.skew([rect(0, 0, 900, 30) @ (turn * 0 + np.array([[0.996, 0.087], [-0.087, 0.996]]))]) == 0.0


def test_the_engine_backend_setting_is_checked_at_start_up():
    from fcocr.config import Settings
    from fcocr.errors import ConfigError

    assert Settings.from_env({}).family("local").ocr_engine == "onnxruntime"
    assert Settings.from_env({"FCOCR_ENGINE": "openvino"}).family("local").ocr_engine == "openvino"
    with pytest.raises(ConfigError, match="FCOCR_ENGINE='tensorrt' must be one of onnxruntime, openvino"):
        Settings.from_env({"FCOCR_ENGINE": "tensorrt"})


def test_recognition_batches_hold_lines_of_similar_width():
    ratios = [1.0, 1.2, 1.4, 2.0, 2.5, 2.9, 3.1, 10.0, 12.0] + [20.0] * 10
    batches = le.rec_batches(ratios)
    assert sorted(i for batch in batches for i in batch) == list(range(len(ratios)))
    assert all(len(batch) <= le.REC_BATCH for batch in batches)
    assert all(ratios[batch[-1]] <= le.REC_SPREAD * ratios[batch[0]] for batch in batches)
    assert [len(batch) for batch in batches] == [1, 1, 1, 1, 1, 2, 1, 1, 8, 2]


# ---------------------------------------------------------------------------
# the first look at a small scale


def test_a_first_look_is_taken_only_where_it_saves_and_never_on_a_strip():
    assert le.coarse_scale(1600, 1000, 1.0) == pytest.approx(0.6)  # 1600×1000 seen at 960×600
    assert le.coarse_scale(1000, 460, 1.6) == pytest.approx(0.96)  # a small page is not scaled up first
    assert le.coarse_scale(4000, 3000, 0.5) == pytest.approx(0.24)
    assert le.coarse_scale(900, 700, 1.05) is None  # the plan is hardly bigger: one pass
    assert le.coarse_scale(4000, 20, 3.2) is None  # strips have their own plan


def text_map(height=300, width=600):
    return le.TextMap(np.zeros((height, width), dtype=np.float32), np.ones(2, dtype=np.float32), 0)


def test_a_first_look_is_trusted_when_every_line_is_boxed_and_tall_enough():
    seen = text_map()
    boxes = [rect(40, 40 + 60 * i, 500, 70 + 60 * i) for i in range(4)]  # 30 px tall lines
    for i in range(4):
        seen.probability[48 + 60 * i:62 + 60 * i, 50:490] = 0.9  # each line's core, inside its box
    assert le.trusted(boxes, seen)
    assert not le.trusted(boxes[:2], seen)  # too few lines to judge a page by (and text outside them)


def test_a_first_look_is_not_trusted_when_small_print_may_have_been_missed():
    seen = text_map()
    boxes = [rect(40, 40 + 60 * i, 500, 70 + 60 * i) for i in range(4)]
    for i in range(4):
        seen.probability[48 + 60 * i:62 + 60 * i, 50:490] = 0.9
    thin = boxes[:3] + [rect(40, 220, 500, 230)]  # a 10 px box: smaller print may sit unseen beside it
    assert not le.trusted(thin, seen)
    stray = seen.probability.copy()
    stray[280:284, 100:400] = 0.5  # text the detector saw but made no box of
    assert not le.trusted(boxes, le.TextMap(stray, seen.factor, 0))
    run_together = seen.probability.copy()
    run_together[40:70, 50:490] = 0.0
    run_together[42:48, 50:490] = run_together[56:62, 50:490] = 0.9  # two rows of small print in one box
    assert le.rows_in_box(run_together, boxes[0]) == 2 and le.rows_in_box(seen.probability, boxes[1]) == 1
    assert not le.trusted(boxes, le.TextMap(run_together, seen.factor, 0))


def _drawn_page(small_size: int | None) -> np.ndarray:
    """An A4 page at 150 dpi: ten lines of large print and, optionally, three lines of small print."""
    from PIL import Image, ImageDraw, ImageFont

    page = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(page)
    large = ImageFont.load_default(size=30)
    for i in range(10):
        draw.text((100, 100 + 60 * i), f"INVOICE LINE {i} AMOUNT {1000 + 37 * i}.50 CNY", fill="black", font=large)
    if small_size:
        small = ImageFont.load_default(size=small_size)
        for j in range(3):
            draw.text((100, 1000 + j * (small_size + 6)), f"SMALL PRINT {j} TERMS 4321{j}", fill="black", font=small)
    return np.ascontiguousarray(np.asarray(page)[:, :, ::-1])


@pytest.fixture(scope="module")
def models():
    pytest.importorskip("rapidocr")
    from fcocr.recognizers.local import engine

    return le.Models(engine())


def test_a_page_of_large_print_is_detected_once_at_the_first_looks_scale(models, monkeypatch):
    scales = []
    original = models.detect_with_map
    monkeypatch.setattr(models, "detect_with_map", lambda bgr, scale: scales.append(scale) or original(bgr, scale))
    reading = le.read_page(models, _drawn_page(None))
    assert scales == [pytest.approx(960 / 1754)] and reading.tiles == 1
    assert sorted(line.text for line in reading.lines) == sorted(
        f"INVOICE LINE {i} AMOUNT {1000 + 37 * i}.50 CNY" for i in range(10))


def test_small_print_beside_large_print_sends_the_page_to_the_full_pass(models, monkeypatch):
    scales = []
    original = models.detect_with_map
    monkeypatch.setattr(models, "detect_with_map", lambda bgr, scale: scales.append(scale) or original(bgr, scale))
    reading = le.read_page(models, _drawn_page(11))  # 11 px print: 6 px at the first look's scale
    assert scales == [pytest.approx(960 / 1754), 1.0] and reading.tiles == 2
    texts = [line.text.replace(" ", "") for line in reading.lines]
    assert all(f"SMALLPRINT{j}TERMS4321{j}" in texts for j in range(3)), texts


# ---------------------------------------------------------------------------
# short lines share a row of the recognizer's input


def test_short_crops_share_rows_and_wide_ones_have_a_row_each():
    widths = [100, 60, 300, 320, 900, 150, 40, 120]
    rows = le.pack_rows(widths)
    placed = sorted(i for row in rows for i, _ in row)
    assert placed == list(range(len(widths)))  # every crop once
    for row in rows:
        if any(widths[i] >= le.REC_FLOOR for i, _ in row):
            assert len(row) == 1 and row[0][1] == 0
            continue
        edges = [(left, left + widths[i]) for i, left in row]
        assert edges[0][0] == 0 and edges[-1][1] <= le.REC_FLOOR
        assert all(b[0] - a[1] == le.PACK_GAP for a, b in zip(edges, edges[1:], strict=False))  # a gap apart
    assert len(rows) == 5  # 320 and 900 alone; 300 alone (nothing fits beside it); 150+120, 100+60+40


def test_each_column_of_a_row_is_read_for_exactly_one_crop():
    widths = [100, 60, 40]
    row = [(0, 0), (1, 132), (2, 224)]
    slices = le.row_slices(row, widths, 320)
    assert slices == [(0.0, 116.0), (116.0, 208.0), (208.0, 320.0)]  # gaps split in the middle


def test_short_lines_read_in_shared_rows_read_as_they_do_alone(models, monkeypatch):
    from PIL import Image, ImageDraw, ImageFont

    words = ["PAGE 0", "A4", "13%", "10", "TOTAL", "2026", "NO.7", "CNY", "OK", "B-12"]
    font = ImageFont.load_default(size=28)
    crops = []
    for word in words:
        image = Image.new("RGB", (int(font.getlength(word)) + 16, 40), "white")
        ImageDraw.Draw(image).text((8, 4), word, fill="black", font=font)
        crops.append(np.ascontiguousarray(np.asarray(image)[:, :, ::-1]))
    shapes = []
    session = models.rec.session
    monkeypatch.setattr(models.rec, "session", lambda tensor: shapes.append(tensor.shape) or session(tensor))
    packed = models.recognize(crops)
    assert [text for text, _ in packed] == words
    assert all(score > 0.9 for _, score in packed)
    # ten short lines in a few rows of 320 px, not ten rows
    assert sum(shape[0] for shape in shapes) <= 4 and all(shape[3] == le.REC_FLOOR for shape in shapes)
    alone = [models.recognize([crop])[0][0] for crop in crops]
    assert alone == words


class RowCountingRecognizer:
    """A stand-in recognizer that reads a crop as ``shared`` with confidence 0.5 when its row of the input
    holds other crops, and as ``alone`` with ``alone_score`` otherwise."""

    def __init__(self, alone_score: float):
        self.alone_score = alone_score

    def session(self, tensor):
        occupied = tensor[:, 0, 0, :] != 0  # crops are white (1.0); padding and gaps are 0
        runs = occupied[:, 0].astype(int) + (occupied[:, 1:] & ~occupied[:, :-1]).sum(axis=1)
        preds = np.zeros((tensor.shape[0], tensor.shape[3] // 8, 1), dtype=np.float32)
        preds[:, :, 0] = runs[:, None]
        return preds

    def postprocess_op(self, piece, _word_boxes):
        shared = piece[0, 0, 0] > 1
        return [("shared", 0.5) if shared else ("alone", self.alone_score)], []


def _models_with(recognizer):
    models = le.Models.__new__(le.Models)
    models.rec = recognizer
    return models


def test_a_weak_reading_from_a_shared_row_is_replaced_by_the_line_read_alone():
    crops = [np.full((40, 60, 3), 255, dtype=np.uint8) for _ in range(3)]  # short: they share a row
    assert le.pack_rows([72] * 3) == [[(0, 0), (1, 104), (2, 208)]]
    assert _models_with(RowCountingRecognizer(alone_score=0.95)).recognize(crops) == [("alone", 0.95)] * 3
    # even when alone reads it with less confidence: that is how the line reads without neighbours
    assert _models_with(RowCountingRecognizer(alone_score=0.3)).recognize(crops) == [("alone", 0.3)] * 3


def test_a_slanted_line_of_words_is_one_row_and_two_slanted_rows_are_two():
    import cv2

    angle = np.radians(6)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    origin = np.array([40.0, 40.0])

    def slanted(x0, y0, x1, y1):  # a rectangle in the line's own frame, placed on the page turned by 6 degrees
        return np.array([origin + x * along + y * across for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))],
                        dtype=np.float32)

    seen = np.zeros((200, 700), dtype=np.float32)
    for word in range(6):  # six words with gaps between them, the core of one line 14 px thick
        cv2.fillPoly(seen, [np.round(slanted(10 + 100 * word, 8, 90 + 100 * word, 22)).astype(np.int32)], 0.9)
    line = slanted(0, 0, 600, 30)
    assert le.rows_in_box(seen, line) == 1
    two = np.zeros_like(seen)
    for y0 in (4, 18):  # two thin rows of small print in one box
        cv2.fillPoly(two, [np.round(slanted(10, y0, 590, y0 + 6)).astype(np.int32)], 0.9)
    assert le.rows_in_box(two, line) == 2
