"""HiAPI's idempotency contract, as its SDK handles it: a lost answer, 409 PROCESSING while
the first request with the key is in flight, then the original task, replayed."""

from __future__ import annotations

import logging

import pytest

from hh_api import (
    InvalidRequestError,
    Mode,
    ProviderUnavailableError,
    RetryPolicy,
    SubmitOutcomeUnknownError,
    VideoRequest,
)
from tests.api.conftest import RecordingSleep

REQUEST = VideoRequest("a horse on a beach", Mode.TEXT)
# Fast backoff, but a provider's Retry-After is honoured in full, as HiAPI's SDK does.
HONEST_RETRY = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01, max_retry_after=60)


async def test_a_lost_answer_then_409_processing_ends_in_the_original_task(
    start_emulator, make_client, caplog
) -> None:
    emulator = await start_emulator("hiapi")
    emulator.fault(500, on="submit", after_accept=True)  # the task exists; the answer is lost
    emulator.in_flight_answers = 2
    emulator.in_flight_retry_after = "3"
    sleep = RecordingSleep()
    caplog.set_level(logging.INFO, logger="hh_api")

    task = await make_client(emulator, retry=HONEST_RETRY, sleep=sleep).submit(
        "hiapi", REQUEST, idempotency_key="job-77")

    assert list(emulator.tasks) == [task.task_id]  # one task, found again by its key
    submits = emulator.submits()
    assert len(submits) == 4  # the lost one, two 409s, the replay
    assert {s.headers["Idempotency-Key"] for s in submits} == {"job-77"}
    assert {s.body for s in submits} == {submits[0].body}  # the same body, byte for byte
    assert sleep.calls[1:] == [3.0, 3.0]  # Retry-After, after each 409
    replays = [r for r in caplog.records if "Idempotent-Replay" in r.getMessage()]
    assert [r.levelno for r in replays] == [logging.INFO]
    assert "provider=hiapi" in replays[0].getMessage()


async def test_a_key_still_in_flight_when_the_retries_run_out_is_an_unknown_outcome(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("hiapi")
    emulator.fault(500, on="submit", after_accept=True)
    emulator.in_flight_answers = 100
    emulator.in_flight_retry_after = "0"
    with pytest.raises(SubmitOutcomeUnknownError) as error:
        await make_client(emulator).submit("hiapi", REQUEST, idempotency_key="job-78")
    assert not isinstance(error.value, InvalidRequestError)
    assert "same idempotency key" in str(error.value)
    assert len(emulator.tasks) == 1
    assert len(emulator.submits()) == 4

    # What the runner does next: the same key again, once HiAPI is done with the first.
    emulator.in_flight_answers = 0
    again = await make_client(emulator).submit("hiapi", REQUEST, idempotency_key="job-78")
    assert list(emulator.tasks) == [again.task_id]


async def test_a_resend_while_the_first_is_in_flight_waits_for_it(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("hiapi")
    first = await make_client(emulator).submit("hiapi", REQUEST, idempotency_key="job-79")
    emulator.in_flight_answers = 1
    emulator.in_flight_retry_after = "0"
    again = await make_client(emulator).submit("hiapi", REQUEST, idempotency_key="job-79")
    assert again.task_id == first.task_id
    assert len(emulator.tasks) == 1


async def test_keyed_submits_whose_5xx_outlast_the_retries_are_an_unknown_outcome(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("hiapi")
    emulator.fault(500, on="submit", times=4)
    with pytest.raises(SubmitOutcomeUnknownError):
        await make_client(emulator).submit("hiapi", REQUEST, idempotency_key="job-80")
    assert len(emulator.submits()) == 4


async def test_keyed_submits_refused_with_503_every_time_created_nothing(
    start_emulator, make_client
) -> None:
    """503 means the request was refused before it was processed (HiAPI's SDK says so)."""
    emulator = await start_emulator("hiapi")
    emulator.fault(503, on="submit", times=4)
    with pytest.raises(ProviderUnavailableError) as error:
        await make_client(emulator).submit("hiapi", REQUEST, idempotency_key="job-81")
    assert not isinstance(error.value, SubmitOutcomeUnknownError)
    assert "HTTP 503" in str(error.value)


async def test_another_409_is_a_refusal_at_once_as_in_the_sdk(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("hiapi")
    emulator.fault(409, on="submit")  # a 409 without IDEMPOTENCY_KEY_PROCESSING
    with pytest.raises(InvalidRequestError) as error:
        await make_client(emulator).submit("hiapi", REQUEST, idempotency_key="job-82")
    assert error.value.from_provider
    assert "HTTP 409" in str(error.value)
    assert len(emulator.submits()) == 1


async def test_a_key_reused_with_another_body_is_refused_at_once(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("hiapi")
    client = make_client(emulator)
    await client.submit("hiapi", REQUEST, idempotency_key="job-83")
    with pytest.raises(InvalidRequestError) as error:
        await client.submit("hiapi", VideoRequest("another prompt", Mode.TEXT),
                            idempotency_key="job-83")
    assert "HTTP 422" in str(error.value)
    assert len(emulator.submits()) == 2
    assert len(emulator.tasks) == 1
