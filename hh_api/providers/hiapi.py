"""HiAPI: HappyHorse 1.1 through the unified ``POST /v1/tasks`` at ``https://api.hiapi.ai``.

Documented (seed 004): model ``happyhorse-1.1/reference-to-video`` with
``input.prompt``, ``input.reference_image`` (1-9; JPEG/PNG/WEBP, shortest side
>= 400 px, <= 20 MB), ``input.resolution`` (default 1080p), ``input.aspect_ratio``
(16:9, 9:16, 3:4, 4:3, 4:5, 5:4, 1:1, 9:21, 21:9), ``input.duration`` (3-15), and a
top-level ``callback`` of ``{"url", "when": "final"}``. No seed and no negative
prompt are documented, so both are refused.

From HiAPI's SDK (the page shows no answers): submit answers
``{"code":200,"message":"success","data":{"taskId"}}``; ``GET /v1/tasks/{id}`` answers
the same envelope with ``data.status`` in queued, handling, archiving, success, fail,
``data.output`` a list of ``{url, type, expireAt}`` and ``data.error`` a
``{code, message}``. Submits carry an ``Idempotency-Key``, the same across retries;
errors carry an ``error_code``, and a 409 ``IDEMPOTENCY_KEY_PROCESSING`` is waited out
and resent (``hh_api.transport``), as the SDK does. Task ids are percent-encoded in the
status path, as the SDK encodes them. The key goes in ``Authorization: Bearer``, as in
HiAPI's SDK.

Choices: text-to-video is named (``happyhorse-1.1/text-to-video``) and inferred with
the reference input minus ``reference_image``; image-to-video is not offered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from hh_api.capabilities import ModeCapabilities, PictureLimits
from hh_api.errors import ProtocolError
from hh_api.models import Mode, Status, TaskState, VideoRequest
from hh_api.providers.base import Provider, optional_fields, parse_time, path_segment

RATIOS = ("16:9", "9:16", "3:4", "4:3", "4:5", "5:4", "1:1", "9:21", "21:9")
REFERENCE_LIMITS = PictureLimits(
    formats=("image/jpeg", "image/png", "image/webp"),
    max_bytes=20 * 1024 * 1024,
    min_side=400,
)


class HiAPI(Provider):
    name = "hiapi"
    title = "HiAPI"
    default_base_url = "https://api.hiapi.ai"
    idempotent_submit = True
    status_words: ClassVar[Mapping[str, Status]] = {
        "queued": Status.QUEUED,
        "handling": Status.RUNNING,
        "archiving": Status.RUNNING,
        "success": Status.SUCCEEDED,
        "fail": Status.FAILED,
    }

    def default_offers(self) -> dict[Mode, ModeCapabilities]:
        common = dict(
            provider=self.name,
            path="/v1/tasks",
            resolutions=("720p", "1080p"),
            default_resolution="1080p",
            aspect_ratios=RATIOS,
            default_aspect_ratio="16:9",
            seed_range=None,
        )
        return {
            Mode.TEXT: ModeCapabilities(
                mode=Mode.TEXT,
                model="happyhorse-1.1/text-to-video",
                documented=False,
                min_images=0,
                max_images=0,
                **common,
            ),
            Mode.REFERENCE: ModeCapabilities(
                mode=Mode.REFERENCE,
                model="happyhorse-1.1/reference-to-video",
                documented=True,
                min_images=1,
                max_images=9,
                pictures=REFERENCE_LIMITS,
                **common,
            ),
        }

    def submit_body(
        self, offer: ModeCapabilities, request: VideoRequest, callback_url: str | None
    ) -> dict[str, Any]:
        task_input: dict[str, Any] = {"prompt": request.prompt}
        if offer.mode is Mode.REFERENCE:
            task_input["reference_image"] = list(request.images)
        task_input |= optional_fields(
            request, resolution="resolution", aspect_ratio="aspect_ratio", duration="duration"
        )
        body: dict[str, Any] = {"model": offer.model, "input": task_input}
        if callback_url:
            body["callback"] = {"url": callback_url, "when": "final"}
        return body

    def task_id_from_submission(self, data: Mapping[str, Any]) -> str:
        return str(self.require(data, "taskId", "a task id"))

    def status_path(self, task_id: str) -> str:
        return f"/v1/tasks/{path_segment(task_id)}"

    def read_status(self, task_id: str, data: Mapping[str, Any], now: datetime) -> TaskState:
        output = data.get("output") or []
        if not isinstance(output, list):
            raise ProtocolError("HiAPI sent an output that is not a list", provider=self.name)
        video = next(
            (item for item in output if isinstance(item, Mapping) and item.get("url")), None
        )
        error = data.get("error")
        if isinstance(error, Mapping):
            code, message = error.get("code"), error.get("message")
            error = f"{message} ({code})" if code and message else message or code
        return self.state(
            str(data.get("taskId") or task_id),
            self.require(data, "status", "a status"),
            video_url=video.get("url") if video else None,
            error=None if error is None else str(error),
            expires_at=parse_time(video.get("expireAt")) if video else None,
            raw=data,
            now=now,
        )
