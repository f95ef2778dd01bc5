"""The demo provider: Paddock's own stand-in for a HappyHorse seller, free to use.

It speaks the small JSON wire that `hh_api.demo.DemoBackend` serves (that module's
docstring describes it): one submit path per mode, ``GET /v1/videos/{task_id}`` for the
status, plain (not enveloped) answers, ``Authorization: Bearer`` with the backend's key.

Its offer is JoyPix's, limit for limit (modes, pictures, prompt length, resolutions,
aspect ratios, durations, seeds), so every check a member can hit on a real provider can
be tried on the demo. It has no price of its own: `hh_api.pricing` gives it the highest
known rate, which is JoyPix's 14 credits/s at 720p and 24 at 1080p.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from hh_api.capabilities import ModeCapabilities
from hh_api.config import ProviderConfig
from hh_api.errors import ConfigurationError
from hh_api.models import Mode, Status, TaskState, VideoRequest
from hh_api.providers.base import Provider, optional_fields, parse_time, path_segment
from hh_api.providers.joypix import JoyPix

DEMO_PROVIDER = "demo"
# How long a finished demo video's link works; the backend forgets the task after that.
LINK_LIFETIME = timedelta(hours=1)
# A prompt containing this fails on purpose, so owners can watch the refund path.
FAIL_MARKER = "#fail"

SUBMIT_PATHS = {
    Mode.TEXT: "/v1/text-to-video",
    Mode.IMAGE: "/v1/image-to-video",
    Mode.REFERENCE: "/v1/reference-to-video",
}
MODELS = {
    Mode.TEXT: "paddock-demo-t2v",
    Mode.IMAGE: "paddock-demo-i2v",
    Mode.REFERENCE: "paddock-demo-r2v",
}


class Demo(Provider):
    name = DEMO_PROVIDER
    title = "Demo (free)"
    default_base_url = "http://127.0.0.1"  # always replaced by the running backend's
    enveloped = False
    output_lifetime = LINK_LIFETIME
    status_words: ClassVar[Mapping[str, Status]] = {status.value: status for status in Status}

    def default_offers(self) -> dict[Mode, ModeCapabilities]:
        joypix = JoyPix(ProviderConfig(JoyPix.name)).default_offers()
        return {
            mode: replace(
                offer, provider=self.name, model=MODELS[mode], path=SUBMIT_PATHS[mode],
                documented=True,
            )
            for mode, offer in joypix.items()
        }

    def headers(self) -> dict[str, str]:
        if not self.config.api_key:
            raise ConfigurationError(
                "the demo provider has no key until its backend runs: start a "
                "hh_api.demo.DemoBackend and use its provider_config()",
                provider=self.name,
            )
        return super().headers()

    def submit_body(
        self, offer: ModeCapabilities, request: VideoRequest, callback_url: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": offer.model, "prompt": request.prompt}
        if offer.max_images:
            body["images"] = list(request.images)
        return body | optional_fields(
            request, resolution="resolution", aspect_ratio="aspect_ratio",
            duration="duration", seed="seed",
        )

    def task_id_from_submission(self, data: Mapping[str, Any]) -> str:
        return str(self.require(data, "task_id", "a task id"))

    def status_path(self, task_id: str) -> str:
        return f"/v1/videos/{path_segment(task_id)}"

    def read_status(self, task_id: str, data: Mapping[str, Any], now: datetime) -> TaskState:
        return self.state(
            str(data.get("task_id") or task_id),
            self.require(data, "status", "a status"),
            video_url=data.get("video_url"),
            error=data.get("error"),
            expires_at=parse_time(data.get("expires_at")),
            raw=data,
            now=now,
        )
