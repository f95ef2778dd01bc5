"""HiAPI callback signatures: genuine, forged, stale, malformed."""

from __future__ import annotations

import json

import pytest

from hh_api import CallbackVerificationError, sign_hiapi, verify_hiapi_callback

SECRET = "whsec-test"
NOW = 1_800_000_000.0
BODY = json.dumps({"taskId": "tsk_000042", "status": "success"}).encode()


def headers(body: bytes = BODY, timestamp: float = NOW, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(timestamp))
    return {"X-HiAPI-Timestamp": stamp, "X-HiAPI-Signature": sign_hiapi(secret, stamp, body)}


def test_a_genuine_callback_gives_its_task_id() -> None:
    assert verify_hiapi_callback(SECRET, BODY, headers(), now=NOW) == "tsk_000042"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"s", b"123." + b"{}", hashlib.sha256).hexdigest()
    assert sign_hiapi("s", "123", b"{}") == expected


def test_headers_are_read_in_any_case_and_the_task_id_under_data() -> None:
    body = json.dumps({"code": 200, "data": {"taskId": "tsk_7", "status": "fail"}}).encode()
    lowered = {k.lower(): v for k, v in headers(body).items()}
    assert verify_hiapi_callback(SECRET, body, lowered, now=NOW + 299) == "tsk_7"


@pytest.mark.parametrize(
    ("body", "sent", "now", "reason"),
    [
        (BODY, headers(secret="another-secret"), NOW, "signature is wrong"),
        (BODY.replace(b"42", b"43"), headers(), NOW, "signature is wrong"),  # body altered
        (BODY, headers(timestamp=NOW - 301), NOW, "older than 300 s"),
        (BODY, headers(timestamp=NOW + 301), NOW, "from the future"),
        (BODY, {}, NOW, "not signed"),
        (BODY, {"X-HiAPI-Timestamp": str(int(NOW))}, NOW, "not signed"),
        (BODY, {"X-HiAPI-Timestamp": "yesterday", "X-HiAPI-Signature": "ab"}, NOW, "not a number"),
        (b"not json", headers(b"not json"), NOW, "not JSON"),
        (b'{"status": "success"}', headers(b'{"status": "success"}'), NOW, "names no task"),
    ],
    ids=["wrong-secret", "altered-body", "stale", "future", "unsigned", "no-signature",
         "bad-timestamp", "not-json", "no-task"],
)
def test_a_bad_callback_is_refused_with_the_reason(body, sent, now, reason) -> None:
    with pytest.raises(CallbackVerificationError, match=reason):
        verify_hiapi_callback(SECRET, body, sent, now=now)


def test_without_a_configured_secret_nothing_is_trusted() -> None:
    with pytest.raises(CallbackVerificationError, match="no callback secret"):
        verify_hiapi_callback("", BODY, headers(), now=NOW)
