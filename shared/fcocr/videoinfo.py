"""What a video's header says: duration, frame rate and size, read without decoding anything (standard library).

For checks before a paid call (RecognizeVideoCharacter bills per input second and refuses videos of 60 s or more,
over 35 fps, or outside 20–4096 px). MP4/MOV: ``moov/mvhd`` (timescale, duration), each video ``trak``'s ``tkhd``
(width, height, 16.16 fixed point) and its ``mdia/mdhd`` + ``minf/stbl/stts`` (samples over the media duration =
frame rate). AVI: the ``avih`` main header (microseconds per frame, total frames, width, height). A raw H.264
stream has no header saying any of this: nothing is read from it.

Hostile input: every box size is checked against its parent, depth and box count are bounded, and a value that
cannot be read is left ``None`` (the vendor judges what fcocr cannot), never an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_DEPTH = 8
MAX_BOXES = 10_000
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


@dataclass(frozen=True)
class VideoInfo:
    duration_seconds: float | None = None
    frame_rate: float | None = None
    width: int | None = None
    height: int | None = None


def _boxes(data: bytes, start: int, end: int, counter: list[int]):
    """(type, payload start, payload end) of each box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        counter[0] += 1
        if counter[0] > MAX_BOXES:
            return
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _full_box(data: bytes, start: int, end: int, v0: str, v1: str) -> tuple | None:
    if start + 4 > end:
        return None
    fmt = v1 if data[start] == 1 else v0
    if start + 4 + struct.calcsize(fmt) > end:
        return None
    return struct.unpack_from(fmt, data, start + 4)


def mp4_info(data: bytes) -> VideoInfo:
    counter = [0]
    duration = width = height = rate = None
    top = {kind: (s, e) for kind, s, e in _boxes(data, 0, len(data), counter)}
    if b"moov" not in top:
        return VideoInfo()
    moov_start, moov_end = top[b"moov"]
    for kind, s, e in _boxes(data, moov_start, moov_end, counter):
        if kind == b"mvhd":
            values = _full_box(data, s, e, ">IIII", ">QQIQ")
            if values and values[2]:
                duration = values[3] / values[2]
        elif kind == b"trak":
            track = _track(data, s, e, counter)
            if track is not None and width is None:
                width, height, rate = track
    return VideoInfo(duration, rate, width, height)


def _track(data: bytes, start: int, end: int, counter: list[int]) -> tuple | None:
    """(width, height, frame rate) of a video track; None for other tracks."""
    size = None
    is_video = False
    timescale = media_duration = samples = None
    stack = [(start, end, 0)]
    while stack:
        s0, e0, depth = stack.pop()
        for kind, s, e in _boxes(data, s0, e0, counter):
            if kind in _CONTAINERS and depth < MAX_DEPTH:
                stack.append((s, e, depth + 1))
            elif kind == b"tkhd":
                # After version/flags: times, track id, reserved, duration, reserved, layer...matrix (52 bytes),
                # then width and height in 16.16 fixed point.
                v = _full_box(data, s, e, ">IIII I 8x 2x2x2x2x 36x II", ">QQII Q 8x 2x2x2x2x 36x II")
                if v:
                    size = (v[-2] >> 16, v[-1] >> 16)
            elif kind == b"hdlr":
                is_video = e >= s + 12 and data[s + 8:s + 12] == b"vide"
            elif kind == b"mdhd":
                v = _full_box(data, s, e, ">IIII", ">QQIQ")
                if v:
                    timescale, media_duration = v[2], v[3]
            elif kind == b"stts" and e >= s + 8:
                count = struct.unpack_from(">I", data, s + 4)[0]
                count = min(count, (e - s - 8) // 8)
                samples = sum(struct.unpack_from(">I", data, s + 8 + 8 * i)[0] for i in range(count))
    if not is_video:
        return None
    rate = samples * timescale / media_duration if samples and timescale and media_duration else None
    return (size[0], size[1], rate) if size else (None, None, rate)


def avi_info(data: bytes) -> VideoInfo:
    at = data.find(b"avih", 0, 4096)
    if at < 0 or at + 8 + 40 > len(data):
        return VideoInfo()
    per_frame, _, _, _, frames, _, _, _, width, height = struct.unpack_from("<10I", data, at + 8)
    rate = 1_000_000 / per_frame if per_frame else None
    duration = frames * per_frame / 1_000_000 if per_frame and frames else None
    return VideoInfo(duration, rate, width or None, height or None)


def video_info(data: bytes, fmt: str) -> VideoInfo:
    """What the header of a ``fmt`` video (mp4, avi, h264) says; fields it does not say are None."""
    try:
        if fmt == "mp4":
            return mp4_info(data)
        if fmt == "avi":
            return avi_info(data)
    except (struct.error, IndexError, ValueError):  # a damaged header: say nothing, the vendor decides
        return VideoInfo()
    return VideoInfo()
