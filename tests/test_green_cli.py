"""The Content Security settings checked at start-up, and the local tools: `fcocr invoke scan-callback`,
`fcocr invoke scan-reconcile` and `fcocr serve callback` (a real process serving real HTTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from fcocr.config import Settings
from fcocr.errors import ConfigError
from fcocr.tools import cli

from .conftest import REPO

SAMPLE_UID, SAMPLE_SEED = "1234567890123456", "fcocr_sample_seed"


# ------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("env,word", [
    ({"GREEN_SEED": "has space"}, "GREEN_SEED"),
    ({"GREEN_SEED": "a" * 65}, "GREEN_SEED"),
    ({"GREEN_SEED": "种子"}, "GREEN_SEED"),
    ({"GREEN_UID": "RAM-user-42"}, "GREEN_UID"),
    ({"GREEN_CRYPT_TYPE": "MD5"}, "GREEN_CRYPT_TYPE"),
    ({"GREEN_CALLBACK_URL": "fc.example.com/cb", "GREEN_SEED": "s", "GREEN_UID": "1"}, "GREEN_CALLBACK_URL"),
    ({"GREEN_CALLBACK_URL": "https://fc.example.com/cb", "GREEN_UID": "1"}, "GREEN_SEED"),
    ({"FCOCR_GREEN_ENDPOINT": "green.cn-shanghai.aliyuncs.com"}, "FCOCR_GREEN_ENDPOINT"),
    ({"FCOCR_RECONCILE_BUCKETS": "ok-bucket,Not_A_Bucket"}, "FCOCR_RECONCILE_BUCKETS"),
    ({"FCOCR_RECONCILE_AFTER": "-1"}, "FCOCR_RECONCILE_AFTER"),
])
def test_bad_green_settings_stop_the_start_naming_the_variable_not_the_secret(env, word):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert word in info.value.message
    for name in ("GREEN_SEED", "GREEN_UID"):
        if name in env and env[name] not in ("1", "s"):
            assert env[name] not in info.value.message


def test_green_settings_and_what_repr_hides():
    settings = Settings.from_env({"GREEN_UID": "1918273645546372", "GREEN_SEED": "Seed_64_" + "x" * 56,
                                  "GREEN_CRYPT_TYPE": "sm3", "GREEN_CALLBACK_URL": "https://cb.example.com/",
                                  "FCOCR_RECONCILE_BUCKETS": " in-a , in-b ,", "FCOCR_RECONCILE_AFTER": "0"})
    assert settings.family("green").crypt_type == "SM3" and settings.family("green").callback_url == "https://cb.example.com"
    assert settings.reconcile_buckets == ("in-a", "in-b") and settings.reconcile_after == 0
    assert settings.family("green").endpoint == "https://green.cn-shanghai.aliyuncs.com"
    assert "1918273645546372" not in repr(settings) and "Seed_64_" not in repr(settings)
    defaults = Settings.from_env({})
    assert (defaults.family("green").crypt_type, defaults.reconcile_buckets, defaults.reconcile_after) == ("SHA256", (), 60)


def test_a_green_route_is_accepted_at_start_up(monkeypatch):
    from fcocr.routing import Router

    router = Router.from_data({"routes": [{"match": "tickets/**", "recognizer": "green.taxi-ticket"}]}, "test")
    assert router.routes[0].recognizer == "green.taxi-ticket"


# -------------------------------------------------------------------------------------- invoke
@pytest.mark.parametrize("sample,crypt", [("green-callback-sha256.json", "SHA256"), ("green-callback-sm3.json", "SM3")])
def test_invoke_scan_callback_replays_a_signed_sample(tmp_path, monkeypatch, capsys, sample, crypt):
    monkeypatch.setenv("GREEN_UID", SAMPLE_UID)
    monkeypatch.setenv("GREEN_SEED", SAMPLE_SEED)
    monkeypatch.setenv("GREEN_CRYPT_TYPE", crypt)
    event = str(REPO / "events" / sample)
    # Any answer but 2xx is a failure the service would see: the command says so with its exit status.
    assert cli.main(["invoke", "scan-callback", "--event", event, "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().out.strip() == "HTTP 404: unknown dataId"  # verified: no such task here
    monkeypatch.setenv("GREEN_SEED", "someone_elses_seed")
    assert cli.main(["invoke", "scan-callback", "--event", event]) == 1
    assert capsys.readouterr().out.strip() == "HTTP 403: bad checksum"


def test_invoke_scan_callback_needs_an_event():
    with pytest.raises(SystemExit) as info:
        cli.main(["invoke", "scan-callback"])
    assert "--event" in str(info.value)


def test_invoke_scan_reconcile_runs_the_timer_once(tmp_path, monkeypatch, capsys):
    (tmp_path / "in-bucket" / ".fcocr-tasks").mkdir(parents=True)
    (tmp_path / "in-bucket" / ".fcocr-tasks" / ("0" * 40 + ".done")).write_text(
        json.dumps({"dataId": "in-bucket/" + "0" * 40, "taskId": "t", "status": "succeeded",
                    "finalizedAt": "2020-01-01T00:00:00.000Z"}))
    monkeypatch.setenv("FCOCR_RECONCILE_BUCKETS", "in-bucket")
    event = str(REPO / "events" / "timer-reconcile.json")
    assert cli.main(["invoke", "scan-reconcile", "--event", event, "--root", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["buckets"] == {"in-bucket": {"receiptsDropped": 1}}  # an old receipt, cleaned up
    assert not list((tmp_path / "in-bucket" / ".fcocr-tasks").iterdir())


# --------------------------------------------------------------------------------------- serve
def test_serve_callback_serves_the_samples_over_http(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FCOCR_", "GREEN_", "HTTP", "http"))}
    env.update(GREEN_UID=SAMPLE_UID, GREEN_SEED=SAMPLE_SEED, FCOCR_LOCAL_ROOT=str(tmp_path), FCOCR_LOG_LEVEL="ERROR")
    proc = subprocess.Popen([sys.executable, "-m", "fcocr.tools.cli", "serve", "callback", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    try:
        line = proc.stdout.readline()  # printed once the socket listens: the synchronisation, no sleep
        assert "listening on http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split("listening on ", 1)[1].split()[0]
        event = json.loads((REPO / "events" / "green-callback-sha256.json").read_text("utf-8"))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(url, data=event["body"].encode("ascii"), method="POST",
                                         headers={"Content-Type": event["headers"]["Content-Type"]})
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open(request, timeout=10)
        assert info.value.code == 404 and json.loads(info.value.read())["reason"] == "unknown dataId"
        tampered = urllib.request.Request(url, data=event["body"].replace("G0000", "G0001").encode("ascii"),
                                          method="POST", headers={"Content-Type": event["headers"]["Content-Type"]})
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open(tampered, timeout=10)
        assert info.value.code == 403
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_serve_refuses_a_bad_setting_before_listening(monkeypatch, capsys):
    monkeypatch.setenv("GREEN_SEED", "bad seed!")
    assert cli.main(["serve", "callback", "--port", "0"]) == 2
    assert "GREEN_SEED" in capsys.readouterr().err
