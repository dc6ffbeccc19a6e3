"""template.yml held against the code, the ROS spec and s.yaml.

Handlers import with the right signature; each function declares exactly the variables it needs and
every variable the code reads is accounted for; triggers cannot fire on fcocr's own objects; the role
grants what the code calls and no more; property names follow the Aliyun::Serverless-2018-04-03 spec
(as ROS and funcraft's schema define it); s.yaml says the same as template.yml.
"""

import importlib.util
import inspect
import re

import pytest
import yaml
from fcocr import config
from fcocr.cli import DOCUMENT_SUFFIXES
from fcocr.config import (
    DEFAULT_RESULT_SUFFIX,
    ENVIRONMENT,
    MARKET_IDS,
    market_url_variable,
)
from fcocr.events import ACTIONS
from fcocr.package import FUNCTIONS as PACKAGED_FUNCTIONS
from fcocr.recognizers.aliyun import ACTIONS as VIAPI_ACTIONS
from fcocr.reconcile import RECEIPT_SUFFIX
from fcocr.results import RESERVED_PREFIXES
from fcocr.tasks import TASK_PREFIX, TASK_SUFFIX

from .conftest import REPO

TEMPLATE = yaml.safe_load((REPO / "template.yml").read_text("utf-8"))
S_YAML = yaml.safe_load((REPO / "s.yaml").read_text("utf-8"))
PARAMETERS = TEMPLATE["Parameters"]
SERVICE = TEMPLATE["Resources"]["fcocr"]
PSEUDO_PARAMETERS = {"ALIYUN::Region", "ALIYUN::AccountId", "ALIYUN::StackName", "ALIYUN::StackId", "ALIYUN::NoValue"}


def functions():
    for service in TEMPLATE["Resources"].values():
        if service.get("Type") != "Aliyun::Serverless::Service":
            continue
        for name, resource in service.items():
            if isinstance(resource, dict) and resource.get("Type") == "Aliyun::Serverless::Function":
                yield name, resource


FUNCTIONS = dict(functions())


# ------------------------------------------------------------------------------------------ helpers
def resolve(value, params):
    """A template value with Ref and Fn::Sub evaluated against ``params`` (parameter name -> value)."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return params[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(params[m.group(1)]), value["Fn::Sub"])
    if isinstance(value, dict):
        return {k: resolve(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, params) for v in value]
    return value


def defaults(**overrides):
    """Every parameter's default, placeholders for the required ones, and the pseudo parameters."""
    values = {name: p.get("Default", f"<{name}>") for name, p in PARAMETERS.items()}
    values.update({"ALIYUN::Region": "cn-shanghai", "ALIYUN::AccountId": "1234567890123456"})
    values.update(overrides)
    return values


def walk(value):
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def load_handler(name, attribute):
    path = REPO / "functions" / name / "index.py"
    spec = importlib.util.spec_from_file_location(f"tmpl_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def events_of(function, kind):
    return {n: e for n, e in (FUNCTIONS[function].get("Events") or {}).items() if e["Type"] == kind}


# ------------------------------------------------------------------------------------------ shape
def test_template_header_and_the_three_functions():
    assert TEMPLATE["ROSTemplateFormatVersion"] == "2015-09-01"
    assert TEMPLATE["Transform"] == "Aliyun::Serverless-2018-04-03"
    assert set(FUNCTIONS) == {"ocr_upload", "scan_callback", "scan_reconcile"} == set(PACKAGED_FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_code_uri_is_the_packaged_zip_of_the_function(name):
    assert FUNCTIONS[name]["Properties"]["CodeUri"] == f"./build/{name}.zip"
    assert (REPO / "functions" / name / "index.py").is_file()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_imports_with_the_signature_of_its_trigger(name):
    props = FUNCTIONS[name]["Properties"]
    module_name, function_name = props["Handler"].rsplit(".", 1)
    assert module_name == "index"
    fn = load_handler(name, function_name)
    params = list(inspect.signature(fn).parameters)
    if events_of(name, "HTTP"):  # FC 2.0 HTTP trigger: a WSGI application
        assert params == ["environ", "start_response"]
    else:
        assert params == ["event", "context"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_initializer_imports_and_takes_the_context(name):
    props = FUNCTIONS[name]["Properties"]
    if "Initializer" not in props:
        assert "InitializationTimeout" not in props
        return
    module_name, function_name = props["Initializer"].rsplit(".", 1)
    assert module_name == props["Handler"].rsplit(".", 1)[0]  # FC loads both from one module
    assert list(inspect.signature(load_handler(name, function_name)).parameters) == ["context"]
    assert 30 <= props["InitializationTimeout"] <= 300


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_functions_set_memory_timeout_and_a_supported_runtime(name):
    props = FUNCTIONS[name]["Properties"]
    assert props["Runtime"] == "python3.10"  # what fcocr package builds for
    # FC's defaults (128 MB, 3 s) cannot run OCR: both are explicit, within FC 2.0's limits.
    for key, low, high in (("MemorySize", 128, 3072), ("Timeout", 1, 600)):
        assert key in props
        param = PARAMETERS[props[key]["Ref"]]
        assert param["Type"] == "Number" and low <= param["MinValue"] <= param["Default"] <= param["MaxValue"] <= high
        if key == "MemorySize":
            assert param["Default"] % 64 == 0


# ------------------------------------------------------------------------------------------ environment
# What each deployed function needs declared: exactly these (the rest of ENVIRONMENT is below, with why).
NEEDED = {
    "ocr_upload": {"FCOCR_ROUTES", "FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "ALIYUN_MARKET_APPCODE",
                   *(market_url_variable(i) for i in MARKET_IDS), "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY",
                   "TENCENTCLOUD_REGION", "GREEN_UID", "GREEN_SEED", "GREEN_CRYPT_TYPE", "GREEN_CALLBACK_URL"},
    "scan_callback": {"FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "GREEN_UID", "GREEN_SEED", "GREEN_CRYPT_TYPE"},
    "scan_reconcile": {"FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "FCOCR_RECONCILE_BUCKETS"},
}
LOCAL_ONLY = {
    "FCOCR_LOCAL_ROOT": "a local directory instead of OSS",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "on FC python3.10 the service role's STS credentials come from context.credentials",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "as ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "as ALIBABA_CLOUD_ACCESS_KEY_ID",
    # the command line's own (fcocr backfill --remote, run on your machine)
    **{name: "read by the command line only" for name in getattr(config, "CLI_ONLY", ())},
}
DEFAULT_IS_RIGHT_ON_FC = {
    "FCOCR_OSS_ENDPOINT": "the region's internal endpoint, taken from the event",
    "FCOCR_OSS_PUBLIC_ENDPOINT": "the region's public endpoint, for presigned URLs",
    "FCOCR_ALIYUN_OCR_ENDPOINT": "the vendor's endpoint (set only for a private endpoint or an emulator)",
    "FCOCR_TENCENT_ENDPOINT": "the vendor's endpoint",
    "FCOCR_GREEN_ENDPOINT": "the vendor's endpoint",
    "FCOCR_VIAPI_STAGING": "only for a bucket outside cn-shanghai routed to aliyun.*; needs a policy statement "
                           "too (README)",
    "FCOCR_VIAPI_STAGING_ENDPOINT": "goes with FCOCR_VIAPI_STAGING",
    "FCOCR_MAX_BYTES": "tuning", "FCOCR_MAX_PIXELS": "tuning", "FCOCR_MAX_PAGES": "tuning", "FCOCR_PDF_DPI": "tuning",
    "FCOCR_OCR_THREADS": "tuning", "FCOCR_ENGINE": "tuning", "FCOCR_RETRY_ATTEMPTS": "tuning", "FCOCR_RETRY_BASE_MS": "tuning",
    "FCOCR_CALL_TIMEOUT": "tuning", "FCOCR_VIAPI_POLL_MS": "tuning", "FCOCR_RECONCILE_AFTER": "tuning",
    "FCOCR_TENCENT_INPUT": "tuning",
}


def declared(name):
    return FUNCTIONS[name]["Properties"].get("EnvironmentVariables", {})


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_declares_exactly_the_variables_it_needs(name):
    assert set(declared(name)) <= set(ENVIRONMENT), "declares a variable nothing reads"
    assert set(declared(name)) == NEEDED[name]


def test_every_variable_the_code_reads_is_declared_or_left_out_for_a_reason():
    placed = set().union(*NEEDED.values()), set(LOCAL_ONLY), set(DEFAULT_IS_RIGHT_ON_FC)
    assert not (placed[0] & placed[1]) and not (placed[0] & placed[2]) and not (placed[1] & placed[2])
    assert placed[0] | placed[1] | placed[2] == set(ENVIRONMENT)


def test_the_result_suffix_is_the_code_default_everywhere():
    for name in FUNCTIONS:
        assert declared(name)["FCOCR_RESULT_SUFFIX"] == DEFAULT_RESULT_SUFFIX


def secret_variables():
    return {name for name, text in ENVIRONMENT.items() if "(secret)" in text}


def test_secrets_are_noecho_parameters_without_a_default():
    assert secret_variables() >= {"ALIYUN_MARKET_APPCODE", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY",
                                  "GREEN_UID", "GREEN_SEED"}
    for name in FUNCTIONS:
        for variable, value in declared(name).items():
            if variable in secret_variables():
                assert isinstance(value, dict) and set(value) == {"Ref"}, f"{name}: {variable} is a literal"
                param = PARAMETERS[value["Ref"]]
                assert param.get("NoEcho") is True and "Default" not in param, value["Ref"]
    for pname, param in PARAMETERS.items():
        if param.get("NoEcho"):
            assert "Default" not in param, pname


def test_every_reference_names_a_parameter_and_every_parameter_is_used():
    used = set()
    for node in walk(TEMPLATE["Resources"]):
        if isinstance(node, dict) and "Ref" in node:
            used.add(node["Ref"])
        if isinstance(node, dict) and "Fn::Sub" in node:
            used.update(re.findall(r"\$\{([^}]+)\}", node["Fn::Sub"]))
    assert used - set(PARAMETERS) <= PSEUDO_PARAMETERS
    assert set(PARAMETERS) <= used, "parameters nothing uses"


def test_the_routes_parameter_default_loads_and_a_bad_value_stops_the_cold_start():
    from fcocr.errors import ConfigError
    from fcocr.routing import Router

    assert Router.load(PARAMETERS["RoutesJson"]["Default"] or None).routes
    with pytest.raises(ConfigError):
        Router.load('{"routes": [{"match": "**", "recognizer": "local.nope"}]}')


# ------------------------------------------------------------------------------------------ triggers
def oss_triggers():
    for name in FUNCTIONS:
        for trigger_name, trigger in events_of(name, "OSS").items():
            yield f"{name}/{trigger_name}", trigger


TRIGGERS = dict(oss_triggers())


def test_oss_triggers_cover_every_document_suffix_within_the_bucket_limit():
    assert all(name.startswith("ocr_upload/") for name in TRIGGERS)
    suffixes = [t["Properties"]["Filter"]["Key"]["Suffix"] for t in TRIGGERS.values()]
    assert sorted(suffixes) == sorted(DOCUMENT_SUFFIXES)  # what `fcocr process` treats as a document
    buckets = {}
    for trigger in TRIGGERS.values():
        bucket = trigger["Properties"]["BucketName"]["Ref"]
        buckets[bucket] = buckets.get(bucket, 0) + 1
    assert buckets == {"BucketName": len(DOCUMENT_SUFFIXES)} and len(DOCUMENT_SUFFIXES) <= 10  # OSS: 10 per bucket


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_trigger_filter_has_prefix_and_suffix_and_cannot_match_fcocrs_own_objects(name):
    key_filter = TRIGGERS[name]["Properties"]["Filter"]
    assert set(key_filter) == {"Key"} and set(key_filter["Key"]) == {"Prefix", "Suffix"}  # OSS wants both
    assert key_filter["Key"]["Prefix"] == {"Ref": "SourcePrefix"}
    suffix = key_filter["Key"]["Suffix"]
    # key + result suffix ends with `suffix` iff one suffix ends with the other.
    assert suffix and not DEFAULT_RESULT_SUFFIX.endswith(suffix) and not suffix.endswith(DEFAULT_RESULT_SUFFIX)
    # What fcocr writes under the reserved prefixes: task records, receipts, staged inputs.
    own = [f"{TASK_PREFIX}{'0' * 40}{TASK_SUFFIX}", f"{TASK_PREFIX}{'0' * 40}{RECEIPT_SUFFIX}",
           ".fcocr-staging/0123abcd-p1.fcocr-staging", ".fcocr-staging/0123abcd.fcocr-staging"]
    assert {k.split("/")[0] + "/" for k in own} == set(RESERVED_PREFIXES)
    assert not any(k.endswith(suffix) or k.lower().endswith(suffix) for k in own)


def test_the_source_prefix_cannot_be_a_reserved_prefix():
    pattern = re.compile(PARAMETERS["SourcePrefix"]["AllowedPattern"])
    for ok in ("", "inbox/", "发票/2026/"):
        assert pattern.fullmatch(ok), ok
    for bad in (*RESERVED_PREFIXES, "inbox", "/inbox/", "in*/"):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_trigger_events_are_the_whole_object_events(name):
    events = TRIGGERS[name]["Properties"]["Events"]
    for event in events:
        assert event.startswith("oss:") and event[4:] in ACTIONS
    # ObjectCreated:* would also fire per multipart part; these three are the whole-object events.
    assert sorted(events) == ["oss:ObjectCreated:CompleteMultipartUpload", "oss:ObjectCreated:PostObject",
                              "oss:ObjectCreated:PutObject"]


def test_the_callback_has_an_anonymous_post_only_http_trigger():
    (trigger,) = events_of("scan_callback", "HTTP").values()
    assert trigger["Properties"]["AuthType"] in {"anonymous", "ANONYMOUS"}  # the checksum authenticates
    assert trigger["Properties"]["Methods"] == ["POST"]
    assert [n for n in FUNCTIONS if events_of(n, "HTTP")] == ["scan_callback"]


def test_reconcile_runs_on_an_enabled_timer_with_a_valid_schedule():
    (trigger,) = events_of("scan_reconcile", "Timer").values()
    props = trigger["Properties"]
    assert props["Enable"] is True
    schedule = resolve(props["CronExpression"], defaults())
    every = re.fullmatch(r"@every (\d+)(m|h)", schedule)
    assert every or len(schedule.split()) == 6  # FC: @every, or seconds minutes hours day month weekday
    if every:
        assert int(every.group(1)) >= 1
    assert declared("scan_reconcile")["FCOCR_RECONCILE_BUCKETS"] == {"Ref": "BucketName"}


def test_upload_failures_go_to_a_destination_after_bounded_retries():
    config = FUNCTIONS["ocr_upload"]["Properties"]["AsyncConfiguration"]
    retries = PARAMETERS[config["MaxAsyncRetryAttempts"]["Ref"]]
    assert 0 <= retries["MinValue"] <= retries["Default"] <= retries["MaxValue"] <= 8  # FC's range
    destination = resolve(config["Destination"]["OnFailure"], defaults())
    assert destination == "acs:mns:cn-shanghai:1234567890123456:/queues/fcocr-failed/messages"
    assert FUNCTIONS["scan_reconcile"]["Properties"]["AsyncConfiguration"]["MaxAsyncRetryAttempts"] == 0


# ------------------------------------------------------------------------------------------ ROS spec
# Property names of Aliyun::Serverless-2018-04-03 (ROS's Aliyun::Serverless::* resource pages and
# funcraft's schema, lib/validate/schema/*.js, which ROS's transform is based on). Names are case-sensitive.
SERVICE_PROPERTIES = {"Role", "Policies", "Description", "InternetAccess", "VpcConfig", "LogConfig", "NasConfig",
                      "TracingConfig"}
FUNCTION_PROPERTIES = {"Handler", "Initializer", "Runtime", "CodeUri", "Description", "Timeout",
                       "InitializationTimeout", "EnvironmentVariables", "InstanceType", "AsyncConfiguration",
                       "MemorySize", "CAPort", "InstanceConcurrency"}
ASYNC_PROPERTIES = {"Destination", "MaxAsyncEventAgeInSeconds", "MaxAsyncRetryAttempts", "StatefulInvocation"}
EVENT_PROPERTIES = {  # type -> (allowed, required)
    "OSS": ({"Events", "BucketName", "Filter", "InvocationRole", "Qualifier"}, {"Events", "BucketName", "Filter"}),
    "HTTP": ({"AuthType", "Methods", "InvocationRole", "Qualifier"}, {"AuthType", "Methods"}),
    "Timer": ({"CronExpression", "Payload", "Enable", "InvocationRole", "Qualifier"}, {"CronExpression"}),
}
PARAMETER_ATTRIBUTES = {"Type", "Default", "AllowedValues", "AllowedPattern", "MaxLength", "MinLength", "MaxValue",
                        "MinValue", "NoEcho", "Description", "ConstraintDescription", "Label"}


def test_service_and_function_property_names_follow_the_spec():
    assert set(SERVICE) - set(FUNCTIONS) == {"Type", "Properties"}
    assert set(SERVICE["Properties"]) <= SERVICE_PROPERTIES
    assert set(SERVICE["Properties"]["LogConfig"]) == {"Project", "Logstore"}
    for name, resource in FUNCTIONS.items():
        assert set(resource) <= {"Type", "Properties", "Events"}, f"{name}: Events is a sibling of Properties"
        props = resource["Properties"]
        assert set(props) <= FUNCTION_PROPERTIES, name
        assert {"Handler", "Runtime", "CodeUri"} <= set(props)
        if "AsyncConfiguration" in props:
            assert set(props["AsyncConfiguration"]) <= ASYNC_PROPERTIES
            assert set(props["AsyncConfiguration"].get("Destination", {})) <= {"OnSuccess", "OnFailure"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_event_sources_follow_the_spec(name):
    for trigger_name, trigger in (FUNCTIONS[name].get("Events") or {}).items():
        assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_-]{0,127}", trigger_name)
        assert set(trigger) == {"Type", "Properties"}
        allowed, required = EVENT_PROPERTIES[trigger["Type"]]
        assert required <= set(trigger["Properties"]) <= allowed, trigger_name


def test_parameters_follow_the_spec():
    for name, param in PARAMETERS.items():
        assert set(param) <= PARAMETER_ATTRIBUTES, name
        assert param["Type"] in {"String", "Number", "CommaDelimitedList", "Json", "Boolean"}
        if "AllowedValues" in param and "Default" in param:
            assert param["Default"] in param["AllowedValues"]
        if "AllowedPattern" in param and "Default" in param:
            assert re.fullmatch(param["AllowedPattern"], param["Default"]), name


# ------------------------------------------------------------------------------------------ the role
POLICY = SERVICE["Properties"]["Policies"]
SAMPLE = defaults(BucketName="docs", SourcePrefix="inbox/", LogProject="proj", LogStore="store")


def statements():
    assert len(POLICY) == 1 and isinstance(POLICY[0], dict), "one policy document, no managed policy"
    assert POLICY[0]["Version"] == "1"
    return [resolve(s, SAMPLE) for s in POLICY[0]["Statement"]]


def grants(action):
    return {s["Resource"] for s in statements() if action in s["Action"]}


def test_statements_are_plain_allows_on_one_resource_each():
    for s in statements():
        assert set(s) <= {"Effect", "Action", "Resource", "Condition"} and s["Effect"] == "Allow"
        assert isinstance(s["Resource"], str) and isinstance(s["Action"], list)
        for action in s["Action"]:
            assert "*" not in action, action  # no wildcard action: every grant is named
            assert s["Resource"] != "*" or not action.startswith(("oss:", "log:", "mns:")), action


def test_oss_access_is_the_source_prefix_the_results_and_the_reserved_prefixes():
    assert grants("oss:GetObject") == {"acs:oss:*:*:docs/inbox/*", "acs:oss:*:*:docs/.fcocr-tasks/*",
                                       "acs:oss:*:*:docs/.fcocr-staging/*"}
    assert grants("oss:PutObject") == {f"acs:oss:*:*:docs/inbox/*{DEFAULT_RESULT_SUFFIX}",
                                       *(f"acs:oss:*:*:docs/{p}*" for p in RESERVED_PREFIXES)}
    assert grants("oss:DeleteObject") == {f"acs:oss:*:*:docs/{p}*" for p in RESERVED_PREFIXES}
    assert grants("oss:ListObjects") == {"acs:oss:*:*:docs"}
    (listing,) = [s for s in statements() if "oss:ListObjects" in s["Action"]]
    assert listing["Condition"] == {"StringLike": {"oss:Prefix": ["inbox/*", f"{TASK_PREFIX}*"]}}
    oss_actions = {a for s in statements() for a in s["Action"] if a.startswith("oss:")}
    assert oss_actions == {"oss:GetObject", "oss:GetObjectMeta", "oss:GetSymlink", "oss:PutObject",
                           "oss:DeleteObject", "oss:ListObjects"}


def test_vendor_apis_are_exactly_the_ones_fcocr_calls():
    viapi = {a for s in statements() for a in s["Action"] if a.startswith("viapi")}
    assert viapi == {f"viapi-ocr:{a.action}" for a in VIAPI_ACTIONS}
    green = {a for s in statements() for a in s["Action"] if a.startswith("yundun-greenweb:")}
    assert green == {"yundun-greenweb:ImageAsyncScan", "yundun-greenweb:ImageAsyncScanResults"}
    known = ("oss:", "viapi-ocr:", "yundun-greenweb:", "log:", "mns:")
    assert all(a.startswith(known) for s in statements() for a in s["Action"])


def test_logs_and_the_failure_queue_are_granted_on_their_own_resources():
    assert grants("log:PostLogStoreLogs") == {"acs:log:*:*:project/proj/logstore/store"}
    assert grants("mns:SendMessage") == {"acs:mns:*:*:/queues/fcocr-failed/messages"}
    log_config = resolve(SERVICE["Properties"]["LogConfig"], SAMPLE)
    assert log_config == {"Project": "proj", "Logstore": "store"}


# ------------------------------------------------------------------------------------------ s.yaml
S_FUNCTIONS = {name: service["props"] for name, service in S_YAML["services"].items()}
S_VARS = S_YAML["vars"]


def s_value(value):
    """An s.yaml value with ${vars.X} resolved; ${env(NAME)} stays as a marker."""
    if isinstance(value, str):
        return re.sub(r"\$\{vars\.([A-Za-z]+)\}", lambda m: str(S_VARS[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: s_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [s_value(v) for v in value]
    return value


def test_s_yaml_has_the_same_functions_in_one_service():
    assert S_YAML["edition"] == "1.0.0"
    assert set(S_FUNCTIONS) == set(FUNCTIONS)
    services = {id(props["service"]) for props in S_FUNCTIONS.values()}
    assert len(services) == 1 and all(s["component"] == "devsapp/fc" for s in S_YAML["services"].values())


def test_s_yaml_vars_default_like_the_template_parameters():
    for name, value in S_VARS.items():
        if name == "region":
            continue
        assert name in PARAMETERS, name
        if "Default" in PARAMETERS[name]:
            assert value == PARAMETERS[name]["Default"], name
        assert not PARAMETERS[name].get("NoEcho"), f"{name} is a secret: it comes from ${{env()}}, not vars"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_s_yaml_function_matches_the_template(name):
    props, s = FUNCTIONS[name]["Properties"], S_FUNCTIONS[name]["function"]
    tmpl = resolve(props, defaults())
    assert s["name"] == name
    for ros_key, s_key in (("Runtime", "runtime"), ("CodeUri", "codeUri"), ("Handler", "handler"),
                           ("Initializer", "initializer"), ("InitializationTimeout", "initializationTimeout"),
                           ("MemorySize", "memorySize"), ("Timeout", "timeout"),
                           ("InstanceConcurrency", "instanceConcurrency"), ("Description", "description")):
        assert s.get(s_key) == tmpl.get(ros_key), (name, ros_key)
    if "AsyncConfiguration" in tmpl:
        a, b = tmpl["AsyncConfiguration"], s["asyncConfiguration"]
        assert b["maxAsyncRetryAttempts"] == a["MaxAsyncRetryAttempts"]
        assert b.get("maxAsyncEventAgeInSeconds") == a.get("MaxAsyncEventAgeInSeconds")
        if "Destination" in a:  # the component fills region and account into acs:mns:::
            queue = a["Destination"]["OnFailure"].split(":/queues/")[1]
            assert s_value(b["destination"]["onFailure"]).split(":/queues/")[1].split()[0] == queue
    else:
        assert "asyncConfiguration" not in s


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_s_yaml_environment_matches_the_template(name):
    ros_env, s_env = declared(name), S_FUNCTIONS[name]["function"]["environmentVariables"]
    assert set(s_env) == set(ros_env)
    for variable, value in ros_env.items():
        if isinstance(value, dict) and PARAMETERS[value["Ref"]].get("NoEcho"):
            assert s_env[variable] == f"${{env({variable})}}", variable  # secrets from the shell, never the file
        elif isinstance(value, dict):
            assert s_env[variable] == f"${{vars.{value['Ref']}}}", variable
        else:
            assert s_env[variable] == value, variable


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_s_yaml_triggers_match_the_template(name):
    def ros_triggers():
        for trigger_name, t in (FUNCTIONS[name].get("Events") or {}).items():
            p = resolve(t["Properties"], defaults(BucketName="${vars.BucketName}"))
            if t["Type"] == "OSS":
                yield trigger_name, ("oss", p["BucketName"], tuple(p["Events"]), p["Filter"]["Key"]["Prefix"],
                                     p["Filter"]["Key"]["Suffix"])
            elif t["Type"] == "HTTP":
                yield trigger_name, ("http", p["AuthType"].lower(), tuple(p["Methods"]))
            else:
                yield trigger_name, ("timer", p["CronExpression"], p["Enable"], p.get("Payload"))

    def s_triggers():
        for t in S_FUNCTIONS[name].get("triggers") or []:
            c = t["config"]
            if t["type"] == "oss":
                yield t["name"], ("oss", c["bucketName"], tuple(c["events"]), s_value(c["filter"]["Key"]["Prefix"]),
                                  c["filter"]["Key"]["Suffix"])
            elif t["type"] == "http":
                yield t["name"], ("http", c["authType"].lower(), tuple(c["methods"]))
            else:
                yield t["name"], ("timer", c["cronExpression"], c["enable"], c.get("payload"))

    assert dict(s_triggers()) == dict(ros_triggers())


def test_s_yaml_service_has_the_same_role_policy_and_log_config():
    service = S_FUNCTIONS["ocr_upload"]["service"]
    assert service["internetAccess"] is SERVICE["Properties"]["InternetAccess"] is True
    sample_vars = dict(S_VARS, BucketName="docs", SourcePrefix="inbox/", LogProject="proj", LogStore="store")
    resolved = re.sub(r"\$\{vars\.([A-Za-z]+)\}", lambda m: str(sample_vars[m.group(1)]),
                      yaml.safe_dump(service))
    service = yaml.safe_load(resolved)
    (policy,) = service["role"]["policies"]
    assert policy["statement"] == statements()
    assert service["logConfig"] == {"project": "proj", "logstore": "store"}
