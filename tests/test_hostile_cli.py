"""The fcocr command against careless arguments and a hostile world: plain messages instead of tracebacks, a
run that survives a document it cannot finish, an honest summary after Ctrl-C, a server that drops stalled
clients. The recognizer is a stand-in except where the engine's own output is what is tested."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest

from fcocr.model import Outcome
from fcocr.recognizers import local
from fcocr.tools import cli


# ------------------------------------------------------------------------------ --event
@pytest.mark.parametrize("function", ["ocr-upload", "scan-callback", "scan-reconcile"])
def test_a_missing_or_directory_event_file_is_a_plain_message(tmp_path, function):
    for path, words in ((tmp_path / "missing.json", "No such file"), (tmp_path, "is a directory")):
        with pytest.raises(SystemExit) as info:
            cli.main(["invoke", function, "--event", str(path), "--root", str(tmp_path)])
        assert str(path) in str(info.value) and words in str(info.value)


# ------------------------------------------------------------------------------ numbers on the command line
@pytest.mark.parametrize("argv", [["process", "x", "--workers", "0"], ["demo", "--workers", "-2"],
                                  ["process", "x", "--workers", "many"], ["serve", "callback", "--port", "70000"],
                                  ["serve", "callback", "--port", "-1"]])
def test_a_number_out_of_range_is_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_workers_below_one_are_refused_not_silently_one(tmp_path):
    with pytest.raises(SystemExit, match="at least 1"):
        cli.process_paths([str(tmp_path)], workers=0)


def test_a_port_in_use_is_a_plain_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as info:
            cli.main(["serve", "callback", "--port", str(port)])
    assert f"127.0.0.1:{port}" in str(info.value) and "cannot listen" in str(info.value)


# ------------------------------------------------------------------------------ process
def test_a_result_that_cannot_be_written_fails_that_document_and_the_run_goes_on(tmp_path, recognized, capsys):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"a")
    (folder / "b.png").write_bytes(b"b")
    (folder / "a.png.ocr.json").mkdir()  # nothing can replace a directory with a file
    assert cli.main(["process", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "2 documents: 1 failed, 1 succeeded" in out and "StorageUnavailable" in out
    assert json.loads((folder / "b.png.ocr.json").read_text("utf-8"))["status"] == "succeeded"
    assert cli.main(["process", str(folder), "--strict"]) == 1


def test_a_bug_on_one_document_is_a_failed_row_not_the_end_of_the_run(tmp_path, recognized, monkeypatch, capsys):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"a")
    (folder / "b.png").write_bytes(b"b")
    real = cli.process

    def crash_on_a(upload, runtime, application=None, **kw):
        if upload.key == "a.png":
            raise ZeroDivisionError("a bug")
        return real(upload, runtime, application, **kw)

    monkeypatch.setattr(cli, "process", crash_on_a)
    assert cli.main(["process", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "InternalError" in out and "2 documents: 1 failed, 1 succeeded" in out


def test_a_directory_that_cannot_be_listed_is_said_not_skipped_silently(tmp_path, recognized, monkeypatch, capsys):
    folder = tmp_path / "inbox"
    (folder / "locked").mkdir(parents=True)
    (folder / "locked" / "hidden.png").write_bytes(b"x")
    (folder / "ok.png").write_bytes(b"y")
    locked = str(folder / "locked")
    real_scandir = os.scandir

    def scandir(path="."):  # what a directory without read permission does (the tests may run as root)
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert cli.main(["process", str(folder), "--strict"]) == 1
    captured = capsys.readouterr()
    assert f"cannot list {locked}: Permission denied" in captured.err
    assert "1 documents: 1 succeeded" in captured.out


def test_the_summary_after_ctrl_c_counts_every_document_whose_result_was_written(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        (folder / name).write_bytes(name.encode())
    b_started, release_b = threading.Event(), threading.Event()

    def fake(self, capability, job, options):
        if job.source.key == "b.png":  # in flight when Ctrl-C arrives
            b_started.set()
            assert release_b.wait(60)
        return Outcome(lines=[], raw={})

    def ctrl_c_once_b_is_in_flight(self):
        assert b_started.wait(60)
        release_b.set()
        raise KeyboardInterrupt

    monkeypatch.setattr(local.LocalFamily, "recognize", fake)
    monkeypatch.setattr(cli.Progress, "advance", ctrl_c_once_b_is_in_flight)
    assert cli.main(["process", str(folder), "--workers", "2"]) == 130
    out = capsys.readouterr().out
    written = sorted(p.name for p in folder.glob("*.ocr.json"))
    assert "b.png.ocr.json" in written
    assert f"interrupted after {len(written)} of 4" in out and f"{len(written)} documents:" in out


def test_the_engine_says_nothing_about_blank_pages_at_log_level_error(tmp_path, capfd):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (800, 800), "white").save(blank)
    assert cli.main(["process", str(blank)]) == 0
    captured = capfd.readouterr()
    assert "detection result is empty" not in captured.err + captured.out
    assert json.loads((tmp_path / "blank.png.ocr.json").read_text("utf-8"))["lines"] == []


# ------------------------------------------------------------------------------ serve callback
def test_the_callback_server_drops_a_client_that_stalls_mid_body():
    server = cli.callback_server(read_timeout=0.5)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with socket.create_connection(server.server_address[:2], timeout=60) as client:
            client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                           b"Content-Length: 1000\r\n\r\ncontent=")
            # The server gives up on the body and closes: recv returns (an answer or EOF) instead of waiting on.
            answer = b""
            while chunk := client.recv(4096):
                answer += chunk
        assert not answer or answer.startswith(b"HTTP/1.")
    finally:
        server.shutdown()
        server.server_close()


def test_the_read_timeout_is_set_by_default():
    server = cli.callback_server()
    try:
        assert server.RequestHandlerClass.timeout == cli.READ_TIMEOUT_SECONDS > 0
    finally:
        server.server_close()


# ------------------------------------------------------------------------------ backfill --remote
@pytest.mark.parametrize("account,region", [("１２３４５", "cn-shanghai"), ("12345", "cn shanghai"),
                                            ("12345", "evil.com/x"), ("12345", "CN-SHANGHAI")])
def test_the_fc_endpoint_is_built_only_from_a_real_account_id_and_region(account, region):
    from fcocr.errors import ConfigError
    from fcocr.tools.backfill import fc_endpoint

    with pytest.raises(ConfigError):
        fc_endpoint(region, account, env={})
    assert fc_endpoint("cn-shanghai", "12345", env={}) == "https://12345.cn-shanghai.fc.aliyuncs.com"
