"""Minimal MP4 and AVI headers with a chosen duration, frame rate and size (no media data): what the checks read."""

from __future__ import annotations

import struct


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, payload: bytes, version: int = 0) -> bytes:
    return _box(kind, bytes([version, 0, 0, 0]) + payload)


def mp4(seconds: float, fps: float, width: int, height: int, *, version: int = 0, moov_last: bool = False) -> bytes:
    timescale = 1000
    duration = int(seconds * timescale)
    frames = int(round(seconds * fps))
    if version == 0:
        mvhd = struct.pack(">IIII", 0, 0, timescale, duration) + bytes(80)
        tkhd = struct.pack(">IIIII", 0, 0, 1, 0, duration) + bytes(52) + struct.pack(">II", width << 16, height << 16)
        mdhd = struct.pack(">IIII", 0, 0, timescale, duration) + bytes(4)
    else:
        mvhd = struct.pack(">QQIQ", 0, 0, timescale, duration) + bytes(80)
        tkhd = struct.pack(">QQIIQ", 0, 0, 1, 0, duration) + bytes(52) + struct.pack(">II", width << 16, height << 16)
        mdhd = struct.pack(">QQIQ", 0, 0, timescale, duration) + bytes(4)
    sound = _box(b"trak", _full(b"tkhd", tkhd) + _box(b"mdia", _full(b"hdlr", bytes(4) + b"soun" + bytes(12))))
    delta = duration // frames if frames else 0
    video = _box(b"trak", _full(b"tkhd", tkhd, version) + _box(b"mdia", _full(b"mdhd", mdhd, version)
                 + _full(b"hdlr", bytes(4) + b"vide" + bytes(12))
                 + _box(b"minf", _box(b"stbl", _full(b"stts", struct.pack(">III", 1, frames, delta))))))
    moov = _box(b"moov", _full(b"mvhd", mvhd, version) + sound + video)
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41")
    mdat = _box(b"mdat", bytes(256))
    return ftyp + (mdat + moov if moov_last else moov + mdat)


def avi(seconds: float, fps: float, width: int, height: int) -> bytes:
    per_frame = int(1_000_000 / fps)
    avih = struct.pack("<10I", per_frame, 0, 0, 0, int(seconds * fps), 0, 1, 0, width, height) + bytes(16)
    hdrl = b"LIST" + struct.pack("<I", 4 + 8 + len(avih)) + b"hdrl" + b"avih" + struct.pack("<I", len(avih)) + avih
    body = b"AVI " + hdrl + b"JUNK" + struct.pack("<I", 64) + bytes(64)
    return b"RIFF" + struct.pack("<I", len(body)) + body
