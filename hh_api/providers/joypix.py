"""JoyPix: HappyHorse 1.0 behind ``https://openapi.joypix.ai``.

Documented (seeds 000 and 001): reference-to-video (``happyhorse-1.0-r2v``) and
image-to-video (``happyhorse-1.0-i2v``), submitted to ``/v1/alibaba/<kind>-to-video``
with ``Authorization: Bearer``, answered ``{"code":200,"message","data":{"task_id"}}``;
status from ``GET /v1/tasks/{task_id}`` with ``data.status``, ``data.error`` (a
string) and ``data.video_url``. Output links are kept 24 hours.

Choices where the pages are silent:
- Text-to-video is named but not shown: inferred as model ``happyhorse-1.0-t2v`` at
  ``/v1/alibaba/text-to-video`` with the reference fields minus ``images``.
- Only ``completed`` is shown as a status word. ``failed``, ``pending`` and
  ``processing`` (and near spellings) are mapped too; any other word counts as running.
- The reference page lists no aspect-ratio set; the HappyHorse 1.0 set other sellers
  list (16:9, 9:16, 1:1, 4:3, 3:4) is assumed.
- The 2500-character prompt limit and the picture limits are the image-to-video page's;
  the reference page gives neither, so none are applied there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, ClassVar

from hh_api.capabilities import HAPPYHORSE_1_0_RATIOS, ModeCapabilities, PictureLimits
from hh_api.models import Mode, Status, TaskState, VideoRequest
from hh_api.providers.base import Provider, optional_fields, path_segment

FIRST_FRAME_LIMITS = PictureLimits(
    formats=("image/jpeg", "image/png", "image/bmp", "image/webp"),
    max_bytes=10 * 1024 * 1024,
    min_side=300,
    min_aspect=Fraction(2, 5),
    max_aspect=Fraction(5, 2),
)


class JoyPix(Provider):
    name = "joypix"
    title = "JoyPix"
    default_base_url = "https://openapi.joypix.ai"
    output_lifetime = timedelta(hours=24)
    status_words: ClassVar[Mapping[str, Status]] = {
        "completed": Status.SUCCEEDED,
        "succeeded": Status.SUCCEEDED,
        "success": Status.SUCCEEDED,
        "failed": Status.FAILED,
        "fail": Status.FAILED,
        "error": Status.FAILED,
        "cancelled": Status.FAILED,
        "canceled": Status.FAILED,
        "pending": Status.QUEUED,
        "queued": Status.QUEUED,
        "created": Status.QUEUED,
        "waiting": Status.QUEUED,
        "processing": Status.RUNNING,
        "running": Status.RUNNING,
        "in_progress": Status.RUNNING,
    }

    def default_offers(self) -> dict[Mode, ModeCapabilities]:
        common = dict(
            provider=self.name,
            resolutions=("720p", "1080p"),
            default_resolution="720p",
        )
        return {
            Mode.TEXT: ModeCapabilities(
                mode=Mode.TEXT,
                model="happyhorse-1.0-t2v",
                path="/v1/alibaba/text-to-video",
                documented=False,
                min_images=0,
                max_images=0,
                aspect_ratios=HAPPYHORSE_1_0_RATIOS,
                default_aspect_ratio="16:9",
                max_prompt_chars=2500,
                **common,
            ),
            Mode.IMAGE: ModeCapabilities(
                mode=Mode.IMAGE,
                model="happyhorse-1.0-i2v",
                path="/v1/alibaba/image-to-video",
                documented=True,
                min_images=1,
                max_images=1,
                aspect_ratios=None,
                default_aspect_ratio=None,
                max_prompt_chars=2500,
                pictures=FIRST_FRAME_LIMITS,
                **common,
            ),
            Mode.REFERENCE: ModeCapabilities(
                mode=Mode.REFERENCE,
                model="happyhorse-1.0-r2v",
                path="/v1/alibaba/reference-to-video",
                documented=True,
                min_images=1,
                max_images=9,
                aspect_ratios=HAPPYHORSE_1_0_RATIOS,
                default_aspect_ratio="16:9",
                **common,
            ),
        }

    def submit_body(
        self, offer: ModeCapabilities, request: VideoRequest, callback_url: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": offer.model, "prompt": request.prompt}
        if offer.max_images:
            body["images"] = list(request.images)
        body |= optional_fields(
            request, resolution="resolution", aspect_ratio="aspect_ratio",
            duration="duration", seed="seed",
        )
        return body

    def task_id_from_submission(self, data: Mapping[str, Any]) -> str:
        return str(self.require(data, "task_id", "a task id"))

    def status_path(self, task_id: str) -> str:
        return f"/v1/tasks/{path_segment(task_id)}"

    def read_status(self, task_id: str, data: Mapping[str, Any], now: datetime) -> TaskState:
        return self.state(
            str(data.get("task_id") or task_id),
            self.require(data, "status", "a status"),
            video_url=data.get("video_url"),
            error=data.get("error"),
            expires_at=None,
            raw=data,
            now=now,
        )
