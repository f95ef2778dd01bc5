"""WaveSpeedAI: HappyHorse 1.1 behind ``https://api.wavespeed.ai``.

Documented (seed 002): reference-to-video at
``/api/v3/alibaba/happyhorse-1.1/reference-to-video`` with ``images`` (1-9),
``prompt``, ``resolution``, ``aspect_ratio`` (16:9, 9:16, 1:1, 4:3, 3:4),
``duration`` and ``seed`` (-1 to 2147483647; -1 means random), bearer key, answered
``{"code","message","data":{"id","status","outputs",...}}``; the result from
``GET /api/v3/predictions/{id}/result``. Statuses: created, processing, completed,
failed; its SDK also ends on cancelled, timeout and deleted, which count as failed.

Choices where the page is silent:
- Image- and text-to-video follow the same path pattern (``.../image-to-video``,
  ``.../text-to-video``). Image-to-video takes one ``image`` string and no aspect
  ratio, as WaveSpeed's HappyHorse 1.0 image-to-video page has it, with that page's
  picture limits and 2500-character prompt. Both are marked inferred.
- The model is named by the path, so the body carries no ``model`` field.
- The page gives no output lifetime, so none is claimed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from hh_api.capabilities import SEED_MAX, ModeCapabilities
from hh_api.errors import ProtocolError
from hh_api.models import Mode, Status, TaskState, VideoRequest
from hh_api.providers.base import Provider, optional_fields, path_segment
from hh_api.providers.joypix import FIRST_FRAME_LIMITS

RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")


class WaveSpeed(Provider):
    name = "wavespeed"
    title = "WaveSpeedAI"
    default_base_url = "https://api.wavespeed.ai"
    status_words: ClassVar[Mapping[str, Status]] = {
        "created": Status.QUEUED,
        "processing": Status.RUNNING,
        "completed": Status.SUCCEEDED,
        "failed": Status.FAILED,
        "cancelled": Status.FAILED,
        "timeout": Status.FAILED,
        "deleted": Status.FAILED,
    }

    def default_offers(self) -> dict[Mode, ModeCapabilities]:
        common = dict(
            provider=self.name,
            resolutions=("720p", "1080p"),
            default_resolution="720p",
            seed_range=(-1, SEED_MAX),
        )
        model = "alibaba/happyhorse-1.1"
        return {
            Mode.TEXT: ModeCapabilities(
                mode=Mode.TEXT,
                model=f"{model}/text-to-video",
                path=f"/api/v3/{model}/text-to-video",
                documented=False,
                min_images=0,
                max_images=0,
                aspect_ratios=RATIOS,
                default_aspect_ratio="16:9",
                **common,
            ),
            Mode.IMAGE: ModeCapabilities(
                mode=Mode.IMAGE,
                model=f"{model}/image-to-video",
                path=f"/api/v3/{model}/image-to-video",
                documented=False,
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
                model=f"{model}/reference-to-video",
                path=f"/api/v3/{model}/reference-to-video",
                documented=True,
                min_images=1,
                max_images=9,
                aspect_ratios=RATIOS,
                default_aspect_ratio="16:9",
                **common,
            ),
        }

    def path_for(self, mode: Mode, model: str, default_path: str) -> str:
        return f"/api/v3/{model}"

    def submit_body(
        self, offer: ModeCapabilities, request: VideoRequest, callback_url: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": request.prompt}
        if offer.mode is Mode.IMAGE:
            body["image"] = request.images[0]
        elif offer.mode is Mode.REFERENCE:
            body["images"] = list(request.images)
        body |= optional_fields(
            request, resolution="resolution", aspect_ratio="aspect_ratio",
            duration="duration", seed="seed",
        )
        return body

    def task_id_from_submission(self, data: Mapping[str, Any]) -> str:
        return str(self.require(data, "id", "a task id"))

    def status_path(self, task_id: str) -> str:
        return f"/api/v3/predictions/{path_segment(task_id)}/result"

    def read_status(self, task_id: str, data: Mapping[str, Any], now: datetime) -> TaskState:
        outputs = data.get("outputs") or []
        if not isinstance(outputs, list):
            raise ProtocolError("WaveSpeedAI sent outputs that are not a list", provider=self.name)
        return self.state(
            str(data.get("id") or task_id),
            self.require(data, "status", "a status"),
            video_url=outputs[0] if outputs else None,
            error=data.get("error"),
            expires_at=None,
            raw=data,
            now=now,
        )
