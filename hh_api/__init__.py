"""hh_api: one async client for Alibaba's HappyHorse video models on four providers
(and a free demo provider that runs inside the process, `DemoBackend`).

    async with HappyHorse() as hh:                      # keys from the environment
        request = VideoRequest("a horse on a beach", mode=Mode.TEXT, duration=5)
        print(hh.price("joypix", request), "credits")
        task = await hh.submit("joypix", request)
        done = await hh.wait("joypix", task.task_id, timeout=900)
        await hh.download(done.video_url, "horse.mp4")
"""

from __future__ import annotations

from hh_api.callbacks import sign_hiapi, verify_hiapi_callback
from hh_api.capabilities import SEED_MAX, ModeCapabilities, PictureLimits
from hh_api.client import HappyHorse, PollPolicy, PollSchedule, Timeouts
from hh_api.config import PROVIDER_NAMES, ProviderConfig, Secret, load_providers, redact_url
from hh_api.demo import DemoBackend, DemoSettings, demo_video
from hh_api.errors import (
    AuthenticationError,
    CallbackVerificationError,
    ConfigurationError,
    DownloadError,
    HappyHorseError,
    InvalidRequestError,
    NotAVideoError,
    ProtocolError,
    ProviderUnavailableError,
    RateLimitError,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskNotFoundError,
    VideoTooLargeError,
    WaitTimeoutError,
)
from hh_api.models import Mode, Status, Submission, TaskState, VideoRequest
from hh_api.pricing import PriceTable
from hh_api.providers.demo import DEMO_PROVIDER
from hh_api.render_times import RenderTimes, RenderWindow
from hh_api.transport import CallKind, CallOutcome, ProviderCall, RetryPolicy

__all__ = [
    "DEMO_PROVIDER",
    "PROVIDER_NAMES",
    "SEED_MAX",
    "AuthenticationError",
    "CallKind",
    "CallOutcome",
    "CallbackVerificationError",
    "ConfigurationError",
    "DemoBackend",
    "DemoSettings",
    "DownloadError",
    "HappyHorse",
    "HappyHorseError",
    "InvalidRequestError",
    "Mode",
    "ModeCapabilities",
    "NotAVideoError",
    "PictureLimits",
    "PollPolicy",
    "PollSchedule",
    "PriceTable",
    "ProtocolError",
    "ProviderCall",
    "ProviderConfig",
    "ProviderUnavailableError",
    "RateLimitError",
    "RenderTimes",
    "RenderWindow",
    "RetryPolicy",
    "Secret",
    "Status",
    "Submission",
    "SubmitOutcomeUnknownError",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskState",
    "Timeouts",
    "VideoRequest",
    "VideoTooLargeError",
    "WaitTimeoutError",
    "demo_video",
    "load_providers",
    "redact_url",
    "sign_hiapi",
    "verify_hiapi_callback",
]
