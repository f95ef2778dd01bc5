"""``python -m hh_api``: try a key, run one generation, check or resume a task."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from hh_api.client import HappyHorse, PollPolicy
from hh_api.config import PROVIDER_NAMES, ProviderConfig
from hh_api.demo import DemoBackend, DemoSettings
from hh_api.errors import (
    HappyHorseError,
    InvalidRequestError,
    TaskFailedError,
    WaitTimeoutError,
)
from hh_api.models import Mode, Status, TaskState, VideoRequest
from hh_api.providers.demo import DEMO_PROVIDER

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_PROVIDER, EXIT_TIMEOUT = 0, 1, 2, 3, 4

EPILOG = """\
exit status: 0 succeeded; 1 the task failed; 2 invalid input (nothing was sent);
3 provider, key or network error; 4 not finished before --timeout (resume with `wait`).

keys and endpoints come from the environment: JOYPIX_API_KEY, WAVESPEED_API_KEY,
PIXELDOJO_API_KEY, HIAPI_API_KEY, and NAME_BASE_URL to point a provider elsewhere.
--provider demo needs no key: a free sample clip from a demo service inside this process
(DEMO_RENDER_SECONDS, DEMO_FAIL_RATE; a prompt with #fail fails), so its tasks end with it.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hh_api",
        description="Generate HappyHorse videos on JoyPix, WaveSpeedAI, PixelDojo or HiAPI.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--provider", required=True, choices=(*PROVIDER_NAMES, DEMO_PROVIDER),
                         help="which provider to use: %(choices)s (demo: free samples, "
                              "no key)")
        sub.add_argument("--json", action="store_true",
                         help="end stdout with one JSON object: provider, task_id, status "
                              "(succeeded, failed, or running when --timeout came first), "
                              "video_url, error")

    def waiting(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--poll-interval", type=_positive, default=2.0, metavar="S",
                         help="seconds before the first status check; the interval then "
                              "grows 1.5x per check up to 15 s (default 2)")
        sub.add_argument("--timeout", type=_positive, default=900.0, metavar="S",
                         help="give up waiting after S seconds; the task keeps running and "
                              "`wait` resumes it (default 900)")
        sub.add_argument("--download", metavar="PATH",
                         help="save the finished video to PATH")

    generate = commands.add_parser(
        "generate", help="submit a generation and wait for the video",
        description="Submit a generation, wait for it with progress on stderr, print the "
                    "result.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(generate)
    generate.add_argument("--mode", required=True, choices=[m.value for m in Mode],
                          help="text: from the prompt alone; image: animate one picture "
                               "(--image once); reference: 1-9 pictures keep a character or "
                               "style (--image up to 9 times)")
    generate.add_argument("--prompt", required=True, help="what the video shows")
    generate.add_argument("--image", action="append", default=[], metavar="URL",
                          help="a public picture URL; repeat for several")
    generate.add_argument("--resolution", choices=("720p", "1080p"),
                          help="720p or 1080p (default: the provider's, 1080p on HiAPI, "
                               "720p elsewhere)")
    generate.add_argument("--aspect-ratio", metavar="R",
                          help="such as 16:9, 9:16, 1:1, 4:3, 3:4 (HiAPI also 4:5, 5:4, 9:21, "
                               "21:9); not for image mode, which keeps the picture's shape")
    generate.add_argument("--duration", type=int, metavar="N",
                          help="seconds of video, 3-15 (default 5)")
    generate.add_argument("--seed", type=int, metavar="N",
                          help="0-2147483647 for repeatable results (not on HiAPI)")
    generate.add_argument("--negative-prompt", metavar="TEXT",
                          help="what to keep out of the video (PixelDojo only)")
    waiting(generate)

    status = commands.add_parser("status", help="ask once about a task",
                                 description="Ask the provider once about a task.")
    common(status)
    status.add_argument("task_id", help="the provider's task id")

    wait = commands.add_parser("wait", help="wait for a task submitted earlier",
                               description="Resume waiting for a task submitted earlier.")
    common(wait)
    wait.add_argument("task_id", help="the provider's task id")
    waiting(wait)
    return parser


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {"provider": args.provider, "task_id": None, "status": "failed",
                              "video_url": None, "error": None}
    code = EXIT_OK
    started = time.monotonic()

    def progress(state: TaskState) -> None:
        elapsed = time.monotonic() - started
        print(f"{state.provider} {state.task_id}: {state.status.value} "
              f"({state.provider_status}) after {elapsed:.0f}s", file=sys.stderr, flush=True)

    try:
        async with contextlib.AsyncExitStack() as stack:
            providers = None  # every provider, from the environment
            if args.provider == DEMO_PROVIDER:
                providers = {DEMO_PROVIDER: await _demo(stack)}
            hh = await stack.enter_async_context(HappyHorse(providers, poll=_poll(args)))
            if args.command == "generate":
                request = hh.validate(args.provider, VideoRequest(
                    prompt=args.prompt, mode=Mode(args.mode), images=tuple(args.image),
                    resolution=args.resolution, aspect_ratio=args.aspect_ratio,
                    duration=args.duration, seed=args.seed,
                    negative_prompt=args.negative_prompt,
                ))
                credits = hh.price(args.provider, request)
                print(f"submitting to {args.provider}: {request.mode.value}, "
                      f"{request.resolution}, {request.duration}s, about {credits} credits",
                      file=sys.stderr, flush=True)
                submission = await hh.submit(args.provider, request)
                report["task_id"] = submission.task_id
                print(f"task id: {submission.task_id}", file=sys.stderr, flush=True)
                state = await hh.wait(args.provider, submission.task_id,
                                      timeout=args.timeout, on_update=progress)
            elif args.command == "wait":
                report["task_id"] = args.task_id
                state = await hh.wait(args.provider, args.task_id, timeout=args.timeout,
                                      on_update=progress)
            else:
                report["task_id"] = args.task_id
                state = await hh.status(args.provider, args.task_id)
            report |= _state_fields(state)
            if state.status is Status.FAILED:
                code = EXIT_FAILED
            if args.command != "status" and args.download and state.video_url:
                saved = await hh.download(state.video_url, args.download)
                report["file"] = str(saved)
    except TaskFailedError as error:
        report |= _state_fields(error.state)
        code = EXIT_FAILED
    except WaitTimeoutError as error:
        # The task goes on at the provider: `wait` resumes it.
        report |= {"task_id": error.task_id, "status": "running", "error": str(error)}
        if error.last is not None:
            report["provider_status"] = error.last.provider_status
        code = EXIT_TIMEOUT
    except InvalidRequestError as error:
        report["error"] = str(error)
        code = EXIT_PROVIDER if error.from_provider else EXIT_INVALID
    except HappyHorseError as error:
        report["error"] = str(error)
        code = EXIT_PROVIDER

    if code != EXIT_OK and report["error"]:
        print(f"error: {report['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        for key in ("task_id", "status", "video_url", "file", "expires_at", "error"):
            if report.get(key):
                print(f"{key}: {report[key]}")
    return code


async def _demo(stack: contextlib.AsyncExitStack) -> ProviderConfig:
    """Start the demo service for as long as `stack` is open; its provider config."""
    backend = await stack.enter_async_context(DemoBackend(DemoSettings.from_env()))
    return backend.provider_config()


def _poll(args: argparse.Namespace) -> PollPolicy:
    interval = getattr(args, "poll_interval", None) or 2.0
    return PollPolicy(initial=interval, maximum=max(15.0, interval))


def _state_fields(state: TaskState) -> dict[str, Any]:
    return {
        "task_id": state.task_id,
        "status": state.status.value,
        "provider_status": state.provider_status,
        "video_url": state.video_url,
        "expires_at": state.expires_at.isoformat() if state.expires_at else None,
        "error": state.error,
    }
