"""The one retry policy: classification of vendor faults, backoff, and the function's deadline."""

from __future__ import annotations

import pytest

from fcocr.errors import PermanentError, TransientError
from fcocr.retry import RetryPolicy, VendorFault, classify
from fcocr.runtime import Runtime


@pytest.mark.parametrize("family,status,code,transient", [
    ("aliyun", 400, "Throttling.User", True),
    ("aliyun", 503, "ServiceUnavailable", True),
    ("aliyun", 400, "InvalidImage.Download", True),
    ("aliyun", 400, "InvalidImage.Region", False),
    ("aliyun", 400, "SignatureDoesNotMatch", False),
    ("aliyun", 403, "InvalidApi.NotPurchase", False),
    ("market", 450, "450", True),
    ("market", 403, "403", False),
    ("market", 413, "413", False),
    ("market", 462, "462", False),
    ("market", 502, "502", True),
    ("tencent", 200, "RequestLimitExceeded", True),
    ("tencent", 200, "FailedOperation.ImageBlur", False),
    ("tencent", 200, "AuthFailure.SignatureFailure", False),
    ("tencent", None, "ServerNetworkError", True),
])
def test_every_fault_is_classified_and_keeps_the_vendor_facts(family, status, code, transient):
    error = classify(VendorFault(family, status, code, "the vendor's words", "REQ-1"))
    assert isinstance(error, TransientError if transient else PermanentError)
    assert error.details == {"vendorCode": code, "vendorMessage": "the vendor's words", "vendorRequestId": "REQ-1"}
    assert error.code.startswith(family.capitalize() + ".")


def test_transient_faults_are_retried_with_growing_jittered_pauses_then_raised():
    policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=3.0)
    pauses, calls = [], []

    def flaky(timeout):
        calls.append(timeout)
        raise TransientError("busy", code="Aliyun.Throttling.User")

    with pytest.raises(TransientError):
        policy.call(flaky, None, sleep=pauses.append, rng=lambda: 1.0)
    assert len(calls) == 4 and calls[0] == policy.call_timeout
    assert pauses == [1.0, 2.0, 3.0]  # full steps at rng=1, capped at max_delay
    low = []
    with pytest.raises(TransientError):
        policy.call(flaky, None, sleep=low.append, rng=lambda: 0.0)
    assert low == [0.5, 1.0, 1.5]  # half of each step is jitter


def test_a_permanent_error_is_never_retried():
    calls = []

    def refuse(timeout):
        calls.append(1)
        raise PermanentError("bad image", code="Aliyun.InvalidImage.Content")

    with pytest.raises(PermanentError):
        RetryPolicy().call(refuse, None, sleep=lambda s: pytest.fail("slept"))
    assert calls == [1]


def test_success_after_a_retry_returns_the_answer():
    answers = iter([TransientError("x"), "ok"])

    def once(timeout):
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    assert RetryPolicy().call(once, None, sleep=lambda s: None) == "ok"


def test_the_function_deadline_bounds_timeouts_and_stops_retries():
    runtime = Runtime("r", deadline=12.0, clock=lambda: 0.0)  # 12 s left, on a clock that stands still
    policy = RetryPolicy(call_timeout=30.0, reserve=5.0, base_delay=6.0, max_delay=8.0)
    timeouts = []

    def slow(timeout):
        timeouts.append(timeout)
        raise TransientError("timeout")

    with pytest.raises(TransientError):
        policy.call(slow, runtime, sleep=lambda s: None, rng=lambda: 1.0)
    # First call gets the time left minus the reserve; no retry fits in what remains after the pause.
    assert timeouts == [7.0]
    nearly_over = Runtime("r", deadline=6.0, clock=lambda: 0.0)
    with pytest.raises(TransientError) as info:
        policy.call(slow, nearly_over)
    assert info.value.code == "DeadlineNear"
