"""viapi limits checked before paying (seed 000): RecognizeVideoCharacter's duration (under 60 s), frame rate (at most
35 fps) and size (20-4096 px) read from the video header; RecognizeQrCode's batch of up to 10 images a call."""

from __future__ import annotations

import pytest

from fcocr.imaging import sniff_format
from fcocr.videoinfo import VideoInfo, video_info

from .cloud import AK, SK, TOKEN, result, route, upload, viapi_emulator
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
    with viapi_emulator(monkeypatch, oss) as emulator:
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


def test_qr_codes_of_a_many_page_document_go_ten_pages_a_call(monkeypatch, oss, viapi):
    from .cloud import pdf

    route(monkeypatch, "aliyun.RecognizeQrCode")
    upload(oss, "qr/pages.pdf", pdf(12))
    doc = result(oss, "qr/pages.pdf")
    calls = [r for r in viapi.requests if r.action == "RecognizeQrCode"]
    assert [len(r.params) for r in calls] == [10, 2]  # 12 pages: two calls, not twelve
    assert [sorted(r.params) for r in calls][1] == ["Tasks.1.ImageURL", "Tasks.2.ImageURL"]
    assert doc["status"] == "succeeded" and [p["index"] for p in doc["pages"]] == list(range(12))
    pages = doc["fields"]["pages"]
    assert len(pages) == 12 and all(len(p["Elements"]) == 1 for p in pages)
    # Each page keeps the element of its own task: the URL it was fetched from, in the order sent (its
    # credentials masked, as in every result).
    from fcocr.errors import scrub

    sent = [r.params[f"Tasks.{n}.ImageURL"] for r in calls for n in range(1, len(r.params) + 1)]
    assert [p["Elements"][0]["ImageURL"] for p in pages] == [scrub(url) for url in sent]
    assert all("cloud-token" not in p["Elements"][0]["ImageURL"] for p in pages)
    assert doc["billedCalls"] == {"aliyun.RecognizeQrCode": 12}


def test_a_single_image_qr_request_is_unchanged(monkeypatch, oss, viapi):
    from .cloud import image

    route(monkeypatch, "aliyun.RecognizeQrCode")
    upload(oss, "qr/one.png", image(fmt="PNG"))
    [call] = viapi.requests
    assert list(call.params) == ["Tasks.1.ImageURL"] and result(oss, "qr/one.png")["status"] == "succeeded"


def test_the_viapi_emulator_refuses_a_video_of_60_s_or_more_as_the_service_would(oss, viapi):
    from fcocr.errors import FcocrError
    from fcocr.recognizers.aliyun import ViapiClient
    from fcocr.runtime import Credentials
    from fcocr.storage import OssStorage

    client = ViapiClient(viapi.endpoint, Credentials(AK, SK, TOKEN))
    for name, data in (("short.mp4", mp4(30, 25, 640, 480)), ("long.mp4", mp4(60, 25, 640, 480))):
        oss.put("fcocr-cloud", f"video/{name}", data)
    storage = OssStorage("fcocr-cloud", endpoint=oss.endpoint, region="cn-shanghai",
                         credentials=Credentials(AK, SK, TOKEN))
    client.call("RecognizeVideoCharacter", {"VideoURL": storage.presign_get("video/short.mp4", 60)}, 10)
    with pytest.raises(FcocrError) as refused:
        client.call("RecognizeVideoCharacter", {"VideoURL": storage.presign_get("video/long.mp4", 60)}, 10)
    assert "InvalidParameter" in str(refused.value) and viapi.requests[-1].error_code == "InvalidParameter"
