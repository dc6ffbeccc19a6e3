"""fcocr's functions, declared once: what every deploy file says (``fcocr deploy-files`` writes them).

``FUNCTIONS`` holds each function's handler, initializer, sizes, variables, triggers and asynchronous
configuration; ``PARAMETERS`` what a deployer chooses; ``POLICY`` the role's statements. ``deploy_files``
renders them as ROS (FC 3.0 and the FC 2.0 transform) and Serverless Devs (``fc3`` and ``devsapp/fc``);
tests/test_template.py checks this declaration against the code once, and the files against it.

Placeholders: ``${Name}`` in a string names a parameter (ROS ``Fn::Sub``; Serverless Devs ``${vars.Name}``);
``${ALIYUN::Region}`` and ``${ALIYUN::AccountId}`` are the stack's region and account.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any

from ..config import CLI_ONLY, DEFAULT_RESULT_SUFFIX, ENVIRONMENT
from ..model import DOCUMENT_SUFFIXES  # the documents an upload trigger is for
from ..recognizers.market import IDS as MARKET_IDS
from ..recognizers.market import url_variable as market_url_variable
from ..recognizers.tencent import REGIONS as TENCENT_REGIONS
from ..storage import CLAIM_PREFIX, RESERVED_PREFIXES, TASK_PREFIX

FC3_RUNTIMES = ("python3.10", "python3.12")
DEFAULT_RUNTIME = "python3.12"  # new deploys (FC 3.0); FC 2.0 stays on python3.10
FC2_RUNTIME = "python3.10"
FC3_NAME_PREFIX = "fcocr-"  # FC 3.0 has no services: function names are the account's, per region
FC2_SERVICE = "fcocr"
# Whole objects only: ObjectCreated:* would also fire for every part of a multipart upload. Deletions too: a
# deleted document's result, task record and staged copies go with it (FCOCR_DELETE_WITH_SOURCE).
UPLOAD_EVENTS = ("ObjectCreated:PutObject", "ObjectCreated:PostObject", "ObjectCreated:CompleteMultipartUpload",
                 "ObjectRemoved:DeleteObject", "ObjectRemoved:DeleteObjects")


def fc3_name(name: str) -> str:
    return FC3_NAME_PREFIX + name


# ------------------------------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # String | Number
    description: str
    default: Any = None  # None: required (no default)
    allowed_values: tuple = ()
    allowed_pattern: str | None = None
    min_value: int | None = None
    max_value: int | None = None
    no_echo: bool = False
    group: str = "operations"
    fc: tuple[int, ...] = (2, 3)  # which FC versions' templates use it


GROUPS = {"operations": "Bucket, routes and operations", "code": "Code and runtime (FC 3.0)",
          "sizes": "Function sizes", "vendors": "Vendor credentials (secrets have no default)"}


def _camel(market_id: str) -> str:
    return "".join(part.capitalize() for part in market_id.split("-"))


def market_parameter(market_id: str) -> str:
    return "MarketUrl" + _camel(market_id)


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("BucketName", "String", "The OSS bucket whose uploads are recognized (same region as the stack).",
              allowed_pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
    # No '.' first (the reserved prefixes start with one), no glob characters, no quote or backslash (the
    # EventBridge rule holds it in a JSON string).
    Parameter("SourcePrefix", "String", "Only keys under this prefix are recognized (empty = the whole bucket; "
              "otherwise it ends with '/' and does not start with '.').", default="",
              allowed_pattern=r'^$|^[^./*?"\\][^*?"\\]*/$'),
    Parameter("UploadTrigger", "String", "OSS: one OSS trigger per lower-case suffix (at most 10 per bucket); "
              "EventBridge: one EventBridge-based OSS trigger for every suffix in any letter case.", default="OSS",
              allowed_values=("OSS", "EventBridge"), fc=(3,)),
    Parameter("RoutesJson", "String", "FCOCR_ROUTES - inline JSON routes; empty uses the routes.yml packaged with "
              "the code.", default=""),
    Parameter("LogLevel", "String", "FCOCR_LOG_LEVEL - level of fcocr's JSON log lines.", default="INFO",
              allowed_values=("DEBUG", "INFO", "WARNING", "ERROR")),
    Parameter("LogProject", "String", "An existing SLS project (same region) the functions log to."),
    Parameter("LogStore", "String", "An existing Logstore in LogProject."),
    Parameter("FailureQueueName", "String", "An existing MNS queue (same region) that receives ocr_upload events "
              "still failing after every retry.", default="fcocr-failed"),
    Parameter("CodeBucket", "String", "The OSS bucket (same region) holding the zips fcocr package built "
              "(fcocr package --code-bucket prints the upload commands).",
              allowed_pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", group="code", fc=(3,)),
    Parameter("CodePrefix", "String", "Object prefix of the zips in CodeBucket: <CodePrefix><function>.zip.",
              default="fcocr-code/", group="code", fc=(3,)),
    Parameter("Runtime", "String", "The Python runtime; build the zips for it (fcocr package --runtime).",
              default=DEFAULT_RUNTIME, allowed_values=FC3_RUNTIMES, group="code", fc=(3,)),
    Parameter("UploadMemorySize", "Number", "ocr_upload memory in MB (a multiple of 64). The offline engine needs "
              "about 1 GB; cloud-only routes far less.", default=2048, min_value=128, max_value=3072, group="sizes"),
    Parameter("UploadTimeout", "Number", "ocr_upload timeout in seconds (the FC default of 3 s is far too short "
              "for OCR).", default=300, min_value=30, max_value=600, group="sizes"),
    Parameter("UploadMaxRetries", "Number", "FC's asynchronous retries of an ocr_upload invocation that raised "
              "(a transient fault).", default=3, min_value=0, max_value=8, group="sizes"),
    Parameter("CallbackMemorySize", "Number", "scan_callback memory in MB.", default=512, min_value=128,
              max_value=3072, group="sizes"),
    Parameter("CallbackTimeout", "Number", "scan_callback timeout in seconds.", default=30, min_value=5,
              max_value=600, group="sizes"),
    Parameter("ReconcileMemorySize", "Number", "scan_reconcile memory in MB.", default=512, min_value=128,
              max_value=3072, group="sizes"),
    Parameter("ReconcileTimeout", "Number", "scan_reconcile timeout in seconds.", default=300, min_value=30,
              max_value=600, group="sizes"),
    Parameter("ReconcileSchedule", "String", "When scan_reconcile runs - '@every 5m' or a six-field cron "
              "expression in UTC ('0 */5 * * * *').", default="@every 5m", group="sizes"),
    Parameter("MarketAppCode", "String", "ALIYUN_MARKET_APPCODE - APPCODE of your Cloud Market purchases (secret; "
              "pass an empty value if unused).", no_echo=True, group="vendors"),
    Parameter("TencentSecretId", "String", "TENCENTCLOUD_SECRET_ID for tencent.VatInvoiceOCR (secret; pass an "
              "empty value if unused).", no_echo=True, group="vendors"),
    Parameter("TencentSecretKey", "String", "TENCENTCLOUD_SECRET_KEY (secret; pass an empty value if unused).",
              no_echo=True, group="vendors"),
    Parameter("TencentRegion", "String", "TENCENTCLOUD_REGION for tencent.VatInvoiceOCR.", default="ap-shanghai",
              allowed_values=TENCENT_REGIONS, group="vendors"),
    Parameter("GreenUid", "String", "GREEN_UID - your main-account UID; green.* callbacks are checksummed with it "
              "(secret; empty if unused).", no_echo=True, allowed_pattern="^[0-9]*$", group="vendors"),
    Parameter("GreenSeed", "String", "GREEN_SEED - 1-64 letters, digits or underscores, sent with every green.* "
              "scan (secret; empty if unused).", no_echo=True, allowed_pattern="^[A-Za-z0-9_]{0,64}$",
              group="vendors"),
    Parameter("GreenCryptType", "String", "GREEN_CRYPT_TYPE - callback checksum algorithm.", default="SHA256",
              allowed_values=("SHA256", "SM3"), group="vendors"),
    Parameter("GreenCallbackUrl", "String", "GREEN_CALLBACK_URL - scan_callback's HTTP trigger URL (known after the "
              "first deploy: the stack's CallbackUrl output; empty = results only through scan_reconcile).",
              default="", group="vendors"),
    Parameter("DeleteWithSource", "String", "FCOCR_DELETE_WITH_SOURCE - when a document is deleted, delete its "
              "result, task record and staged copies too (personal data leaves with its document).",
              default="true", allowed_values=("true", "false")),
    Parameter("ServerSideEncryption", "String", "FCOCR_SSE - OSS server-side encryption of every object fcocr "
              "writes: empty (none), AES256, KMS or KMS:<key-id> (KMS also needs kms:GenerateDataKey and kms:Decrypt "
              "on the key in the role: README, Operating in production).", default="",
              allowed_pattern="^(|AES256|KMS|KMS:[A-Za-z0-9-]+)$"),
    Parameter("MaskFields", "String", "FCOCR_MASK - comma-separated normalized fields masked in results "
              "(e.g. idNumber,cardNumber); empty: none.", default=""),
    Parameter("KeepRaw", "String", "FCOCR_KEEP_RAW - keep the vendor's raw answer in results (masked like the "
              "fields).", default="true", allowed_values=("true", "false")),
    Parameter("Notify", "String", "FCOCR_NOTIFY - where to announce a final result: mns:topic/NAME or an https:// "
              "webhook; empty: nowhere (MNS also needs mns:PublishMessage in the role: README).", default=""),
    Parameter("NotifySecret", "String", "FCOCR_NOTIFY_SECRET - HMAC-SHA256 key of webhook notifications (secret; "
              "pass an empty value if unused).", no_echo=True),
    Parameter("MnsEndpoint", "String", "FCOCR_MNS_ENDPOINT - MNS endpoint URL, for an mns:topic/NAME notification; "
              "empty if unused.", default=""),
    *(Parameter(market_parameter(i), "String", f"{market_url_variable(i)} - URL of your market.{i} purchase (its "
                "API page in the Cloud Market console); empty if unused.", default="", group="vendors")
      for i in MARKET_IDS),
)
PARAMETER = {p.name: p for p in PARAMETERS}


# ------------------------------------------------------------------------------------------ environment
# Every ENVIRONMENT row but the command line's is placed here once: the value a deployed function gets (a
# literal, or "${Parameter}"), or why no function declares it.
DEPLOYED_VALUES: dict[str, str] = {
    "FCOCR_ROUTES": "${RoutesJson}",
    "FCOCR_RESULT_SUFFIX": DEFAULT_RESULT_SUFFIX,
    "FCOCR_LOG_LEVEL": "${LogLevel}",
    "ALIYUN_MARKET_APPCODE": "${MarketAppCode}",
    **{market_url_variable(i): "${" + market_parameter(i) + "}" for i in MARKET_IDS},
    "TENCENTCLOUD_SECRET_ID": "${TencentSecretId}",
    "TENCENTCLOUD_SECRET_KEY": "${TencentSecretKey}",
    "TENCENTCLOUD_REGION": "${TencentRegion}",
    "GREEN_UID": "${GreenUid}",
    "GREEN_SEED": "${GreenSeed}",
    "GREEN_CRYPT_TYPE": "${GreenCryptType}",
    "GREEN_CALLBACK_URL": "${GreenCallbackUrl}",
    "FCOCR_RECONCILE_BUCKETS": "${BucketName}",
    "FCOCR_DELETE_WITH_SOURCE": "${DeleteWithSource}",
    "FCOCR_SSE": "${ServerSideEncryption}",
    "FCOCR_MASK": "${MaskFields}",
    "FCOCR_KEEP_RAW": "${KeepRaw}",
    "FCOCR_NOTIFY": "${Notify}",
    "FCOCR_NOTIFY_SECRET": "${NotifySecret}",
    "FCOCR_MNS_ENDPOINT": "${MnsEndpoint}",
}
LOCAL_ONLY: dict[str, str] = {
    "FCOCR_LOCAL_ROOT": "a local directory instead of OSS",
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "FC provides the role's STS credentials (python3.10: context.credentials; "
                                   "python3.12: these same variables, set by FC)",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "as ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "as ALIBABA_CLOUD_ACCESS_KEY_ID",
}
DEFAULT_IS_RIGHT_ON_FC: dict[str, str] = {
    "FCOCR_OSS_ENDPOINT": "the region's internal endpoint, taken from the event",
    "FCOCR_OSS_PUBLIC_ENDPOINT": "the region's public endpoint, for presigned URLs",
    "FCOCR_ALIYUN_OCR_ENDPOINT": "the vendor's endpoint (set only for a private endpoint or an emulator)",
    "FCOCR_TENCENT_ENDPOINT": "the vendor's endpoint",
    "FCOCR_GREEN_ENDPOINT": "the vendor's endpoint",
    "FCOCR_VIAPI_STAGING": "only for a bucket outside cn-shanghai routed to aliyun.*; needs a policy statement "
                           "too (README)",
    "FCOCR_VIAPI_STAGING_ENDPOINT": "goes with FCOCR_VIAPI_STAGING",
    **{name: "tuning" for name in ("FCOCR_MAX_BYTES", "FCOCR_MAX_PIXELS", "FCOCR_MAX_PAGES", "FCOCR_PDF_DPI", "FCOCR_PAGE_MEMORY_MB", "FCOCR_ENGINE",
                                   "FCOCR_OCR_THREADS", "FCOCR_RETRY_ATTEMPTS", "FCOCR_RETRY_BASE_MS",
                                   "FCOCR_CALL_TIMEOUT", "FCOCR_VIAPI_POLL_MS", "FCOCR_RECONCILE_AFTER",
                                   "FCOCR_TENCENT_INPUT")},
}


def deployable_variables() -> dict[str, str]:
    """ENVIRONMENT minus the command line's own rows: what a deployed function may be given (name -> text).

    The one place the deploy files take their variables from (the lead re-points it to per-family settings)."""
    return {name: text for name, text in ENVIRONMENT.items() if name not in CLI_ONLY}


def environment(names: tuple[str, ...]) -> dict[str, str]:
    """name -> deployed value for ``names``, each a deployable variable with a deployed value."""
    rows = deployable_variables()
    unknown = [n for n in names if n not in rows or n not in DEPLOYED_VALUES]
    if unknown:
        raise ValueError(f"not deployable variables (fcocr.deploy.DEPLOYED_VALUES): {unknown}")
    return {n: DEPLOYED_VALUES[n] for n in names}


def is_secret(variable: str) -> bool:
    return "(secret)" in ENVIRONMENT.get(variable, "")


# ------------------------------------------------------------------------------------------ triggers
@dataclass(frozen=True)
class OssTrigger:
    """A native OSS trigger: one prefix, one suffix (case-sensitive); at most 10 rules per bucket."""
    name: str
    suffix: str
    events: tuple[str, ...] = UPLOAD_EVENTS
    kind: str = "oss"


@dataclass(frozen=True)
class EventBridgeOssTrigger:
    """An EventBridge-based OSS trigger: every suffix in any letter case, past the 10-rule limit (FC 3.0)."""
    name: str
    suffixes: tuple[str, ...]
    events: tuple[str, ...] = UPLOAD_EVENTS
    kind: str = "eventbridge"


@dataclass(frozen=True)
class HttpTrigger:
    name: str
    methods: tuple[str, ...]
    auth: str = "anonymous"  # the callback's checksum is the authentication
    kind: str = "http"


@dataclass(frozen=True)
class TimerTrigger:
    name: str
    schedule: str  # "${ReconcileSchedule}"
    payload: str = ""
    kind: str = "timer"


@dataclass(frozen=True)
class AsyncConfig:
    max_retries: int | str  # a number or "${Parameter}"
    max_event_age: int | None = None
    on_failure: str | None = None  # an MNS queue ARN with placeholders


@dataclass(frozen=True)
class Sized:
    memory: str  # "${Parameter}"
    timeout: str


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    handler: str  # FC 3.0
    sized: Sized
    variables: tuple[str, ...]
    triggers: tuple[Any, ...]
    fc2_handler: str | None = None  # FC 2.0, where it differs
    initializer: str | None = None
    initialization_timeout: int | None = None
    async_config: AsyncConfig | None = None
    instance_concurrency: int = 1

    @property
    def directory(self) -> str:
        return f"functions/{self.name}"

    def handler_for(self, fc: int) -> str:
        return (self.fc2_handler or self.handler) if fc == 2 else self.handler

    def environment(self) -> dict[str, str]:
        return environment(self.variables)


def _suffix_trigger_name(suffix: str) -> str:
    return "on" + suffix.lstrip(".").capitalize()


FAILURE_QUEUE_ARN = "acs:mns:${ALIYUN::Region}:${ALIYUN::AccountId}:/queues/${FailureQueueName}/messages"
UPLOAD_VARIABLES = ("FCOCR_ROUTES", "FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "ALIYUN_MARKET_APPCODE",
                    *(market_url_variable(i) for i in MARKET_IDS), "TENCENTCLOUD_SECRET_ID",
                    "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_REGION", "GREEN_UID", "GREEN_SEED", "GREEN_CRYPT_TYPE",
                    "GREEN_CALLBACK_URL")

# Every function that writes results writes them the same way: encrypted, masked, announced, never for a deleted
# source.
RESULT_WRITING_VARIABLES = ("FCOCR_DELETE_WITH_SOURCE", "FCOCR_SSE", "FCOCR_MASK", "FCOCR_KEEP_RAW", "FCOCR_NOTIFY",
                            "FCOCR_NOTIFY_SECRET", "FCOCR_MNS_ENDPOINT")

FUNCTIONS: tuple[Function, ...] = (
    Function(
        name="ocr_upload",
        description="Recognize an uploaded document and write <key>.ocr.json beside it.",
        handler="index.handler",
        # Runs once per instance: a bad routes file fails here, and the models load before the first request.
        initializer="index.initialize", initialization_timeout=60,
        sized=Sized("${UploadMemorySize}", "${UploadTimeout}"),
        variables=(*UPLOAD_VARIABLES, *RESULT_WRITING_VARIABLES),
        triggers=(*(OssTrigger(_suffix_trigger_name(s), s) for s in DOCUMENT_SUFFIXES),
                  EventBridgeOssTrigger("onDocument", DOCUMENT_SUFFIXES)),
        async_config=AsyncConfig("${UploadMaxRetries}", 86400, FAILURE_QUEUE_ARN),
    ),
    Function(
        name="scan_callback",
        description="Content Security result callbacks - verified, written beside the source, acknowledged.",
        handler="index.handler_fc3",  # FC 3.0 HTTP trigger: a JSON event in, {statusCode, headers, body} out
        fc2_handler="index.handler",  # FC 2.0 HTTP trigger: a WSGI application
        sized=Sized("${CallbackMemorySize}", "${CallbackTimeout}"),
        variables=("FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "GREEN_UID", "GREEN_SEED", "GREEN_CRYPT_TYPE",
                   *RESULT_WRITING_VARIABLES),
        triggers=(HttpTrigger("onResult", ("POST",)),),
    ),
    Function(
        name="scan_reconcile",
        description="Finish pending Content Security scans and viapi async jobs that no callback finished.",
        handler="index.handler",
        sized=Sized("${ReconcileMemorySize}", "${ReconcileTimeout}"),
        variables=("FCOCR_RESULT_SUFFIX", "FCOCR_LOG_LEVEL", "FCOCR_RECONCILE_BUCKETS", *RESULT_WRITING_VARIABLES),
        triggers=(TimerTrigger("reconcile", "${ReconcileSchedule}"),),
        async_config=AsyncConfig(0),  # the next tick is the retry
    ),
)
FUNCTION = {f.name: f for f in FUNCTIONS}


# ------------------------------------------------------------------------------------------ EventBridge rule
def case_variants(suffix: str) -> list[str]:
    """Every spelling of ``suffix`` in upper and lower case (EventBridge matches case-sensitively)."""
    choices = [(c.lower(), c.upper()) if c.lower() != c.upper() else (c,) for c in suffix]
    return ["".join(p) for p in itertools.product(*choices)]


def own_writes_prefix() -> str:
    """The prefix every reserved prefix shares: the rule excludes keys under it, today's and future ones."""
    return os.path.commonprefix(list(RESERVED_PREFIXES))


def event_rule(trigger: EventBridgeOssTrigger, bucket: str, prefix: str) -> dict:
    """The EventBridge event pattern for ``bucket`` and source ``prefix`` ('' = the whole bucket).

    A key must end with a document suffix, in any letter case (``subject`` is acs:oss:...:bucket/key), so a
    result (``.ocr.json``) never matches; under a source prefix (which cannot start with '.') a reserved
    prefix cannot match, and with none the key must not start with the reserved prefixes' common prefix."""
    key = [{"prefix": prefix}] if prefix else [{"anything-but": {"prefix": own_writes_prefix()}}]
    return {
        "source": ["acs.oss"],
        "type": ["oss:" + e for e in trigger.events],
        "subject": [{"suffix": v} for s in trigger.suffixes for v in case_variants(s)],
        "data": {"oss": {"bucket": {"name": [bucket]}, "object": {"key": key}}},
    }


# ------------------------------------------------------------------------------------------ the role
@dataclass(frozen=True)
class Statement:
    why: str
    actions: tuple[str, ...]
    resource: str
    condition: dict | None = field(default=None, compare=False)


# The Vision Intelligence OCR actions fcocr calls (fcocr.recognizers.aliyun.ACTIONS) and the async job poll.
def _viapi_actions() -> tuple[str, ...]:
    from ..recognizers.aliyun import ACTIONS

    return tuple(f"viapi-ocr:{a.action}" for a in ACTIONS)


def policy() -> tuple[Statement, ...]:
    """The role's statements: one resource each (no managed policy such as AliyunOSSFullAccess)."""
    bucket = "acs:oss:*:*:${BucketName}"
    return (
        Statement("Read the documents (HeadObject is authorized as GetObject), including the results' own HEAD.",
                  ("oss:GetObject", "oss:GetObjectMeta", "oss:GetSymlink"), bucket + "/${SourcePrefix}*"),
        Statement("Write result documents, and delete them with their source: the role cannot overwrite or delete a "
                  "source document.",
                  ("oss:PutObject", "oss:DeleteObject"), bucket + "/${SourcePrefix}*" + DEFAULT_RESULT_SUFFIX),
        *(Statement(f"fcocr's own objects under {p} (task records, receipts, staged inputs): written, read, deleted.",
                    ("oss:GetObject", "oss:PutObject", "oss:DeleteObject"), f"{bucket}/{p}*")
          for p in RESERVED_PREFIXES),
        Statement("Listing: task records and checkpoints (scan_reconcile, a resumed document), claims (a contended "
                  "claim, the timer's sweep) and the source prefix (backfill), nothing else.",
                  ("oss:ListObjects",), bucket,
                  {"StringLike": {"oss:Prefix": ["${SourcePrefix}*", f"{TASK_PREFIX}*", f"{CLAIM_PREFIX}*"]}}),
        Statement("Vision Intelligence OCR (aliyun.*): the actions fcocr calls, no other viapi product.",
                  _viapi_actions(), "*"),
        Statement("Content Security (green.*): submit image scans and fetch their results.",
                  ("yundun-greenweb:ImageAsyncScan", "yundun-greenweb:ImageAsyncScanResults"), "*"),
        Statement("LogConfig: FC writes the functions' logs with the role.",
                  ("log:PostLogStoreLogs",), "acs:log:*:*:project/${LogProject}/logstore/${LogStore}"),
        Statement("The OnFailure destination: FC sends the failed event to the queue with the role.",
                  ("mns:SendMessage",), "acs:mns:*:*:/queues/${FailureQueueName}/messages"),
    )
