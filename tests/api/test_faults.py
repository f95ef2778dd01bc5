"""Provider faults: what is retried, what is never sent twice, what the caller is told."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hh_api import (
    AuthenticationError,
    HappyHorse,
    InvalidRequestError,
    Mode,
    PollPolicy,
    ProtocolError,
    ProviderConfig,
    ProviderUnavailableError,
    RateLimitError,
    RetryPolicy,
    Status,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskNotFoundError,
    VideoRequest,
    WaitTimeoutError,
)
from hh_api.transport import retry_after_seconds
from tests.api.conftest import RecordingSleep

REQUEST = VideoRequest("a horse on a beach", Mode.TEXT)


# -- status checks are retried --------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [{"kind": 503}, {"kind": 500}, {"kind": "html", "status": 502}, {"kind": "malformed"},
     {"kind": "hang"}, {"kind": "drop"}, {"kind": "envelope", "status": 500}],
    ids=["503", "500", "html-502", "malformed-json", "hung", "dropped", "envelope-500"],
)
async def test_a_status_check_rides_out_a_transient_fault(start_emulator, make_client, fault):
    emulator = await start_emulator("joypix")
    client = make_client(emulator)
    task = await client.submit("joypix", REQUEST)
    options = dict(fault)
    emulator.fault(options.pop("kind"), on="status", times=2, **options)

    state = await client.status("joypix", task.task_id)

    assert state.status is Status.QUEUED
    assert len(emulator.polls()) == 3


async def test_a_status_check_gives_up_after_its_attempts(start_emulator, make_client) -> None:
    emulator = await start_emulator("wavespeed")
    client = make_client(emulator)
    task = await client.submit("wavespeed", REQUEST)
    emulator.fault("html", status=502, on="status", times=10)
    with pytest.raises(ProviderUnavailableError) as error:
        await client.status("wavespeed", task.task_id)
    assert "HTTP 502" in str(error.value)
    assert "HTML error page" in str(error.value)
    assert "<html>" not in str(error.value)
    assert len(emulator.polls()) == 4


async def test_429_honours_retry_after_in_seconds(start_emulator, make_client) -> None:
    emulator = await start_emulator("pixeldojo")
    sleep = RecordingSleep()
    client = make_client(emulator, sleep=sleep,
                         retry=RetryPolicy(attempts=3, base_delay=0.001, max_retry_after=30))
    emulator.fault(429, retry_after="7", on="submit")
    await client.submit("pixeldojo",
                        VideoRequest("x", Mode.REFERENCE, ("https://cdn.example/a.png",)))
    assert sleep.calls == [7.0]
    assert len(emulator.tasks) == 1


async def test_429_honours_retry_after_as_a_date_and_caps_it(start_emulator, make_client):
    emulator = await start_emulator("joypix")
    sleep = RecordingSleep()
    client = make_client(emulator, sleep=sleep,
                         retry=RetryPolicy(attempts=3, base_delay=0.001, max_retry_after=20))
    task = await client.submit("joypix", REQUEST)
    in_a_while = format_datetime(datetime.now(UTC) + timedelta(seconds=12), usegmt=True)
    emulator.fault(429, retry_after=in_a_while, on="status")
    emulator.fault(429, retry_after="3600", on="status")
    await client.status("joypix", task.task_id)
    assert 9 <= sleep.calls[0] <= 12
    assert sleep.calls[1] == 20  # an hour was asked; the cap holds


async def test_429_that_never_stops_is_a_rate_limit_error(start_emulator, make_client) -> None:
    emulator = await start_emulator("hiapi")
    client = make_client(emulator)
    emulator.fault(429, retry_after="1", times=10)
    with pytest.raises(RateLimitError) as error:
        await client.submit("hiapi", REQUEST)
    assert error.value.retry_after == 1.0
    assert len(emulator.submits()) == 4


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    assert [policy.backoff(n, rng=lambda: 1.0) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]
    assert policy.backoff(3, rng=lambda: 0.25) == 1.0


# -- submits are never silently sent twice --------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [{"kind": 429}, {"kind": 503}],
    ids=["429", "503-before-acceptance"],
)
async def test_a_submit_refused_before_acceptance_is_retried(start_emulator, make_client, fault):
    emulator = await start_emulator("joypix")
    emulator.fault(fault["kind"], on="submit")
    task = await make_client(emulator).submit("joypix", REQUEST)
    assert len(emulator.submits()) == 2
    assert list(emulator.tasks) == [task.task_id]


async def test_a_submit_to_a_closed_port_is_retried_as_nothing_was_sent(make_client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HappyHorse(
        {"joypix": ProviderConfig("joypix", api_key="k", base_url=f"http://127.0.0.1:{port}")},
        retry=RetryPolicy(attempts=3, base_delay=0.001),
    )
    try:
        with pytest.raises(ProviderUnavailableError) as error:
            await client.submit("joypix", REQUEST)
    finally:
        await client.close()
    assert not isinstance(error.value, SubmitOutcomeUnknownError)
    assert str(error.value) == "cannot reach joypix: the connection was refused"
    assert error.value.status is None
    # the address is for the operator's log only
    assert f"127.0.0.1:{port}" in (error.value.detail or "")
    assert f"127.0.0.1:{port}" in error.value.for_log()


@pytest.mark.parametrize(
    "fault",
    [{"kind": 500}, {"kind": 502}, {"kind": "hang"}, {"kind": "drop"}, {"kind": "malformed"},
     {"kind": 500, "after_accept": True}, {"kind": "drop", "after_accept": True}],
    ids=["500", "502", "hung", "dropped", "malformed", "500-after-accept", "drop-after-accept"],
)
@pytest.mark.parametrize("provider", ["joypix", "wavespeed"])
async def test_a_submit_with_an_unknown_outcome_is_reported_not_resent(
    start_emulator, make_client, provider, fault
) -> None:
    emulator = await start_emulator(provider)
    options = dict(fault)
    emulator.fault(options.pop("kind"), on="submit", **options)
    with pytest.raises(SubmitOutcomeUnknownError) as error:
        await make_client(emulator).submit(provider, REQUEST)
    assert len(emulator.submits()) == 1
    assert "not sent again" in str(error.value)


@pytest.mark.parametrize(
    "fault",
    [{"kind": 500, "after_accept": True}, {"kind": "drop", "after_accept": True},
     {"kind": "hang", "after_accept": True}, {"kind": 502}, {"kind": "malformed"}],
    ids=["500-after-accept", "drop-after-accept", "hang-after-accept", "502", "malformed"],
)
async def test_hiapi_retries_a_submit_with_the_same_key_and_gets_one_task(
    start_emulator, make_client, fault
) -> None:
    emulator = await start_emulator("hiapi")
    options = dict(fault)
    emulator.fault(options.pop("kind"), on="submit", **options)
    task = await make_client(emulator).submit("hiapi", REQUEST)
    first, second = emulator.submits()
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert list(emulator.tasks) == [task.task_id]


# -- refusals that retrying cannot fix --------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failures_fail_at_once(start_emulator, make_client, status) -> None:
    emulator = await start_emulator("wavespeed")
    emulator.fault(status, times=5)
    with pytest.raises(AuthenticationError) as error:
        await make_client(emulator).submit("wavespeed", REQUEST)
    assert f"HTTP {status}" in str(error.value)
    assert len(emulator.requests) == 1


async def test_a_wrong_key_is_an_authentication_error(start_emulator, make_client) -> None:
    emulator = await start_emulator("joypix", api_key="the-right-key")
    client = HappyHorse({"joypix": ProviderConfig("joypix", api_key="a-wrong-key",
                                                  base_url=emulator.base_url)})
    try:
        with pytest.raises(AuthenticationError):
            await client.submit("joypix", REQUEST)
    finally:
        await client.close()
    assert len(emulator.requests) == 1


async def test_a_provider_400_is_an_invalid_request_from_the_provider(start_emulator, make_client):
    emulator = await start_emulator("pixeldojo")
    emulator.fault(400)
    with pytest.raises(InvalidRequestError) as error:
        await make_client(emulator).submit(
            "pixeldojo", VideoRequest("x", Mode.REFERENCE, ("https://cdn.example/a.png",)))
    assert error.value.from_provider
    assert "emulated HTTP 400" in str(error.value)
    assert len(emulator.requests) == 1


async def test_an_unknown_task_id_is_task_not_found(start_emulator, make_client) -> None:
    emulator = await start_emulator("hiapi")
    with pytest.raises(TaskNotFoundError) as error:
        await make_client(emulator).status("hiapi", "tsk_nope")
    assert error.value.task_id == "tsk_nope"


async def test_an_answer_missing_the_task_id_is_a_protocol_error(start_emulator, make_client):
    emulator = await start_emulator("joypix")
    emulator.fault("envelope", status=200, on="submit")  # {"code": 200, ...} with no data
    with pytest.raises(ProtocolError, match="without a 'data' object"):
        await make_client(emulator).submit("joypix", REQUEST)


# -- failed tasks and waiting -------------------------------------------------------------


@pytest.mark.parametrize("provider", ["joypix", "wavespeed", "pixeldojo", "hiapi"])
async def test_a_failed_task_raises_with_the_reason_and_is_never_resubmitted(
    start_emulator, make_client, provider
) -> None:
    emulator = await start_emulator(provider)
    emulator.fail_with = "The prompt was flagged by the content filter"
    request = (VideoRequest("x", Mode.REFERENCE, ("https://cdn.example/a.png",))
               if provider == "pixeldojo" else REQUEST)
    with pytest.raises(TaskFailedError) as error:
        await make_client(emulator).generate(provider, request)
    assert "flagged by the content filter" in error.value.reason
    assert error.value.state.status is Status.FAILED
    assert len(emulator.submits()) == 1


async def test_waiting_polls_with_a_growing_interval_up_to_the_cap(start_emulator) -> None:
    emulator = await start_emulator("joypix")
    emulator.steps = ["pending"] * 8 + ["completed"]
    sleep = RecordingSleep()
    async with HappyHorse({"joypix": ProviderConfig("joypix", api_key="test-key",
                                                    base_url=emulator.base_url)},
                          sleep=sleep) as client:
        task = await client.submit("joypix", REQUEST)
        await client.wait("joypix", task.task_id)
    # the submit's answer was the first look; the first check comes 2 s later
    assert sleep.calls == [2.0, 3.0, 4.5, 6.75, 10.125, 15.0, 15.0, 15.0, 15.0]
    assert len(emulator.polls()) == 9


async def test_waiting_past_the_deadline_names_the_task_and_can_resume(
    start_emulator, make_client
) -> None:
    emulator = await start_emulator("hiapi")
    emulator.steps = ["queued"] * 1000
    client = make_client(emulator)
    task = await client.submit("hiapi", REQUEST)
    with pytest.raises(WaitTimeoutError) as error:
        await client.wait("hiapi", task.task_id, timeout=0.05)
    assert error.value.task_id == task.task_id
    assert error.value.last is not None and error.value.last.provider_status == "queued"
    emulator.finish(task.task_id)
    # A fresh client (as after a restart) resumes from the task id alone.
    state = await make_client(emulator).wait("hiapi", task.task_id, timeout=5)
    assert state.status is Status.SUCCEEDED
    assert len(emulator.submits()) == 1


async def test_waiting_rides_out_faults_until_the_task_ends(start_emulator, make_client) -> None:
    emulator = await start_emulator("wavespeed")
    client = make_client(emulator)
    task = await client.submit("wavespeed", REQUEST)
    emulator.fault(503, on="status", times=6)  # more than one status call retries
    emulator.fault("malformed", on="status", times=4)
    state = await client.wait("wavespeed", task.task_id, timeout=10)
    assert state.status is Status.SUCCEEDED


async def test_waiting_stops_at_once_on_a_rejected_key(start_emulator, make_client) -> None:
    emulator = await start_emulator("joypix")
    client = make_client(emulator)
    task = await client.submit("joypix", REQUEST)
    emulator.fault(401, on="status")
    with pytest.raises(AuthenticationError):
        await client.wait("joypix", task.task_id, timeout=10)


async def test_cancelling_a_wait_stops_polling(start_emulator) -> None:
    emulator = await start_emulator("joypix")
    emulator.steps = ["pending"] * 1000
    async with HappyHorse({"joypix": ProviderConfig("joypix", api_key="test-key",
                                                    base_url=emulator.base_url)}) as client:

        task = await client.submit("joypix", REQUEST)
        waiter = asyncio.create_task(
            client.wait("joypix", task.task_id, poll=PollPolicy(initial=0.01, maximum=0.01)))
        await emulator.wait_for_requests("status", 3)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        polls = len(emulator.polls())
        await asyncio.sleep(0.05)
    assert len(emulator.polls()) == polls


async def test_a_wake_event_makes_the_next_poll_happen_at_once(start_emulator) -> None:
    emulator = await start_emulator("hiapi")
    emulator.steps = ["queued"] * 1000
    async with HappyHorse({"hiapi": ProviderConfig("hiapi", api_key="test-key",
                                                   base_url=emulator.base_url)}) as client:
        task = await client.submit("hiapi", REQUEST)
        wake = asyncio.Event()
        # Checks an hour apart: only the wakes can make them happen while the test runs.
        hourly = PollPolicy(initial=3600, maximum=3600)
        waiter = asyncio.create_task(client.wait("hiapi", task.task_id, wake=wake, poll=hourly))
        wake.set()
        await emulator.wait_for_requests("status", 1)
        emulator.finish(task.task_id)
        wake.set()  # as when a callback arrives
        state = await waiter
    assert state.status is Status.SUCCEEDED
    assert len(emulator.polls()) == 2


# -- whether a failed submit can have created a task (may the job go elsewhere?) -------


@pytest.mark.parametrize(
    ("provider", "faults", "created_nothing"),
    [("joypix", [503] * 4, True), ("joypix", [429] * 4, True), ("wavespeed", [401], True),
     ("wavespeed", [400], True), ("joypix", [500], False), ("joypix", ["drop"], False),
     # HiAPI retries with its key: one unknown attempt taints the whole submit
     ("hiapi", [503] * 4, True), ("hiapi", ["drop", 503, 503, 503], False),
     ("hiapi", [500] * 4, False)],
    ids=["503s", "429s", "401", "400", "500", "dropped", "hiapi-503s", "hiapi-drop-then-503s",
         "hiapi-500s"],
)
async def test_a_failed_submit_says_whether_it_certainly_created_nothing(
    start_emulator, make_client, provider, faults, created_nothing
) -> None:
    emulator = await start_emulator(provider)
    for fault in faults:
        emulator.fault(fault, on="submit")
    with pytest.raises(Exception) as error:
        await make_client(emulator).submit(provider, REQUEST)
    assert error.value.created_nothing is created_nothing
    assert emulator.tasks == {}  # (the emulator made none; the client cannot know that)


async def test_a_submit_to_a_closed_port_certainly_created_nothing(make_client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HappyHorse(
        {"joypix": ProviderConfig("joypix", api_key="k", base_url=f"http://127.0.0.1:{port}")},
        retry=RetryPolicy(attempts=2, base_delay=0.001),
    )
    try:
        with pytest.raises(ProviderUnavailableError) as error:
            await client.submit("joypix", REQUEST)
    finally:
        await client.close()
    assert error.value.created_nothing


async def test_a_submit_can_take_a_429_at_once_instead_of_waiting(start_emulator, make_client):
    emulator = await start_emulator("joypix")
    sleep = RecordingSleep()
    client = make_client(emulator, sleep=sleep, retry=RetryPolicy(attempts=4, base_delay=0.001))
    emulator.fault(429, retry_after="120", on="submit")
    with pytest.raises(RateLimitError) as error:
        await client.submit("joypix", REQUEST, wait_on_rate_limit=False)
    assert (error.value.retry_after, error.value.created_nothing) == (120.0, True)
    assert sleep.calls == [] and len(emulator.submits()) == 1
