"""PixelDojo: HappyHorse 1.0 reference-to-video behind ``https://pixeldojo.ai``.

Documented (seed 003): ``POST /api/v1/models/happyhorse-1.0-r2v/run`` with
``prompt``, ``reference_urls``, ``duration``, ``resolution``, the aspect ratio
(16:9, 9:16, 1:1, 4:3, 3:4), ``negative_prompt`` and ``seed``, bearer key; answered
``202`` with ``{"jobId","status":"pending","statusUrl","creditCost",...}`` (no
envelope). Status from ``GET /api/v1/jobs/{jobId}``: ``output.video`` on success, an
``error`` field on failure; output links expire after about an hour (``expiresAt``
when given).

Choices where the page is silent or contradicts itself:
- The parameter table says ``aspectRatio``; the curl example sends ``aspect_ratio``.
  The example is the same boilerplate for every video model (it even leaves out the
  required ``reference_urls``), so the table is taken as the contract and
  ``aspectRatio`` is sent. Set ``PIXELDOJO_ASPECT_RATIO_FIELD=aspect_ratio`` to change it.
- Only reference-to-video is shown; image and text modes are not offered.
- The seed range is not given; HappyHorse's 0-2147483647 is assumed.
- Status words other than ``pending`` and ``completed`` are not shown: ``processing``
  and ``running`` mean running, ``failed``/``error``/``cancelled`` mean failed.
- An ``error`` given as an object is read from its ``message``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from hh_api.capabilities import HAPPYHORSE_1_0_RATIOS, ModeCapabilities
from hh_api.config import ProviderConfig
from hh_api.models import Mode, Status, TaskState, VideoRequest
from hh_api.providers.base import Provider, optional_fields, parse_time, path_segment


class PixelDojo(Provider):
    name = "pixeldojo"
    title = "PixelDojo"
    default_base_url = "https://pixeldojo.ai"
    enveloped = False
    output_lifetime = timedelta(hours=1)
    status_words: ClassVar[Mapping[str, Status]] = {
        "pending": Status.QUEUED,
        "queued": Status.QUEUED,
        "processing": Status.RUNNING,
        "running": Status.RUNNING,
        "completed": Status.SUCCEEDED,
        "succeeded": Status.SUCCEEDED,
        "failed": Status.FAILED,
        "error": Status.FAILED,
        "cancelled": Status.FAILED,
        "canceled": Status.FAILED,
        "expired": Status.FAILED,
    }

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.aspect_ratio_field = config.field_names.get("aspect_ratio", "aspectRatio")

    def default_offers(self) -> dict[Mode, ModeCapabilities]:
        return {
            Mode.REFERENCE: ModeCapabilities(
                provider=self.name,
                mode=Mode.REFERENCE,
                model="happyhorse-1.0-r2v",
                path="/api/v1/models/happyhorse-1.0-r2v/run",
                documented=True,
                min_images=1,
                max_images=9,
                resolutions=("720p", "1080p"),
                default_resolution="720p",
                aspect_ratios=HAPPYHORSE_1_0_RATIOS,
                default_aspect_ratio="16:9",
                negative_prompt=True,
            )
        }

    def path_for(self, mode: Mode, model: str, default_path: str) -> str:
        return f"/api/v1/models/{model}/run"

    def submit_body(
        self, offer: ModeCapabilities, request: VideoRequest, callback_url: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": request.prompt, "reference_urls": list(request.images)}
        body |= optional_fields(
            request, duration="duration", resolution="resolution",
            aspect_ratio=self.aspect_ratio_field, negative_prompt="negative_prompt", seed="seed",
        )
        return body

    def task_id_from_submission(self, data: Mapping[str, Any]) -> str:
        return str(self.require(data, "jobId", "a job id"))

    def status_path(self, task_id: str) -> str:
        return f"/api/v1/jobs/{path_segment(task_id)}"

    def read_status(self, task_id: str, data: Mapping[str, Any], now: datetime) -> TaskState:
        output = data.get("output") if isinstance(data.get("output"), Mapping) else {}
        error = data.get("error")
        if isinstance(error, Mapping):
            error = error.get("message") or error.get("code")
        return self.state(
            str(data.get("jobId") or task_id),
            self.require(data, "status", "a status"),
            video_url=output.get("video"),
            error=None if error is None else str(error),
            expires_at=parse_time(data.get("expiresAt")),
            raw=data,
            now=now,
        )
