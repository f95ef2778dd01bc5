"""Checking HiAPI's terminal-state callbacks.

HiAPI signs each callback: ``X-HiAPI-Timestamp`` (Unix seconds) and
``X-HiAPI-Signature`` = hex(HMAC-SHA256(secret, timestamp + "." + raw body)). A
callback is trusted only for its task id: the caller then asks HiAPI for the
task's status instead of believing the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from hh_api.errors import CallbackVerificationError

TIMESTAMP_HEADER = "X-HiAPI-Timestamp"
SIGNATURE_HEADER = "X-HiAPI-Signature"
REPLAY_WINDOW = 300.0


def sign_hiapi(secret: str, timestamp: str, body: bytes) -> str:
    """The signature HiAPI sends for `body` at `timestamp`."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_hiapi_callback(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    window: float = REPLAY_WINDOW,
) -> str:
    """Return the task id of a genuine, fresh callback; raise CallbackVerificationError.

    `headers` may be any case-insensitive or plain mapping of the request's headers.
    """
    if not secret:
        raise CallbackVerificationError("no callback secret is configured", provider="hiapi")
    lowered = {key.lower(): value for key, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    signature = lowered.get(SIGNATURE_HEADER.lower(), "").strip().lower()
    if not timestamp or not signature:
        raise CallbackVerificationError("the callback is not signed", provider="hiapi")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise CallbackVerificationError(
            "the callback timestamp is not a number", provider="hiapi"
        ) from None
    expected = sign_hiapi(secret, timestamp, body)
    # compare_digest takes ASCII text only; anything else cannot be a hex digest.
    if not signature.isascii() or not hmac.compare_digest(expected, signature):
        raise CallbackVerificationError("the callback signature is wrong", provider="hiapi")
    if abs((time.time() if now is None else now) - sent_at) > window:
        raise CallbackVerificationError(
            f"the callback is older than {window:g} s (or from the future)", provider="hiapi"
        )
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CallbackVerificationError("the callback body is not JSON", provider="hiapi") from None
    task_id = _task_id(payload)
    if not task_id:
        raise CallbackVerificationError("the callback names no task", provider="hiapi")
    return task_id


def _task_id(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return None
    for holder in (payload.get("data"), payload):
        if isinstance(holder, dict):
            for key in ("taskId", "task_id", "id"):
                if isinstance(holder.get(key), str | int) and str(holder[key]):
                    return str(holder[key])
    return None
