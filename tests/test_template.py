"""template.yml held against the code: handlers import, triggers cannot fire on results, names are valid."""

import importlib.util
import inspect

import pytest
import yaml

from fcocr.config import DEFAULT_RESULT_SUFFIX, ENVIRONMENT
from fcocr.events import ACTIONS

from .conftest import REPO

TEMPLATE = yaml.safe_load((REPO / "template.yml").read_text("utf-8"))


def functions():
    for service_name, service in TEMPLATE["Resources"].items():
        if service.get("Type") != "Aliyun::Serverless::Service":
            continue
        for name, resource in service.items():
            if isinstance(resource, dict) and resource.get("Type") == "Aliyun::Serverless::Function":
                yield f"{service_name}/{name}", resource


FUNCTIONS = dict(functions())


def test_template_header():
    assert TEMPLATE["ROSTemplateFormatVersion"] == "2015-09-01"
    assert TEMPLATE["Transform"] == "Aliyun::Serverless-2018-04-03"
    assert "fcocr/ocr_upload" in FUNCTIONS


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_imports_and_is_callable(name):
    props = FUNCTIONS[name]["Properties"]
    module_name, function_name = props["Handler"].rsplit(".", 1)
    path = REPO / props["CodeUri"] / (module_name.replace(".", "/") + ".py")
    assert path.is_file(), f"{name}: handler file {path} missing"
    spec = importlib.util.spec_from_file_location(f"tmpl_{module_name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, function_name)
    assert callable(fn)
    assert list(inspect.signature(fn).parameters) == ["event", "context"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_initializer_imports_and_takes_the_context(name):
    props = FUNCTIONS[name]["Properties"]
    if "Initializer" not in props:
        return
    module_name, function_name = props["Initializer"].rsplit(".", 1)
    assert module_name == props["Handler"].rsplit(".", 1)[0]  # FC loads both from one module
    path = REPO / props["CodeUri"] / (module_name.replace(".", "/") + ".py")
    spec = importlib.util.spec_from_file_location(f"tmpl_init_{module_name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert list(inspect.signature(getattr(module, function_name)).parameters) == ["context"]
    assert props["InitializationTimeout"] >= 30


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_functions_set_memory_timeout_and_a_supported_runtime(name):
    props = FUNCTIONS[name]["Properties"]
    assert props["Runtime"] in {"python3.10", "python3.12"}
    assert "MemorySize" in props and "Timeout" in props  # FC's defaults (128 MB, 3 s) cannot run OCR


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_declared_environment_is_read_by_the_code(name):
    declared = FUNCTIONS[name]["Properties"].get("EnvironmentVariables", {})
    unknown = sorted(set(declared) - set(ENVIRONMENT))
    assert unknown == [], f"{name} declares variables nothing reads: {unknown}"


def oss_triggers():
    for name, resource in FUNCTIONS.items():
        for trigger_name, trigger in (resource.get("Events") or {}).items():
            if trigger["Type"] == "OSS":
                yield f"{name}/{trigger_name}", trigger


TRIGGERS = dict(oss_triggers())


def test_there_are_oss_triggers_and_events_is_a_sibling_of_properties():
    assert TRIGGERS
    for name, resource in FUNCTIONS.items():
        assert "Events" not in resource["Properties"], f"{name}: Events belongs beside Properties"


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_trigger_suffix_cannot_match_a_result_key(name):
    declared = FUNCTIONS["fcocr/ocr_upload"]["Properties"].get("EnvironmentVariables", {})
    result_suffix = declared.get("FCOCR_RESULT_SUFFIX", DEFAULT_RESULT_SUFFIX)
    key_filter = TRIGGERS[name]["Properties"]["Filter"]["Key"]
    assert set(key_filter) == {"Prefix", "Suffix"}  # OSS wants both
    suffix = key_filter["Suffix"]
    # key + result_suffix ends with `suffix` iff one suffix ends with the other.
    assert suffix and not result_suffix.endswith(suffix) and not suffix.endswith(result_suffix)


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_trigger_event_names_are_ones_the_code_acts_on(name):
    events = TRIGGERS[name]["Properties"]["Events"]
    for event in events:
        assert event.startswith("oss:") and event[4:] in ACTIONS
    # ObjectCreated:* would also fire per multipart part; these three are the whole-object events.
    assert sorted(events) == ["oss:ObjectCreated:CompleteMultipartUpload", "oss:ObjectCreated:PostObject",
                              "oss:ObjectCreated:PutObject"]
