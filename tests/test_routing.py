import json

import pytest

from fcocr.errors import ConfigError, PermanentError
from fcocr.routing import NoRoute, Router, glob_to_regex


@pytest.mark.parametrize("pattern,key,expected", [
    ("idcard/**", "idcard/a.jpg", True),
    ("idcard/**", "idcard/x/y/a.jpg", True),
    ("idcard/**", "idcards/a.jpg", False),
    ("idcard/*", "idcard/a.jpg", True),
    ("idcard/*", "idcard/x/a.jpg", False),  # * stays inside one segment
    ("*.jpg", "a.jpg", True),
    ("*.jpg", "dir/a.jpg", False),
    ("**/*.jpg", "a.jpg", True),  # **/ also matches no directory
    ("**/*.jpg", "x/y/a.jpg", True),
    ("**", "anything/at/all.pdf", True),
    ("invoices/**/*.{jpg,png}", "invoices/2026/11/a.png", True),
    ("invoices/**/*.{jpg,png}", "invoices/2026/11/a.pdf", False),
    ("scan-?.png", "scan-1.png", True),
    ("scan-?.png", "scan-/.png", False),
    ("[ab]*.png", "b1.png", True),
    ("[!ab]*.png", "b1.png", False),
    ("a+b (1).png", "a+b (1).png", True),  # regex metacharacters are literal
    ("发票/**", "发票/2026年/报销 单.png", True),
    ("*.JPG", "a.jpg", False),  # keys are case-sensitive, like OSS
])
def test_globs(pattern, key, expected):
    assert bool(glob_to_regex(pattern).match(key)) is expected


def router(*routes):
    return Router.from_data({"routes": list(routes)}, "test")


def test_first_match_wins_and_is_recorded():
    r = router({"match": "special/**", "recognizer": "local.text", "options": {"minConfidence": 90}},
               {"match": "**", "recognizer": "local.text"})
    first = r.route_for("special/a.png")
    assert (first.options, first.match, first.via) == ({"minConfidence": 90.0}, "special/**", "route")
    other = r.route_for("b.png")
    assert (other.options, other.match) == ({"minConfidence": 50.0}, "**")


def test_a_key_no_route_matches_is_a_permanent_error():
    r = router({"match": "idcard/**", "recognizer": "local.text"})
    with pytest.raises(NoRoute) as info:
        r.route_for("other/a.png")
    assert "other/a.png" in info.value.message and not info.value.retryable


def test_metadata_override_beats_the_routes():
    r = router({"match": "never/**", "recognizer": "local.text"})
    decision = r.route_for("x.png", {"fcocr-recognizer": "local.text", "fcocr-options": '{"minConfidence": 10}'})
    assert (decision.recognizer, decision.via, decision.options) == ("local.text", "metadata", {"minConfidence": 10.0})


@pytest.mark.parametrize("meta,fragment", [
    ({"fcocr-recognizer": "nope.Nope"}, "unknown recognizer family"),
    ({"fcocr-recognizer": "aliyun.Nope"}, "unknown recognizer"),
    ({"fcocr-recognizer": "aliyun.GetAsyncJobResult"}, "cannot be routed to"),
    ({"fcocr-recognizer": "local.nope"}, "unknown recognizer 'local.nope'"),
    ({"fcocr-recognizer": "local.text", "fcocr-options": "{bad"}, "not JSON"),
    ({"fcocr-recognizer": "local.text", "fcocr-options": '{"color": 1}'}, "no option 'color'"),
])
def test_a_bad_metadata_override_fails_the_upload_not_the_process(meta, fragment):
    r = router({"match": "**", "recognizer": "local.text"})
    with pytest.raises(PermanentError) as info:
        r.route_for("x.png", meta)
    assert info.value.code == "BadRecognizerOverride" and fragment in info.value.message


@pytest.mark.parametrize("data,fragment", [
    ({"routes": [{"match": "**", "recognizer": "aliyun.Nothing"}]}, "routes[0]"),
    ({"routes": [{"match": "**", "recognizer": "local.nothing"}]}, "unknown recognizer 'local.nothing'"),
    ({"routes": [{"match": "**", "recognizer": "text"}]}, "<family>.<capability>"),
    ({"routes": [{"match": "a/**", "recognizer": "local.text"}, {"match": "", "recognizer": "local.text"}]},
     "routes[1]"),
    ({"routes": [{"match": "**", "recognizer": "local.text", "options": {"minConfidence": "high"}}]}, "must be float"),
    ({"routes": [{"match": "**", "recognizer": "local.text", "options": {"minConfidence": 101}}]}, "at most 100"),
    ({"routes": [{"match": "**", "recognizer": "local.text", "option": {}}]}, "unknown field(s) option"),
    ({"routes": [{"match": "[ab", "recognizer": "local.text"}]}, "unclosed '['"),
    ({"routes": [{"match": "{a,b", "recognizer": "local.text"}]}, "unclosed '{'"),
    ({"routes": [{"recognizer": "local.text"}]}, "match must be a non-empty string"),
    ({"routes": ["**"]}, "must be a mapping"),
    ({"rules": []}, "'routes' list"),
])
def test_bad_routes_fail_at_load_naming_the_entry(data, fragment):
    with pytest.raises(ConfigError) as info:
        Router.from_data(data, "routes.yml")
    assert fragment in info.value.message


def test_load_from_yaml_file_json_file_inline_json_and_default(tmp_path):
    yml = tmp_path / "routes.yml"
    yml.write_text('routes:\n  - match: "scans/**"\n    recognizer: local.text\n    options: {minConfidence: 70}\n')
    assert Router.load(str(yml)).routes[0].options == {"minConfidence": 70.0}
    js = tmp_path / "routes.json"
    js.write_text(json.dumps({"routes": [{"match": "**", "recognizer": "local.text"}]}))
    assert Router.load(str(js)).routes[0].match == "**"
    assert Router.load('{"routes": [{"match": "x/**", "recognizer": "local.text"}]}').routes[0].match == "x/**"
    default = Router.load(None)
    assert default.route_for("any/key.png").recognizer == "local.text"


def test_load_reports_line_of_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("routes:\n  - match: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        Router.load(str(bad))
    assert "line" in info.value.message
    with pytest.raises(ConfigError, match="neither inline JSON nor an existing file"):
        Router.load(str(tmp_path / "missing.yml"))
    with pytest.raises(ConfigError, match="inline JSON is invalid"):
        Router.load("{not json")


def test_bad_routes_stop_the_cold_start(monkeypatch):
    from fcocr.pipeline import App

    monkeypatch.setenv("FCOCR_ROUTES", '{"routes": [{"match": "**", "recognizer": "tencent.Nope"}]}')
    with pytest.raises(ConfigError, match="tencent"):
        App.from_env()
