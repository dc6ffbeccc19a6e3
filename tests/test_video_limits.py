"""RecognizeVideoCharacter's limits (seed 000: under 60 s, at most 35 fps, sides over 20 and under 4096 px) are
read from the video's header and checked before the paid call."""

from __future__ import annotations

import pytest

from fcocr.imaging import sniff_format
from fcocr.videoinfo import VideoInfo, video_info

from .cloud import AK, SK, TOKEN, result, route, upload
from .emulators.viapi import ViapiEmulator
from .videos import avi, mp4


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("moov_last", [False, True])
def test_the_mp4_header_gives_duration_frame_rate_and_size(version, moov_last):
    data = mp4(12.5, 25, 1280, 720, version=version, moov_last=moov_last)
    assert sniff_format(data) == "mp4"
    info = video_info(data, "mp4")
    assert info.duration_seconds == pytest.approx(12.5) and info.frame_rate == pytest.approx(25, rel=0.01)
    assert (info.width, info.height) == (1280, 720)  # the video track's, not the sound track's (listed first)


def test_the_avi_header_gives_duration_frame_rate_and_size():
    data = avi(30, 30, 640, 480)
    assert sniff_format(data) == "avi"
    info = video_info(data, "avi")
    assert info.duration_seconds == pytest.approx(30, rel=0.01) and info.frame_rate == pytest.approx(30, rel=0.01)
    assert (info.width, info.height) == (640, 480)


@pytest.mark.parametrize("data", [b"\x00\x00\x00\x20ftypisom" + b"\xff" * 40, mp4(10, 25, 640, 480)[:120],
                                  b"\x00\x00\x00\x01" * 64, b"\x00\x00\x00\x08moov" + b"\x00\x00\xff\xffmvhd" * 9])
def test_a_damaged_or_headerless_video_says_nothing_rather_than_failing(data):
    assert video_info(data, "mp4") == VideoInfo()
    assert video_info(data, "h264") == VideoInfo()


@pytest.fixture
def viapi(monkeypatch, oss):
    with ViapiEmulator(credentials={AK: (SK, TOKEN)}, oss=oss) as emulator:
        monkeypatch.setenv("FCOCR_ALIYUN_OCR_ENDPOINT", emulator.endpoint)
        monkeypatch.setenv("FCOCR_VIAPI_POLL_MS", "5")
        yield emulator


@pytest.mark.parametrize("name,data,code", [
    ("long.mp4", mp4(61, 25, 1280, 720), "VideoTooLong"),
    ("sixty.mp4", mp4(60, 25, 1280, 720), "VideoTooLong"),  # "under 60 s"
    ("fast.mp4", mp4(10, 60, 1280, 720), "VideoFrameRateTooHigh"),
    ("huge.mp4", mp4(10, 25, 4096, 2160), "ImageSizeOutOfRange"),
    ("tiny.avi", avi(10, 25, 20, 240), "ImageSizeOutOfRange"),
    ("long.avi", avi(90, 25, 640, 480), "VideoTooLong"),
])
def test_a_video_outside_the_limits_fails_plainly_before_any_call(monkeypatch, oss, viapi, name, data, code):
    route(monkeypatch, "aliyun.RecognizeVideoCharacter")
    upload(oss, f"video/{name}", data)
    doc = result(oss, f"video/{name}")
    assert doc["status"] == "failed" and doc["error"]["code"] == code and doc["error"]["retryable"] is False
    assert not viapi.requests  # nothing was submitted, nothing billed


def test_a_video_inside_the_limits_is_submitted(monkeypatch, oss, viapi):
    route(monkeypatch, "aliyun.RecognizeVideoCharacter")
    upload(oss, "video/ok.mp4", mp4(59.5, 35, 1920, 1080))
    doc = result(oss, "video/ok.mp4")
    assert doc["status"] == "succeeded", doc.get("error")
    assert [r.action for r in viapi.requests][0] == "RecognizeVideoCharacter"
