"""`python -m hh_api` as an operator runs it: a real process against the emulators."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.fakes.providers import FAKE_MP4

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-cli-5e8b2a7d"


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environment |= env or {}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hh_api", *args,
        cwd=ROOT, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def env_for(emulator) -> dict[str, str]:
    prefix = emulator.provider.upper()
    return {f"{prefix}_API_KEY": emulator.api_key, f"{prefix}_BASE_URL": emulator.base_url}


async def test_generate_submits_waits_and_prints_json(start_emulator, tmp_path) -> None:
    emulator = await start_emulator("hiapi", api_key=KEY)
    target = tmp_path / "horse.mp4"
    code, out, err = await run_cli(
        "generate", "--provider", "hiapi", "--mode", "reference", "--prompt", "[Image 1] runs",
        "--image", "https://cdn.example/a.png", "--image", "https://cdn.example/b.png",
        "--resolution", "720p", "--aspect-ratio", "9:16", "--duration", "4",
        "--poll-interval", "0.05", "--download", str(target), "--json",
        env=env_for(emulator),
    )
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    [task_id] = emulator.tasks
    assert result["provider"] == "hiapi"
    assert result["task_id"] == task_id
    assert result["status"] == "succeeded"
    assert result["video_url"] == emulator.video_url(task_id)
    assert result["error"] is None
    assert target.read_bytes() == FAKE_MP4
    assert emulator.submits()[0].json["input"]["reference_image"] == [
        "https://cdn.example/a.png", "https://cdn.example/b.png"]
    assert "about 56 credits" in err  # 4 s at the highest known 720p rate, 14/s
    assert "handling" in err  # progress on stderr
    assert KEY not in out + err


async def test_a_failed_task_exits_non_zero_with_the_providers_reason(start_emulator) -> None:
    emulator = await start_emulator("joypix")
    emulator.fail_with = "Image could not be fetched"
    code, out, err = await run_cli(
        "generate", "--provider", "joypix", "--mode", "image", "--prompt", "blink",
        "--image", "https://cdn.example/a.png", "--poll-interval", "0.05", "--json",
        env=env_for(emulator),
    )
    assert code == 1
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "failed"
    assert result["error"] == "Image could not be fetched"
    assert "Image could not be fetched" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "text", "--prompt", "x", "--duration", "20"], "3-15 seconds"),
        (["--mode", "text", "--prompt", "x", "--seed", "5"], "takes no seed"),
        (["--mode", "image", "--prompt", "x", "--image", "https://cdn.example/a.png"],
         "does not offer image mode"),
        (["--mode", "reference", "--prompt", "x"], "1-9 pictures; got 0"),
    ],
)
async def test_invalid_input_is_refused_before_any_request(start_emulator, args, message):
    emulator = await start_emulator("hiapi")
    code, out, err = await run_cli("generate", "--provider", "hiapi", *args, "--json",
                                   env=env_for(emulator))
    assert code == 2
    assert message in err
    assert message in json.loads(out.strip().splitlines()[-1])["error"]
    assert emulator.requests == []


async def test_unknown_choices_are_refused_by_the_parser(start_emulator) -> None:
    emulator = await start_emulator("joypix")
    code, _, err = await run_cli("generate", "--provider", "runway", "--mode", "text",
                                 "--prompt", "x", env=env_for(emulator))
    assert code == 2
    assert "invalid choice: 'runway'" in err
    assert emulator.requests == []


async def test_a_missing_key_is_one_clear_line(start_emulator) -> None:
    code, _, err = await run_cli("generate", "--provider", "wavespeed", "--mode", "text",
                                 "--prompt", "x")
    assert code == 3
    assert "set WAVESPEED_API_KEY" in err
    assert "Traceback" not in err


async def test_status_and_wait_resume_a_task_by_id(start_emulator, make_client) -> None:
    emulator = await start_emulator("pixeldojo")
    emulator.steps = ["pending", "processing", "processing", "completed"]
    from hh_api import Mode, VideoRequest

    task = await make_client(emulator).submit(
        "pixeldojo", VideoRequest("x", Mode.REFERENCE, ("https://cdn.example/a.png",)))

    code, out, _ = await run_cli("status", "--provider", "pixeldojo", task.task_id, "--json",
                                 env=env_for(emulator))
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["status"] == "queued"

    code, out, err = await run_cli("wait", "--provider", "pixeldojo", task.task_id,
                                   "--poll-interval", "0.05", env=env_for(emulator))
    assert code == 0, err
    assert f"video_url: {emulator.video_url(task.task_id)}" in out
    assert "status: succeeded" in out
    assert len(emulator.submits()) == 1


async def test_a_wait_that_runs_out_of_time_exits_4_and_names_the_task(start_emulator) -> None:
    emulator = await start_emulator("wavespeed")
    emulator.steps = ["processing"] * 1000
    code, out, _ = await run_cli(
        "generate", "--provider", "wavespeed", "--mode", "text", "--prompt", "x",
        "--poll-interval", "0.05", "--timeout", "0.3", "--json", env=env_for(emulator))
    assert code == 4
    [task_id] = emulator.tasks
    result = json.loads(out.strip().splitlines()[-1])
    assert result["task_id"] == task_id
    assert result["status"] == "running"  # still at the provider, not failed
    assert "wait on it again" in result["error"]


async def test_the_demo_provider_needs_no_key(tmp_path) -> None:
    target = tmp_path / "demo.mp4"
    demo = {"DEMO_RENDER_SECONDS": "0.2"}

    code, out, err = await run_cli(
        "generate", "--provider", "demo", "--mode", "text", "--prompt", "a horse",
        "--poll-interval", "0.05", "--download", str(target), "--json", env=demo)
    failed_code, failed_out, _ = await run_cli(
        "generate", "--provider", "demo", "--mode", "text", "--prompt", "a horse #fail",
        "--poll-interval", "0.05", "--json", env=demo)

    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["provider"], result["status"], result["error"]) == ("demo", "succeeded", None)
    assert result["video_url"].startswith("http://127.0.0.1:")
    assert target.read_bytes()[4:8] == b"ftyp"  # an MP4
    assert failed_code == 1
    assert json.loads(failed_out.strip().splitlines()[-1])["status"] == "failed"


async def test_help_explains_every_option_with_its_values() -> None:
    code, out, _ = await run_cli("generate", "--help")
    assert code == 0
    out = " ".join(out.split())  # argparse wraps to the terminal's width
    for words in ("joypix, wavespeed, pixeldojo, hiapi, demo", "{text,image,reference}",
                  "{720p,1080p}", "3-15", "0-2147483647", "21:9", "PixelDojo only",
                  "exit status", "--download PATH", "--json"):
        assert words in out


async def test_a_lost_hiapi_answer_is_found_again_by_its_key(start_emulator) -> None:
    """The task is made but its answer lost (500); the resend finds the key still in flight
    (409 IDEMPOTENCY_KEY_PROCESSING, Retry-After 1); the next gets the original task."""
    emulator = await start_emulator("hiapi", api_key=KEY)
    emulator.fault(500, on="submit", after_accept=True)
    emulator.in_flight_answers = 1
    emulator.in_flight_retry_after = "1"
    code, out, err = await run_cli(
        "generate", "--provider", "hiapi", "--mode", "text", "--prompt", "a lost answer",
        "--poll-interval", "0.05", "--json", env=env_for(emulator))
    assert code == 0, err
    [task_id] = emulator.tasks
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["task_id"], result["status"]) == (task_id, "succeeded")
    submits = emulator.submits()
    assert len(submits) == 3
    assert len({s.headers["Idempotency-Key"] for s in submits}) == 1
    assert "still processing the first request with this idempotency key" in err
    assert "retry 2 of 3 in 1.00s" in err  # HiAPI's Retry-After, honoured
