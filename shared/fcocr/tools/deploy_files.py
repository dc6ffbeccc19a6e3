"""``fcocr deploy-files``: the deploy files, rendered from the one declaration in ``fcocr.deploy``.

    template.yml              ROS, FC 3.0: ALIYUN::FC3::Function/Trigger/AsyncInvokeConfig and the RAM role
    s.yaml                    Serverless Devs 3 (component fc3), per-suffix OSS triggers
    deploy/s.eventbridge.yaml the same with one EventBridge-based OSS trigger for every suffix, any letter case
    deploy/fc2/template.yml   ROS, FC 2.0 (the Aliyun::Serverless-2018-04-03 transform)
    deploy/fc2/s.yaml         Serverless Devs 2 (component devsapp/fc)

The files are committed; tests/test_template.py fails when one differs from what this writes (``--check``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

from . import deploy
from .deploy import (
    FUNCTIONS,
    GROUPS,
    PARAMETER,
    PARAMETERS,
    AsyncConfig,
    EventBridgeOssTrigger,
    Function,
    HttpTrigger,
    OssTrigger,
    TimerTrigger,
)

FILES = ("template.yml", "s.yaml", "deploy/s.eventbridge.yaml", "deploy/fc2/template.yml", "deploy/fc2/s.yaml")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:]+)\}")
# Values for the s.yaml vars that have no default (a deployer replaces them).
S_VAR_EXAMPLES = {"BucketName": "my-documents-bucket", "LogProject": "my-log-project", "LogStore": "fcocr"}
S_REGION = "cn-shanghai"
OSS_INVOCATION_ROLE = "acs:ram::${ALIYUN::AccountId}:role/aliyunosseventnotificationrole"


def _logical_id(*parts: str) -> str:
    return "".join(p[:1].upper() + p[1:] for part in parts for p in re.split(r"[_-]", part))


# ------------------------------------------------------------------------------------------ ROS values
def ros(value: str | int) -> Any:
    """A declared value in ROS: a literal, ``{"Ref": P}`` for exactly one parameter, else ``Fn::Sub``."""
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole and whole.group(1) in PARAMETER:
        return {"Ref": whole.group(1)}
    return {"Fn::Sub": value}


def ros_parameters(fc: int) -> dict:
    out = {}
    for p in PARAMETERS:
        if fc not in p.fc:
            continue
        body: dict[str, Any] = {"Type": p.type}
        if p.default is not None:
            body["Default"] = p.default
        if p.allowed_values:
            body["AllowedValues"] = list(p.allowed_values)
        if p.allowed_pattern:
            body["AllowedPattern"] = p.allowed_pattern
        if p.min_value is not None:
            body["MinValue"] = p.min_value
        if p.max_value is not None:
            body["MaxValue"] = p.max_value
        if p.no_echo:
            body["NoEcho"] = True
        body["Description"] = p.description
        out[p.name] = body
    return out


def ros_metadata(fc: int) -> dict:
    groups = []
    for group, label in GROUPS.items():
        names = [p.name for p in PARAMETERS if p.group == group and fc in p.fc and not p.name.startswith("MarketUrl")]
        if names:
            groups.append({"Parameters": names, "Label": {"default": label}})
    return {"ALIYUN::ROS::Interface": {"ParameterGroups": groups}}


def ros_policy() -> dict:
    statements = []
    for s in deploy.policy():
        body: dict[str, Any] = {"Effect": "Allow", "Action": list(s.actions), "Resource": ros(s.resource)}
        if s.condition:
            body["Condition"] = {op: {k: [ros(v) for v in vs] for k, vs in cond.items()}
                                 for op, cond in s.condition.items()}
        statements.append(body)
    return {"Version": "1", "Statement": statements}


def ros_environment(function: Function) -> dict:
    return {name: ros(value) for name, value in function.environment().items()}


# ------------------------------------------------------------------------------------------ ROS, FC 3.0
def event_rule_ros(trigger: EventBridgeOssTrigger) -> dict:
    """The rule as ROS builds it: the JSON text with ${BucketName} and ${SourcePrefix} substituted."""
    def text(prefix: str) -> dict:
        return {"Fn::Sub": json.dumps(deploy.event_rule(trigger, "${BucketName}", prefix), separators=(",", ":"))}

    return {"Fn::If": ["HasSourcePrefix", text("${SourcePrefix}"), text("")]}


def eventbridge_config(pattern: Any) -> dict:
    """An EventBridge trigger's triggerConfig: OSS's events from the default bus, as CloudEvents, one at a time."""
    return {
        "triggerEnable": True,
        "asyncInvocationType": True,  # asynchronous: the function's retries and failure queue apply
        "eventRuleFilterPattern": pattern,
        "eventSourceConfig": {"eventSourceType": "Default", "eventSourceParameters": {}},
        "eventSinkConfig": {"deliveryOption": {"mode": "event-driven", "eventSchema": "CloudEvents"}},
        "runOptions": {"mode": "event-driven"},
    }


def fc3_trigger_config(trigger: Any, value: Callable[[str], Any]) -> dict:
    """A trigger's triggerConfig (FC 3.0 API names), values rendered by ``value``."""
    if isinstance(trigger, OssTrigger):
        return {"events": ["oss:" + e for e in trigger.events],
                "filter": {"key": {"prefix": value("${SourcePrefix}"), "suffix": trigger.suffix}}}
    if isinstance(trigger, HttpTrigger):
        return {"authType": trigger.auth, "methods": list(trigger.methods), "disableURLInternet": False}
    if isinstance(trigger, TimerTrigger):
        return {"cronExpression": value(trigger.schedule), "enable": True, "payload": trigger.payload}
    raise TypeError(trigger)


def fc3_template(code_objects: dict[str, str] | None = None, code_bucket: str | None = None) -> dict:
    """``code_objects``: function -> object name in the code bucket (``fcocr package --code-bucket``)."""
    parameters = ros_parameters(3)
    if code_bucket:
        parameters["CodeBucket"]["Default"] = code_bucket
    resources: dict[str, Any] = {
        "Role": {"Type": "ALIYUN::RAM::Role", "Properties": {
            "RoleName": {"Fn::Sub": "fcocr-${ALIYUN::StackId}"},
            "Description": "fcocr's functions: exactly the grants below (README, Deploy)",
            "AssumeRolePolicyDocument": {"Version": "1", "Statement": [
                {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["fc.aliyuncs.com"]}}]},
            "Policies": [{"PolicyName": {"Fn::Sub": "fcocr-${ALIYUN::StackId}"}, "PolicyDocument": ros_policy()}],
        }},
    }
    outputs: dict[str, Any] = {}
    for f in FUNCTIONS:
        fid = _logical_id(f.name)
        object_name = (code_objects or {}).get(f.name) or f"${{CodePrefix}}{f.name}.zip"
        props: dict[str, Any] = {
            "FunctionName": deploy.fc3_name(f.name),
            "Description": f.description,
            "Runtime": {"Ref": "Runtime"},
            "Handler": f.handler_for(3),
            "Code": {"OssBucketName": {"Ref": "CodeBucket"}, "OssObjectName": ros(object_name)},
            "MemorySize": ros(f.sized.memory),
            "Timeout": ros(f.sized.timeout),
            "InstanceConcurrency": f.instance_concurrency,
            "InternetAccess": True,  # the vendors' OCR APIs are public endpoints
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "LogConfig": {"Project": {"Ref": "LogProject"}, "Logstore": {"Ref": "LogStore"}},
            "EnvironmentVariables": ros_environment(f),
        }
        if f.initializer:
            props["InstanceLifecycleConfig"] = {"Initializer": {"Handler": f.initializer,
                                                                "Timeout": f.initialization_timeout}}
        resources[fid] = {"Type": "ALIYUN::FC3::Function", "Properties": props}
        function_name = {"Fn::GetAtt": [fid, "FunctionName"]}
        if f.async_config:
            resources[fid + "AsyncInvokeConfig"] = {"Type": "ALIYUN::FC3::AsyncInvokeConfig",
                                                    "Properties": fc3_async(f.async_config, function_name)}
        for t in f.triggers:
            tid = _logical_id(fid, t.name)
            body: dict[str, Any] = {"FunctionName": function_name, "TriggerName": t.name, "TriggerType": t.kind}
            resource: dict[str, Any] = {"Type": "ALIYUN::FC3::Trigger"}
            if isinstance(t, OssTrigger):
                resource["Condition"] = "UseOssTriggers"
                body["InvocationRole"] = ros(OSS_INVOCATION_ROLE)
                body["SourceArn"] = ros("acs:oss:${ALIYUN::Region}:${ALIYUN::AccountId}:${BucketName}")
                body["TriggerConfig"] = fc3_trigger_config(t, ros)
            elif isinstance(t, EventBridgeOssTrigger):
                resource["Condition"] = "UseEventBridgeTrigger"
                body["TriggerConfig"] = eventbridge_config(event_rule_ros(t))
            else:
                body["TriggerConfig"] = fc3_trigger_config(t, ros)
                if isinstance(t, HttpTrigger):
                    outputs["CallbackUrl"] = {"Description": "scan_callback's URL: the GreenCallbackUrl parameter",
                                              "Value": {"Fn::GetAtt": [tid, "UrlInternet"]}}
            resource["Properties"] = body
            resources[tid] = resource
    return {
        "ROSTemplateFormatVersion": "2015-09-01",
        "Description": "fcocr - serverless OCR on Function Compute 3.0; every upload to the bucket gets a "
                       "<key>.ocr.json result beside it.",
        "Parameters": parameters,
        "Conditions": {
            "UseOssTriggers": {"Fn::Equals": [{"Ref": "UploadTrigger"}, "OSS"]},
            "UseEventBridgeTrigger": {"Fn::Equals": [{"Ref": "UploadTrigger"}, "EventBridge"]},
            "HasSourcePrefix": {"Fn::Not": {"Fn::Equals": [{"Ref": "SourcePrefix"}, ""]}},
        },
        "Metadata": ros_metadata(3),
        "Resources": resources,
        "Outputs": outputs,
    }


def fc3_async(config: AsyncConfig, function_name: Any) -> dict:
    props: dict[str, Any] = {"FunctionName": function_name, "MaxAsyncRetryAttempts": ros(config.max_retries)}
    if config.max_event_age:
        props["MaxAsyncEventAgeInSeconds"] = config.max_event_age
    if config.on_failure:
        props["DestinationConfig"] = {"OnFailure": {"Destination": ros(config.on_failure)}}
    return props


# ------------------------------------------------------------------------------------------ ROS, FC 2.0
def fc2_runtime_properties(f: Any, value: Callable[[Any], Any]) -> dict[str, Any]:
    """A FC 2.0 function's initializer, sizes and asynchronous configuration, named as ROS names them
    (s.yaml's fc component names the same in camelCase: ``camel_case``); ``value`` renders a declared value."""
    props: dict[str, Any] = {}
    if f.initializer:
        props["Initializer"] = f.initializer
        props["InitializationTimeout"] = f.initialization_timeout
    props.update({"MemorySize": value(f.sized.memory), "Timeout": value(f.sized.timeout),
                  "InstanceConcurrency": f.instance_concurrency})
    if f.async_config:
        a = f.async_config
        props["AsyncConfiguration"] = {"MaxAsyncRetryAttempts": value(a.max_retries)}
        if a.max_event_age:
            props["AsyncConfiguration"]["MaxAsyncEventAgeInSeconds"] = a.max_event_age
        if a.on_failure:
            props["AsyncConfiguration"]["Destination"] = {"OnFailure": value(a.on_failure)}
    return props


def camel_case(props: dict[str, Any]) -> dict[str, Any]:
    """``props`` with every key's first letter in lower case, nested dicts too (values are left alone)."""
    return {key[:1].lower() + key[1:]: camel_case(item) if isinstance(item, dict) else item
            for key, item in props.items()}


def fc2_template(code_uris: dict[str, str] | None = None) -> dict:
    """The FC 2.0 transform template; ``code_uris``: function -> oss:// URI (``fcocr package --code-bucket``)."""
    service: dict[str, Any] = {"Type": "Aliyun::Serverless::Service", "Properties": {
        "Description": "fcocr serverless OCR",
        "InternetAccess": True,
        "LogConfig": {"Project": {"Ref": "LogProject"}, "Logstore": {"Ref": "LogStore"}},
        "Policies": [ros_policy()],
    }}
    for f in FUNCTIONS:
        props: dict[str, Any] = {
            "Description": f.description,
            "Runtime": deploy.FC2_RUNTIME,
            "CodeUri": (code_uris or {}).get(f.name) or f"../../build/{f.name}.zip",
            "Handler": f.handler_for(2),
        }
        props.update(fc2_runtime_properties(f, ros))
        props["EnvironmentVariables"] = ros_environment(f)
        events = {}
        for t in f.triggers:
            if isinstance(t, EventBridgeOssTrigger):
                continue  # FC 2.0: native OSS triggers only (README, Deploy)
            if isinstance(t, OssTrigger):
                events[t.name] = {"Type": "OSS", "Properties": {
                    "BucketName": {"Ref": "BucketName"}, "Events": ["oss:" + e for e in t.events],
                    "Filter": {"Key": {"Prefix": {"Ref": "SourcePrefix"}, "Suffix": t.suffix}}}}
            elif isinstance(t, HttpTrigger):
                events[t.name] = {"Type": "HTTP", "Properties": {"AuthType": t.auth, "Methods": list(t.methods)}}
            elif isinstance(t, TimerTrigger):
                events[t.name] = {"Type": "Timer", "Properties": {"CronExpression": ros(t.schedule), "Enable": True,
                                                                  "Payload": t.payload}}
        service[f.name] = {"Type": "Aliyun::Serverless::Function", "Properties": props, "Events": events}
    return {
        "ROSTemplateFormatVersion": "2015-09-01",
        "Transform": "Aliyun::Serverless-2018-04-03",
        "Description": "fcocr - serverless OCR on Function Compute 2.0; every upload to the bucket gets a "
                       "<key>.ocr.json result beside it.",
        "Parameters": ros_parameters(2),
        "Metadata": ros_metadata(2),
        "Resources": {deploy.FC2_SERVICE: service},
    }


# ------------------------------------------------------------------------------------------ Serverless Devs
def s_value(value: Any, edition: int, variable: str | None = None) -> Any:
    """A declared value in s.yaml: parameters are vars (numbers as their default), secrets come from the
    shell's environment under the name of the variable they feed, never from the file."""
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole and whole.group(1) in PARAMETER:
        p = PARAMETER[whole.group(1)]
        if p.no_echo:
            return f"${{env({variable})}}"
        if p.type == "Number":
            return p.default

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name == "ALIYUN::Region":
            return "${vars.region}" if edition == 3 else ""
        if name == "ALIYUN::AccountId":
            return "${config('AccountID')}" if edition == 3 else ""  # devsapp/fc fills in acs:mns::: itself
        return f"${{vars.{name}}}"

    return _PLACEHOLDER.sub(one, value)


def s_vars(used: set[str]) -> dict:
    out: dict[str, Any] = {"region": S_REGION}
    for p in PARAMETERS:
        if p.name in used and not p.no_echo and p.type != "Number":
            out[p.name] = p.default if p.default is not None else S_VAR_EXAMPLES[p.name]
    return out


def _vars_used(document: Any) -> set[str]:
    return set(re.findall(r"\$\{vars\.([A-Za-z0-9]+)\}", yaml.safe_dump(document)))


def s_policy(edition: int) -> list[dict]:
    out = []
    for s in deploy.policy():
        body: dict[str, Any] = {"Effect": "Allow", "Action": list(s.actions), "Resource": s_value(s.resource, edition)}
        if s.condition:
            body["Condition"] = {op: {k: [s_value(v, edition) for v in vs] for k, vs in cond.items()}
                                 for op, cond in s.condition.items()}
        out.append(body)
    return out


def s_environment(function: Function, edition: int) -> dict:
    return {name: s_value(value, edition, name) for name, value in function.environment().items()}


def fc3_props(f: Function, code: str, eventbridge: bool) -> dict:
    v = lambda value: s_value(value, 3)  # noqa: E731
    props: dict[str, Any] = {
        "region": "${vars.region}",
        "functionName": deploy.fc3_name(f.name),
        "description": f.description,
        "runtime": "${vars.Runtime}",
        "code": code,
        "handler": f.handler_for(3),
        "memorySize": v(f.sized.memory),
        "timeout": v(f.sized.timeout),
        "instanceConcurrency": f.instance_concurrency,
        "internetAccess": True,
        "role": "acs:ram::${config('AccountID')}:role/${vars.RoleName}",
        "logConfig": {"project": "${vars.LogProject}", "logstore": "${vars.LogStore}"},
    }
    if f.initializer:
        props["instanceLifecycleConfig"] = {"initializer": {"handler": f.initializer,
                                                            "timeout": f.initialization_timeout}}
    props["environmentVariables"] = s_environment(f, 3)
    if f.async_config:
        a = f.async_config
        config: dict[str, Any] = {"maxAsyncRetryAttempts": v(a.max_retries)}
        if a.max_event_age:
            config["maxAsyncEventAgeInSeconds"] = a.max_event_age
        if a.on_failure:
            config["destinationConfig"] = {"onFailure": {"destination": v(a.on_failure)}}
        props["asyncInvokeConfig"] = config
    triggers = []
    for t in f.triggers:
        if isinstance(t, OssTrigger) and eventbridge or isinstance(t, EventBridgeOssTrigger) and not eventbridge:
            continue
        body: dict[str, Any] = {"triggerName": t.name, "triggerType": t.kind}
        if isinstance(t, OssTrigger):
            body["invocationRole"] = v(OSS_INVOCATION_ROLE)
            body["sourceArn"] = v("acs:oss:${ALIYUN::Region}:${ALIYUN::AccountId}:${BucketName}")
            body["triggerConfig"] = fc3_trigger_config(t, v)
        elif isinstance(t, EventBridgeOssTrigger):
            # Serverless Devs has no conditions: the rule is for the whole bucket (README: with a SourcePrefix,
            # the key condition becomes {"prefix": "<SourcePrefix>"}).
            rule = deploy.event_rule(t, "${vars.BucketName}", "")
            body["triggerConfig"] = eventbridge_config(json.dumps(rule, separators=(",", ":")))
        else:
            body["triggerConfig"] = fc3_trigger_config(t, v)
        triggers.append(body)
    props["triggers"] = triggers
    return props


def fc3_s_yaml(code_dir: str, eventbridge: bool = False) -> dict:
    resources = {f.name: {"component": "fc3", "props": fc3_props(f, f"{code_dir}/{f.name}.zip", eventbridge)}
                 for f in FUNCTIONS}
    used = _vars_used(resources) | {"region"}
    variables = s_vars(used)
    variables["RoleName"] = "fcocr-role"
    return {"edition": "3.0.0", "name": "fcocr", "access": "default", "vars": variables, "resources": resources}


def fc2_s_yaml(code_dir: str) -> dict:
    service = {
        "name": deploy.FC2_SERVICE,
        "description": "fcocr serverless OCR",
        "internetAccess": True,
        "logConfig": {"project": "${vars.LogProject}", "logstore": "${vars.LogStore}"},
        "role": {"name": "fcocr-service-role", "policies": [{
            "name": "fcocr-service-policy", "description": "least privilege for fcocr (see README, Deploy)",
            "statement": s_policy(2)}]},
    }
    services = {}
    for f in FUNCTIONS:
        v = lambda value: s_value(value, 2)  # noqa: E731
        function: dict[str, Any] = {"name": f.name, "description": f.description, "runtime": deploy.FC2_RUNTIME,
                                    "codeUri": f"{code_dir}/{f.name}.zip", "handler": f.handler_for(2)}
        function.update(camel_case(fc2_runtime_properties(f, v)))
        function["environmentVariables"] = s_environment(f, 2)
        triggers = []
        for t in f.triggers:
            if isinstance(t, OssTrigger):
                triggers.append({"name": t.name, "type": "oss", "config": {
                    "bucketName": "${vars.BucketName}", "events": ["oss:" + e for e in t.events],
                    "filter": {"Key": {"Prefix": "${vars.SourcePrefix}", "Suffix": t.suffix}}}})
            elif isinstance(t, HttpTrigger):
                triggers.append({"name": t.name, "type": "http",
                                 "config": {"authType": t.auth, "methods": list(t.methods)}})
            elif isinstance(t, TimerTrigger):
                triggers.append({"name": t.name, "type": "timer", "config": {
                    "cronExpression": v(t.schedule), "enable": True, "payload": t.payload}})
        services[f.name] = {"component": "devsapp/fc", "props": {
            "region": "${vars.region}", "service": service, "function": function, "triggers": triggers}}
    return {"edition": "1.0.0", "name": "fcocr", "access": "default", "vars": s_vars(_vars_used(services) | {"region"}),
            "services": services}


# ------------------------------------------------------------------------------------------ files
HEADERS = {
    "template.yml": """\
# GENERATED by `fcocr deploy-files` from shared/fcocr/deploy.py: edit that, then run `make deploy-files`.
# fcocr on Alibaba Cloud Function Compute 3.0, for ROS (the console's Create Stack, `aliyun ros CreateStack`).
# Code: the zips `fcocr package --code-bucket B` builds and tells you to upload (it also writes
# build/template.yml naming them). Parameters, the role, the triggers: README.md, "Deploy".
""",
    "s.yaml": """\
# GENERATED by `fcocr deploy-files` from shared/fcocr/deploy.py: edit that, then run `make deploy-files`.
# fcocr for Serverless Devs 3 (`s deploy`, component fc3): per-suffix OSS triggers.
#   make package                # build/<function>.zip: each function's code
#   export ALIYUN_MARKET_APPCODE= TENCENTCLOUD_SECRET_ID= TENCENTCLOUD_SECRET_KEY= GREEN_UID= GREEN_SEED=
#   s deploy                    # after setting the vars below; RoleName is an existing role (README, Deploy)
# Secrets come from your shell's environment (${env(NAME)}), never from this file.
""",
    "deploy/s.eventbridge.yaml": """\
# GENERATED by `fcocr deploy-files` from shared/fcocr/deploy.py: edit that, then run `make deploy-files`.
# fcocr for Serverless Devs 3 with ONE EventBridge-based OSS trigger for every document suffix in any letter
# case (not bound by a bucket's 10 OSS trigger rules): `s deploy -t deploy/s.eventbridge.yaml`.
# Secrets come from your shell's environment (${env(NAME)}), never from this file.
""",
    "deploy/fc2/template.yml": """\
# GENERATED by `fcocr deploy-files` from shared/fcocr/deploy.py: edit that, then run `make deploy-files`.
# fcocr on Function Compute 2.0 for ROS (the Aliyun::Serverless-2018-04-03 transform), for accounts that stay
# there; `fcocr package --code-bucket B` writes build/fc2/template.yml with CodeUri on OSS.
""",
    "deploy/fc2/s.yaml": """\
# GENERATED by `fcocr deploy-files` from shared/fcocr/deploy.py: edit that, then run `make deploy-files`.
# fcocr for Serverless Devs 2 (component devsapp/fc, FC 2.0): `s deploy -t deploy/fc2/s.yaml`.
# Secrets come from your shell's environment (${env(NAME)}), never from this file.
""",
}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str)


def dump(document: dict) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120,
                     default_flow_style=False)


def _code_dir(path: str) -> str:
    depth = path.count("/")
    return "/".join([".."] * depth + ["build"]) if depth else "./build"


def render(path: str) -> str:
    documents = {
        "template.yml": lambda: fc3_template(),
        "s.yaml": lambda: fc3_s_yaml(_code_dir(path)),
        "deploy/s.eventbridge.yaml": lambda: fc3_s_yaml(_code_dir(path), eventbridge=True),
        "deploy/fc2/template.yml": lambda: fc2_template(),
        "deploy/fc2/s.yaml": lambda: fc2_s_yaml(_code_dir(path)),
    }
    return HEADERS[path] + dump(documents[path]())


def write(root: Path) -> list[Path]:
    written = []
    for path in FILES:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        text = render(path)
        if not target.is_file() or target.read_text("utf-8") != text:
            target.write_text(text, "utf-8")
            written.append(target)
    return written


def stale(root: Path) -> list[str]:
    return [p for p in FILES if not (root / p).is_file() or (root / p).read_text("utf-8") != render(p)]


def policy_document(values: dict[str, str]) -> dict:
    """The role's policy with the parameters filled in (for a role made by hand, e.g. for s deploy)."""
    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

    statements = []
    for s in deploy.policy():
        body: dict[str, Any] = {"Effect": "Allow", "Action": list(s.actions), "Resource": fill(s.resource)}
        if s.condition:
            body["Condition"] = {op: {k: [fill(v) for v in vs] for k, vs in c.items()} for op, c in s.condition.items()}
        statements.append(body)
    return {"Version": "1", "Statement": statements}


def run_cli(args: Any, out: Any = None) -> int:
    """``fcocr deploy-files [--check] [--policy --bucket B ...]`` (arguments parsed by fcocr.cli)."""
    from .package import repository_root

    out = out or sys.stdout
    if args.policy:
        values = {"BucketName": args.bucket, "SourcePrefix": args.prefix, "LogProject": args.log_project,
                  "LogStore": args.log_store, "FailureQueueName": args.failure_queue}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            print(f"fcocr deploy-files --policy needs {', '.join(missing)}", file=sys.stderr)
            return 2
        print(json.dumps(policy_document(values), indent=2), file=out)
        return 0
    root = repository_root()
    if args.check:
        old = stale(root)
        for path in old:
            print(f"stale: {path} (run `make deploy-files`)", file=out)
        return 1 if old else 0
    for target in write(root):
        print(f"wrote {os.path.relpath(target)}", file=out)
    return 0


def add_arguments(p: Any) -> None:
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is not what it would write")
    p.add_argument("--policy", action="store_true", help="print the role's policy document for these values instead")
    p.add_argument("--bucket", help="--policy: the documents' bucket")
    p.add_argument("--prefix", default="", help="--policy: the source prefix (default: the whole bucket)")
    p.add_argument("--log-project", help="--policy: the SLS project")
    p.add_argument("--log-store", help="--policy: the Logstore")
    p.add_argument("--failure-queue", default="fcocr-failed", help="--policy: the MNS queue (default fcocr-failed)")
