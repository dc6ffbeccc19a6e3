"""Asynchronous invocations of an FC 3.0 function (API 2023-03-30) for ``fcocr backfill --remote``.

The official SDK, ``alibabacloud-fc20230330`` (InvokeFunction with ``x-fc-invocation-type: Async``, signed
ACS3-HMAC-SHA256), with the same interface as backfill's FC 2.0 invoker: ``name`` and ``invoke(payload)`` -> FC's
request id; refusals become TransientError (throttling, 5xx: backfill retries them) or PermanentError.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, TransientError
from ..retry import VendorFault, classify
from ..runtime import Credentials


class Fc3Invoker:
    def __init__(self, endpoint: str, credentials: Credentials | None, function: str, qualifier: str | None = None,
                 timeout: float = 30.0) -> None:
        if not credentials:
            raise ConfigError("--remote needs credentials allowed to invoke the function: set "
                              "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
                              "(and ALIBABA_CLOUD_SECURITY_TOKEN for STS)", code="NoCredentials")
        from alibabacloud_fc20230330.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        url = urlsplit(endpoint)
        self.endpoint, self.function, self.qualifier = endpoint, function, qualifier
        self.timeout_ms = max(1000, int(timeout * 1000))
        self.client = Client(Config(access_key_id=credentials.access_key_id,
                                    access_key_secret=credentials.access_key_secret,
                                    security_token=credentials.security_token, endpoint=url.netloc,
                                    protocol=url.scheme or "https"))

    @property
    def name(self) -> str:
        return self.function + (f" ({self.qualifier})" if self.qualifier else "")

    def invoke(self, payload: bytes) -> str:
        """Queue one asynchronous invocation; FC's request id."""
        from alibabacloud_fc20230330 import models
        from alibabacloud_tea_openapi import exceptions as tea_errors
        from darabonba.runtime import RuntimeOptions

        request = models.InvokeFunctionRequest(body=io.BytesIO(payload), qualifier=self.qualifier)
        headers = models.InvokeFunctionHeaders(x_fc_invocation_type="Async")
        runtime = RuntimeOptions(autoretry=False, connect_timeout=min(self.timeout_ms, 5000),
                                 read_timeout=self.timeout_ms)
        try:
            answer = self.client.invoke_function_with_options(self.function, request, headers, runtime)
        except tea_errors.AlibabaCloudException as exc:
            data: Any = getattr(exc, "data", None) or {}
            message = str((data.get("Message") if isinstance(data, dict) else None) or getattr(exc, "message", "")
                          or exc)[:300]
            request_id = (data.get("RequestId") if isinstance(data, dict) else None) or getattr(exc, "request_id", None)
            fault = VendorFault("fc", getattr(exc, "status_code", None), str(getattr(exc, "code", "") or ""),
                                message, request_id)
            raise classify(fault, code_prefix="FC") from None
        except ValueError:  # an error status whose body is not JSON: a gateway's or proxy's page
            raise TransientError("FC answered an error that is not JSON (a gateway or proxy page)",
                                 code="FC.MalformedResponse") from None
        except Exception as exc:  # connection refused/reset, timeouts: darabonba's and requests' own classes
            raise TransientError(f"FC unreachable: {type(exc).__name__}", code="FC.Unreachable") from None
        headers_out = {k.lower(): v for k, v in (answer.headers or {}).items()}
        return str(headers_out.get("x-fc-request-id") or "")
