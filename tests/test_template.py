"""The one declaration of fcocr's functions (fcocr.tools.deploy) held against the code, and the deploy files against it.

The declaration once: handlers import with the right signature; each function declares exactly the variables it
needs and every variable the code reads is placed; triggers cannot fire on fcocr's own objects (per-suffix OSS
triggers, at most 10, and the EventBridge rule); secrets are NoEcho without a default; the role grants what the
code calls and no more. Then the files: each is exactly what ``fcocr deploy-files`` writes (so each says what the
declaration says), property names follow ROS's FC 3.0 types (npm @alicloud/ros-cdk-fc3 1.11.0) and the FC 2.0
transform, and every s.yaml function's props validate against the fc3 component's JSON Schema (tests/data/).
"""

import importlib.util
import inspect
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from fcocr.config import CLI_ONLY, DEFAULT_RESULT_SUFFIX, ENVIRONMENT
from fcocr.events import ACTIONS
from fcocr.model import DOCUMENT_SUFFIXES
from fcocr.recognizers.aliyun import ACTIONS as VIAPI_ACTIONS
from fcocr.storage import CLAIM_PREFIX, LONG_KEY_PREFIX, RESERVED_PREFIXES, STAGING_PREFIX, TASK_PREFIX
from fcocr.tasks import RECEIPT_SUFFIX, TASK_SUFFIX
from fcocr.tools import deploy, deploy_files
from fcocr.tools.deploy import FUNCTION, FUNCTIONS, PARAMETER, PARAMETERS
from fcocr.tools.package import FUNCTIONS as PACKAGED_FUNCTIONS

from .conftest import REPO

# Copied from the fc3 component (devsapp/fc3 src/schema.json, MIT; see /work/shared/reference/fc3 at the time).
FC3_SCHEMA = json.loads((Path(__file__).parent / "data" / "fc3-props.schema.json").read_text("utf-8"))
VALIDATOR = jsonschema.validators.validator_for(FC3_SCHEMA)  # the draft its $schema names, for its parts too


def validate(instance, schema):
    VALIDATOR(schema).validate(instance)
PSEUDO = {"ALIYUN::Region", "ALIYUN::AccountId", "ALIYUN::StackId"}
# What fcocr writes under the reserved prefixes: task records, receipts, staged inputs.
OWN_KEYS = [f"{TASK_PREFIX}{'0' * 40}{TASK_SUFFIX}", f"{TASK_PREFIX}{'0' * 40}{RECEIPT_SUFFIX}",
            f"{STAGING_PREFIX}0123abcd-p1.fcocr-staging", f"{STAGING_PREFIX}0123abcd.fcocr-staging",
            f"{TASK_PREFIX}{'0' * 40}.p00001.page", f"{CLAIM_PREFIX}{'0' * 40}.0000000001",
            f"{LONG_KEY_PREFIX}{'0' * 64}{DEFAULT_RESULT_SUFFIX}"]


def load(path):
    return yaml.safe_load((REPO / path).read_text("utf-8"))


def load_handler(name, attribute):
    spec = importlib.util.spec_from_file_location(f"tmpl_{name}", REPO / "functions" / name / "index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def placeholders(text):
    return set(re.findall(r"\$\{([A-Za-z0-9:]+)\}", text))


# ------------------------------------------------------------------------------------------ the files
@pytest.mark.parametrize("path", deploy_files.FILES)
def test_the_committed_file_is_what_the_declaration_generates(path):
    assert (REPO / path).read_text("utf-8") == deploy_files.render(path), f"{path} is stale: run `make deploy-files`"


def test_deploy_files_check_reports_a_stale_file(tmp_path, monkeypatch):
    from fcocr.tools import package

    for path in deploy_files.FILES:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(deploy_files.render(path), "utf-8")
    assert deploy_files.stale(tmp_path) == []
    (tmp_path / "s.yaml").write_text(deploy_files.render("s.yaml").replace("memorySize: 2048", "memorySize: 1024"))
    assert deploy_files.stale(tmp_path) == ["s.yaml"]
    monkeypatch.setattr(package, "repository_root", lambda: tmp_path)
    from fcocr.tools.cli import build_parser

    args = build_parser().parse_args(["deploy-files", "--check"])
    assert args.func(args) == 1
    args = build_parser().parse_args(["deploy-files"])
    assert args.func(args) == 0 and deploy_files.stale(tmp_path) == []


# ------------------------------------------------------------------------------------------ functions
def test_the_declared_functions_are_the_packaged_ones():
    assert [f.name for f in FUNCTIONS] == list(PACKAGED_FUNCTIONS) == ["ocr_upload", "scan_callback", "scan_reconcile"]
    for f in FUNCTIONS:
        assert PACKAGED_FUNCTIONS[f.name] == f.directory and (REPO / f.directory / "index.py").is_file()


@pytest.mark.parametrize("name", sorted(FUNCTION))
@pytest.mark.parametrize("fc", [2, 3])
def test_every_handler_imports_with_the_signature_of_its_trigger(name, fc):
    f = FUNCTION[name]
    module_name, attribute = f.handler_for(fc).rsplit(".", 1)
    assert module_name == "index"
    params = list(inspect.signature(load_handler(name, attribute)).parameters)
    http = any(isinstance(t, deploy.HttpTrigger) for t in f.triggers)
    # FC 2.0's HTTP trigger calls a WSGI application; FC 3.0's hands built-in runtimes a JSON event.
    assert params == (["environ", "start_response"] if http and fc == 2 else ["event", "context"])


@pytest.mark.parametrize("name", sorted(FUNCTION))
def test_every_initializer_imports_and_takes_the_context(name):
    f = FUNCTION[name]
    if f.initializer is None:
        assert f.initialization_timeout is None
        return
    module_name, attribute = f.initializer.rsplit(".", 1)
    assert module_name == f.handler.rsplit(".", 1)[0]  # FC loads both from one module
    assert list(inspect.signature(load_handler(name, attribute)).parameters) == ["context"]
    assert 30 <= f.initialization_timeout <= 300


@pytest.mark.parametrize("name", sorted(FUNCTION))
def test_memory_and_timeout_are_explicit_parameters_within_fcs_limits(name):
    f = FUNCTION[name]
    # FC's defaults (128 MB, 3 s) cannot run OCR: both are parameters with defaults within FC's limits.
    for value, low, high in ((f.sized.memory, 128, 3072), (f.sized.timeout, 1, 600)):
        (ref,) = placeholders(value)
        p = PARAMETER[ref]
        assert p.type == "Number" and low <= p.min_value <= p.default <= p.max_value <= high
    assert PARAMETER[placeholders(f.sized.memory).pop()].default % 64 == 0


def test_runtimes_default_to_python312_on_fc3_and_stay_python310_on_fc2():
    assert PARAMETER["Runtime"].allowed_values == ("python3.10", "python3.12") and PARAMETER["Runtime"].default == \
        "python3.12"
    assert deploy.FC2_RUNTIME == "python3.10"
    assert set(FC3_SCHEMA["definitions"]["IRuntime"]["enum"]) >= set(deploy.FC3_RUNTIMES)


# ------------------------------------------------------------------------------------------ environment
# What each deployed function needs: exactly these. Every one writes results, so every one writes them alike.
WRITES_RESULTS = {"FCOCR_DELETE_WITH_SOURCE", "FCOCR_SSE", "FCOCR_MASK", "FCOCR_KEEP_RAW", "FCOCR_NOTIFY",
                  "FCOCR_NOTIFY_SECRET", "FCOCR_MNS_ENDPOINT"}
NEEDED = {
    "ocr_upload": {"FCOCR_ROUTES", "FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "ALIYUN_MARKET_APPCODE",
                   *(n for n in ENVIRONMENT if n.startswith("FCOCR_MARKET_URL_")), "TENCENTCLOUD_SECRET_ID",
                   "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_REGION", "GREEN_UID", "GREEN_SEED", "GREEN_CRYPT_TYPE",
                   "GREEN_CALLBACK_URL", *WRITES_RESULTS},
    "scan_callback": {"FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "GREEN_UID", "GREEN_SEED", "GREEN_CRYPT_TYPE",
                      *WRITES_RESULTS},
    "scan_reconcile": {"FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "FCOCR_RECONCILE_BUCKETS", *WRITES_RESULTS},
}


@pytest.mark.parametrize("name", sorted(FUNCTION))
def test_each_function_declares_exactly_the_variables_it_needs(name):
    env = FUNCTION[name].environment()
    assert set(env) <= set(deploy.deployable_variables()), "declares a variable nothing reads"
    assert set(env) == NEEDED[name]
    assert env["FCOCR_RESULT_SUFFIX"] == DEFAULT_RESULT_SUFFIX


def test_every_variable_the_code_reads_is_deployed_or_left_out_for_a_reason():
    placed = [set(deploy.DEPLOYED_VALUES), set(deploy.LOCAL_ONLY), set(deploy.DEFAULT_IS_RIGHT_ON_FC), set(CLI_ONLY)]
    assert sum(len(p) for p in placed) == len(set().union(*placed)), "a variable placed twice"
    assert set().union(*placed) == set(ENVIRONMENT)
    assert set(deploy.deployable_variables()) == set(ENVIRONMENT) - CLI_ONLY
    assert set(deploy.DEPLOYED_VALUES) == set().union(*NEEDED.values())


def test_secrets_are_noecho_parameters_without_a_default_and_only_feed_secrets():
    secrets = {n for n in ENVIRONMENT if deploy.is_secret(n)}
    assert secrets >= {"ALIYUN_MARKET_APPCODE", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "GREEN_UID",
                       "GREEN_SEED"}
    for variable, value in deploy.DEPLOYED_VALUES.items():
        refs = placeholders(value)
        if variable in secrets:
            assert len(refs) == 1 and value == "${%s}" % next(iter(refs)), f"{variable} is not one parameter"
            p = PARAMETER[next(iter(refs))]
            assert p.no_echo and p.default is None, p.name
        else:
            assert not any(PARAMETER[r].no_echo for r in refs if r in PARAMETER), variable
    for p in PARAMETERS:
        if p.no_echo:
            assert p.default is None, p.name


@pytest.mark.parametrize("path", ["template.yml", "deploy/fc2/template.yml"])
def test_every_reference_names_a_parameter_and_every_parameter_is_used(path):
    template = load(path)
    used = set()
    text = json.dumps(template["Resources"]) + json.dumps(template.get("Conditions", {})) + json.dumps(
        template.get("Outputs", {}))
    used |= set(re.findall(r'"Ref": "([^"]+)"', text))
    used |= placeholders(text)
    assert used - set(template["Parameters"]) <= PSEUDO
    assert set(template["Parameters"]) <= used, "parameters nothing uses"


def test_parameters_follow_the_ros_spec():
    for p in PARAMETERS:
        assert p.type in {"String", "Number"}
        if p.allowed_values and p.default is not None:
            assert p.default in p.allowed_values, p.name
        if p.allowed_pattern and p.default is not None:
            assert re.fullmatch(p.allowed_pattern, p.default), p.name


def test_the_routes_parameter_default_loads_and_a_bad_value_stops_the_cold_start():
    from fcocr.errors import ConfigError
    from fcocr.routing import Router

    assert Router.load(PARAMETER["RoutesJson"].default or None).routes
    with pytest.raises(ConfigError):
        Router.load('{"routes": [{"match": "**", "recognizer": "local.nope"}]}')


def test_the_source_prefix_cannot_be_a_reserved_prefix_or_break_the_rule():
    pattern = re.compile(PARAMETER["SourcePrefix"].allowed_pattern)
    for ok in ("", "inbox/", "发票/2026/"):
        assert pattern.fullmatch(ok), ok
    for bad in (*RESERVED_PREFIXES, "inbox", "/inbox/", "in*/", 'in"x/', "in\\x/", ".fcocr-overlays/"):
        assert not pattern.fullmatch(bad), bad


# ------------------------------------------------------------------------------------------ triggers
OSS_TRIGGERS = [t for t in FUNCTION["ocr_upload"].triggers if isinstance(t, deploy.OssTrigger)]
(EVENTBRIDGE,) = [t for t in FUNCTION["ocr_upload"].triggers if isinstance(t, deploy.EventBridgeOssTrigger)]


def test_upload_triggers_cover_every_document_suffix_within_the_bucket_limit():
    assert sorted(t.suffix for t in OSS_TRIGGERS) == sorted(DOCUMENT_SUFFIXES) == sorted(EVENTBRIDGE.suffixes)
    assert len(OSS_TRIGGERS) <= 10  # OSS: 10 trigger rules per bucket
    others = [t for f in FUNCTIONS if f.name != "ocr_upload" for t in f.triggers]
    assert not any(isinstance(t, (deploy.OssTrigger, deploy.EventBridgeOssTrigger)) for t in others)


@pytest.mark.parametrize("suffix", DOCUMENT_SUFFIXES)
def test_no_suffix_can_match_a_result_or_fcocrs_own_objects(suffix):
    # key + result suffix ends with `suffix` iff one suffix ends with the other.
    assert suffix and not DEFAULT_RESULT_SUFFIX.endswith(suffix) and not suffix.endswith(DEFAULT_RESULT_SUFFIX)
    assert {k.split("/")[0] + "/" for k in OWN_KEYS} == set(RESERVED_PREFIXES)
    assert not any(k.lower().endswith(suffix) for k in OWN_KEYS)


def test_upload_events_are_the_whole_object_events():
    for t in (*OSS_TRIGGERS, EVENTBRIDGE):
        assert all(e in ACTIONS for e in t.events)
        # ObjectCreated:* would also fire per multipart part; these three are the whole-object events, and a
        # document's deletion takes its result with it.
        assert sorted(t.events) == ["ObjectCreated:CompleteMultipartUpload", "ObjectCreated:PostObject",
                                    "ObjectCreated:PutObject", "ObjectRemoved:DeleteObject",
                                    "ObjectRemoved:DeleteObjects"]


def rule_matches(pattern: dict, event: dict) -> bool:
    """Whether an EventBridge pattern (the operators fcocr writes) matches a CloudEvent, as EventBridge's
    documented matching does: every field of the pattern, one of each field's conditions, strings exactly."""
    for name, wanted in pattern.items():
        if name not in event:
            return False
        value = event[name]
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not rule_matches(wanted, value):
                return False
            continue
        if not any(_matches(w, value) for w in wanted):
            return False
    return True


def _matches(condition, value) -> bool:
    if not isinstance(condition, dict):
        return condition == value
    if not isinstance(value, str):
        return False
    if "prefix" in condition:
        return value.startswith(condition["prefix"])
    if "suffix" in condition:
        return value.endswith(condition["suffix"])
    if "anything-but" in condition:
        inner = condition["anything-but"]
        return not (value.startswith(inner["prefix"]) if isinstance(inner, dict) else value == inner)
    raise ValueError(f"not an operator fcocr writes: {condition}")


def cloud_event(key, bucket="docs", event="ObjectCreated:PutObject"):
    return {"source": "acs.oss", "type": "oss:" + event,
            "subject": f"acs:oss:cn-shanghai:1234567890123456:{bucket}/{key}",
            "data": {"eventName": event, "oss": {"bucket": {"name": bucket}, "object": {"key": key}}}}


@pytest.mark.parametrize("prefix", ["", "inbox/"])
def test_the_eventbridge_rule_takes_any_letter_case_and_never_fcocrs_own_writes(prefix):
    rule = deploy.event_rule(EVENTBRIDGE, "docs", prefix)
    for key in ("a.jpg", "IMG_0001.JPG", "scan.Pdf", "x/y.TiFf", "发票 1.PNG", "p.jpeg", "q.WEBP"):
        assert rule_matches(rule, cloud_event(prefix + key)), key
        assert not rule_matches(rule, cloud_event(prefix + key, bucket="other"))
        assert not rule_matches(rule, cloud_event(prefix + key, event="ObjectCreated:UploadPart"))
        assert not rule_matches(rule, cloud_event(prefix + key + DEFAULT_RESULT_SUFFIX)), "a result"
    for key in ("a.txt", "a.jpg.bak", "jpg"):
        assert not rule_matches(rule, cloud_event(prefix + key)), key
    # fcocr's writes: results, and anything under a reserved prefix now or later (an overlay picture, say).
    for key in (*OWN_KEYS, *(p + "page-1.png" for p in RESERVED_PREFIXES), ".fcocr-overlays/a.PNG"):
        assert not rule_matches(rule, cloud_event(key)), key
    if prefix:
        assert not rule_matches(rule, cloud_event("elsewhere/a.jpg"))


def test_every_reserved_prefix_is_under_the_prefix_the_rule_excludes():
    common = deploy.own_writes_prefix()
    assert len(common) >= 2 and common.startswith(".") and all(p.startswith(common) for p in RESERVED_PREFIXES)
    assert not re.fullmatch(PARAMETER["SourcePrefix"].allowed_pattern, common + "x/")


def test_case_variants_are_every_spelling():
    assert sorted(deploy.case_variants(".pdf")) == sorted({".pdf", ".pdF", ".pDf", ".pDF", ".Pdf", ".PdF", ".PDf",
                                                            ".PDF"})
    assert len(deploy.case_variants(".tiff")) == 16 and len(set(deploy.case_variants(".tiff"))) == 16


def test_the_callback_is_an_anonymous_post_only_http_trigger_and_reconcile_a_valid_timer():
    (http,) = FUNCTION["scan_callback"].triggers
    assert isinstance(http, deploy.HttpTrigger) and http.methods == ("POST",) and http.auth == "anonymous"
    assert [f.name for f in FUNCTIONS if any(isinstance(t, deploy.HttpTrigger) for t in f.triggers)] == \
        ["scan_callback"]
    (timer,) = FUNCTION["scan_reconcile"].triggers
    schedule = PARAMETER[placeholders(timer.schedule).pop()].default
    every = re.fullmatch(r"@every (\d+)(m|h)", schedule)
    assert (every and int(every.group(1)) >= 1) or len(schedule.split()) == 6
    assert FUNCTION["scan_reconcile"].environment()["FCOCR_RECONCILE_BUCKETS"] == "${BucketName}"


def test_upload_failures_go_to_a_destination_after_bounded_retries():
    config = FUNCTION["ocr_upload"].async_config
    retries = PARAMETER[placeholders(config.max_retries).pop()]
    assert 0 <= retries.min_value <= retries.default <= retries.max_value <= 8  # FC's range
    assert config.on_failure == "acs:mns:${ALIYUN::Region}:${ALIYUN::AccountId}:/queues/${FailureQueueName}/messages"
    assert FUNCTION["scan_reconcile"].async_config.max_retries == 0
    assert FUNCTION["scan_callback"].async_config is None


# ------------------------------------------------------------------------------------------ the role
SAMPLE = {"BucketName": "docs", "SourcePrefix": "inbox/", "LogProject": "proj", "LogStore": "store",
          "FailureQueueName": "fcocr-failed"}


def statements():
    return deploy_files.policy_document(SAMPLE)["Statement"]


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
    assert grants("oss:GetObject") == {"acs:oss:*:*:docs/inbox/*",
                                       *(f"acs:oss:*:*:docs/{p}*" for p in RESERVED_PREFIXES)}
    assert grants("oss:PutObject") == {f"acs:oss:*:*:docs/inbox/*{DEFAULT_RESULT_SUFFIX}",
                                       *(f"acs:oss:*:*:docs/{p}*" for p in RESERVED_PREFIXES)}
    assert grants("oss:DeleteObject") == {f"acs:oss:*:*:docs/inbox/*{DEFAULT_RESULT_SUFFIX}",
                                          *(f"acs:oss:*:*:docs/{p}*" for p in RESERVED_PREFIXES)}
    assert grants("oss:ListObjects") == {"acs:oss:*:*:docs"}
    (listing,) = [s for s in statements() if "oss:ListObjects" in s["Action"]]
    assert listing["Condition"] == {"StringLike": {"oss:Prefix": ["inbox/*", f"{TASK_PREFIX}*", f"{CLAIM_PREFIX}*"]}}
    assert {a for s in statements() for a in s["Action"] if a.startswith("oss:")} == {
        "oss:GetObject", "oss:GetObjectMeta", "oss:GetSymlink", "oss:PutObject", "oss:DeleteObject", "oss:ListObjects"}


def test_vendor_apis_are_exactly_the_ones_fcocr_calls():
    assert {a for s in statements() for a in s["Action"] if a.startswith("viapi")} == \
        {f"viapi-ocr:{a.action}" for a in VIAPI_ACTIONS}
    assert {a for s in statements() for a in s["Action"] if a.startswith("yundun-greenweb:")} == \
        {"yundun-greenweb:ImageAsyncScan", "yundun-greenweb:ImageAsyncScanResults"}
    known = ("oss:", "viapi-ocr:", "yundun-greenweb:", "log:", "mns:")
    assert all(a.startswith(known) for s in statements() for a in s["Action"])
    assert grants("log:PostLogStoreLogs") == {"acs:log:*:*:project/proj/logstore/store"}
    assert grants("mns:SendMessage") == {"acs:mns:*:*:/queues/fcocr-failed/messages"}


# ------------------------------------------------------------------------------------------ FC 3.0 files
# Property names of ROS's FC 3.0 types (@alicloud/ros-cdk-fc3 1.11.0, lib/fc3.generated.js: the props each
# type renders, and the ones its validators require). Names are case-sensitive.
ROS_FC3 = {
    "ALIYUN::FC3::Function": ({"FunctionName", "Handler", "Runtime", "Code", "Cpu", "CustomContainerConfig",
                               "CustomDns", "CustomRuntimeConfig", "Description", "DisableOndemand", "DiskSize",
                               "EnvironmentVariables", "GpuConfig", "InstanceConcurrency", "InstanceIsolationMode",
                               "InstanceLifecycleConfig", "InternetAccess", "Layers", "LogConfig", "MemorySize",
                               "NasConfig", "OssMountConfig", "Role", "SessionAffinity", "SessionAffinityConfig",
                               "Tags", "Timeout", "TracingConfig", "VpcConfig"},
                              {"FunctionName", "Runtime", "Handler"}),
    "ALIYUN::FC3::Trigger": ({"FunctionName", "TriggerConfig", "TriggerName", "TriggerType", "Description",
                              "InvocationRole", "Qualifier", "SourceArn"},
                             {"FunctionName", "TriggerConfig", "TriggerName", "TriggerType"}),
    "ALIYUN::FC3::AsyncInvokeConfig": ({"FunctionName", "AsyncTask", "DestinationConfig", "MaxAsyncEventAgeInSeconds",
                                        "MaxAsyncRetryAttempts"}, {"FunctionName"}),
    # @alicloud/ros-cdk-ram 1.12.0, lib/ram.generated.js
    "ALIYUN::RAM::Role": ({"RoleName", "AssumeRolePolicyDocument", "Description", "Policies", "MaxSessionDuration",
                           "PolicyAttachments", "DeletionForce", "IgnoreExisting", "Tags"},
                          {"RoleName", "AssumeRolePolicyDocument"}),
}
FC3_CODE = {"SourceCode", "ZipFile", "Checksum", "OssObjectName", "OssBucketName"}
RAM_ROLE_POLICY = {"IgnoreExisting", "Description", "PolicyName", "PolicyDocument"}
FC3_LOG = {"Project", "LogBeginRule", "Logstore", "EnableInstanceMetrics", "EnableRequestMetrics"}
FC3 = load("template.yml")


def test_fc3_template_resources_follow_the_ros_types():
    assert FC3["ROSTemplateFormatVersion"] == "2015-09-01" and "Transform" not in FC3
    for name, resource in FC3["Resources"].items():
        allowed, required = ROS_FC3[resource["Type"]]
        assert set(resource) <= {"Type", "Properties", "Condition"}, name
        assert required <= set(resource["Properties"]) <= allowed, name
        if resource.get("Condition"):
            assert resource["Condition"] in FC3["Conditions"]
    functions = {r["Properties"]["FunctionName"]: r["Properties"] for r in FC3["Resources"].values()
                 if r["Type"] == "ALIYUN::FC3::Function"}
    assert set(functions) == {deploy.fc3_name(f.name) for f in FUNCTIONS}
    (policy,) = FC3["Resources"]["Role"]["Properties"]["Policies"]  # one policy document, no managed policy
    assert set(policy) <= RAM_ROLE_POLICY and policy["PolicyDocument"] == deploy_files.ros_policy()
    assert all(p["Role"] == {"Fn::GetAtt": ["Role", "Arn"]} for p in functions.values())
    for props in functions.values():
        assert set(props["Code"]) <= FC3_CODE and set(props["LogConfig"]) <= FC3_LOG
        assert props["Code"]["OssBucketName"] == {"Ref": "CodeBucket"}
        assert set(props.get("InstanceLifecycleConfig", {}).get("Initializer", {})) <= {"Handler", "Timeout"}


def test_fc3_template_triggers_one_upload_path_at_a_time():
    triggers = [r for r in FC3["Resources"].values() if r["Type"] == "ALIYUN::FC3::Trigger"]
    oss = [t for t in triggers if t["Properties"]["TriggerType"] == "oss"]
    bridge = [t for t in triggers if t["Properties"]["TriggerType"] == "eventbridge"]
    assert len(oss) == len(DOCUMENT_SUFFIXES) and {t["Condition"] for t in oss} == {"UseOssTriggers"}
    assert len(bridge) == 1 and bridge[0]["Condition"] == "UseEventBridgeTrigger"
    conditions = FC3["Conditions"]
    assert conditions["UseOssTriggers"]["Fn::Equals"][0] == conditions["UseEventBridgeTrigger"]["Fn::Equals"][0] == \
        {"Ref": "UploadTrigger"}
    for t in oss:
        config = json.loads(json.dumps(t["Properties"]["TriggerConfig"]))
        assert config["filter"]["key"]["prefix"] == {"Ref": "SourcePrefix"}
        config["filter"]["key"]["prefix"] = "inbox/"  # the API's triggerConfig, as the fc3 component's
        validate(config, FC3_SCHEMA["definitions"]["IOssTriggerConfig"])
    # The rule ROS builds, for both values of SourcePrefix, is the declaration's.
    pattern = bridge[0]["Properties"]["TriggerConfig"]["eventRuleFilterPattern"]["Fn::If"]
    assert pattern[0] == "HasSourcePrefix"
    for text, prefix in ((pattern[1]["Fn::Sub"], "inbox/"), (pattern[2]["Fn::Sub"], "")):
        filled = text.replace("${BucketName}", "docs").replace("${SourcePrefix}", prefix)
        assert json.loads(filled) == deploy.event_rule(EVENTBRIDGE, "docs", prefix)
    config = dict(bridge[0]["Properties"]["TriggerConfig"], eventRuleFilterPattern=filled)
    validate(config, dict(FC3_SCHEMA["definitions"]["IEventBridge"], definitions=FC3_SCHEMA["definitions"]))
    assert config["asyncInvocationType"] is True  # asynchronous: the retries and the failure queue apply
    assert FC3["Outputs"]["CallbackUrl"]["Value"]["Fn::GetAtt"][1] == "UrlInternet"


def resolved_s_yaml(path):
    """The document with ${vars.X} and ${config('AccountID')} filled in, as Serverless Devs does before the schema."""
    document = load(path)
    variables = dict(document["vars"])

    def fill(value):
        if isinstance(value, str):
            value = value.replace("${config('AccountID')}", "1234567890123456")
            return re.sub(r"\$\{vars\.([A-Za-z0-9]+)\}", lambda m: str(variables[m.group(1)]), value)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    return fill(document)


@pytest.mark.parametrize("path", ["s.yaml", "deploy/s.eventbridge.yaml"])
def test_s_yaml_props_are_valid_for_the_fc3_component(path):
    document = resolved_s_yaml(path)
    assert document["edition"] == "3.0.0"
    assert set(document["resources"]) == set(FUNCTION)
    for name, resource in document["resources"].items():
        assert resource["component"] == "fc3"
        props = resource["props"]
        validate(props, FC3_SCHEMA)
        definitions = FC3_SCHEMA["definitions"]
        config_of = {"oss": "IOssTriggerConfig", "http": "IHttpTriggerConfig", "timer": "ITimerTriggerConfig",
                     "eventbridge": "IEventBridge"}
        for trigger in props.get("triggers", []):  # each config against its own type, not just any of them
            schema = dict(definitions[config_of[trigger["triggerType"]]], definitions=definitions)
            validate(trigger["triggerConfig"], schema)
        assert props["handler"] == FUNCTION[name].handler_for(3)
        assert props["code"] == f"../build/{name}.zip" if path.startswith("deploy/") else f"./build/{name}.zip"
    kinds = {t["triggerType"] for t in document["resources"]["ocr_upload"]["props"]["triggers"]}
    assert kinds == ({"eventbridge"} if "eventbridge" in path else {"oss"})


def test_s_yaml_secrets_come_from_the_shell_and_vars_default_like_the_parameters():
    for path in ("s.yaml", "deploy/s.eventbridge.yaml", "deploy/fc2/s.yaml"):
        document = load(path)
        for name, value in document["vars"].items():
            if name in PARAMETER:
                assert not PARAMETER[name].no_echo, f"{name} is a secret: it comes from ${{env()}}, not vars"
                assert value == (PARAMETER[name].default if PARAMETER[name].default is not None
                                 else deploy_files.S_VAR_EXAMPLES[name]), name
        text = (REPO / path).read_text("utf-8")
        for variable in ENVIRONMENT:
            if deploy.is_secret(variable) and variable in text:
                assert re.search(rf"{variable}: \$\{{env\({variable}\)\}}", text), (path, variable)


def test_the_eventbridge_s_yaml_rule_is_the_whole_bucket_rule():
    document = load("deploy/s.eventbridge.yaml")
    (trigger,) = document["resources"]["ocr_upload"]["props"]["triggers"]
    rule = json.loads(trigger["triggerConfig"]["eventRuleFilterPattern"])
    assert rule == deploy.event_rule(EVENTBRIDGE, "${vars.BucketName}", "")


# ------------------------------------------------------------------------------------------ FC 2.0 files
SERVICE_PROPERTIES = {"Role", "Policies", "Description", "InternetAccess", "VpcConfig", "LogConfig", "NasConfig",
                      "TracingConfig"}
FUNCTION_PROPERTIES = {"Handler", "Initializer", "Runtime", "CodeUri", "Description", "Timeout",
                       "InitializationTimeout", "EnvironmentVariables", "InstanceType", "AsyncConfiguration",
                       "MemorySize", "CAPort", "InstanceConcurrency"}
EVENT_PROPERTIES = {  # type -> (allowed, required)
    "OSS": ({"Events", "BucketName", "Filter", "InvocationRole", "Qualifier"}, {"Events", "BucketName", "Filter"}),
    "HTTP": ({"AuthType", "Methods", "InvocationRole", "Qualifier"}, {"AuthType", "Methods"}),
    "Timer": ({"CronExpression", "Payload", "Enable", "InvocationRole", "Qualifier"}, {"CronExpression"}),
}


def test_fc2_template_follows_the_transform_spec():
    template = load("deploy/fc2/template.yml")
    assert template["Transform"] == "Aliyun::Serverless-2018-04-03"
    (service,) = template["Resources"].values()
    assert set(service["Properties"]) <= SERVICE_PROPERTIES
    functions = {k: v for k, v in service.items() if k not in ("Type", "Properties")}
    assert set(functions) == set(FUNCTION)
    for _name, resource in functions.items():
        assert set(resource) <= {"Type", "Properties", "Events"}
        assert set(resource["Properties"]) <= FUNCTION_PROPERTIES
        assert resource["Properties"]["Runtime"] == "python3.10"
        for trigger_name, trigger in resource["Events"].items():
            allowed, required = EVENT_PROPERTIES[trigger["Type"]]
            assert required <= set(trigger["Properties"]) <= allowed, trigger_name
    oss = [e for e in functions["ocr_upload"]["Events"].values() if e["Type"] == "OSS"]
    assert len(oss) == len(DOCUMENT_SUFFIXES) <= 10


def test_fc2_s_yaml_has_one_service_for_the_three_functions():
    document = load("deploy/fc2/s.yaml")
    assert document["edition"] == "1.0.0"
    assert {s["component"] for s in document["services"].values()} == {"devsapp/fc"}
    services = [s["props"]["service"] for s in document["services"].values()]
    assert all(s == services[0] for s in services)
    assert {n: s["props"]["function"]["handler"] for n, s in document["services"].items()} == \
        {f.name: f.handler_for(2) for f in FUNCTIONS}
