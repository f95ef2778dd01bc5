"""The line in front of a provider's slots: first come, first served, and a long line
costs nothing while it waits (only the job at the head is woken)."""

from __future__ import annotations

import asyncio

from paddock.runner import ProviderQueue


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_jobs_start_in_arrival_order_as_slots_free():
    moves = []
    queue = ProviderQueue(2, lambda: moves.append(1))
    started: list[str] = []

    async def job(job_id: str) -> None:
        await queue.wait_turn(job_id)
        started.append(job_id)

    ids = [f"j{n}" for n in range(6)]
    assert [queue.join(i) for i in ids] == [1, 2, 3, 4, 5, 6]
    tasks = [asyncio.create_task(job(i)) for i in reversed(ids)]  # tasks run out of order
    await settle()
    assert started == ["j0", "j1"] and queue.active == 2
    assert queue.position("j2") == 1 and queue.position("j5") == 4
    for expected in (["j2"], ["j3"], ["j4"], ["j5"]):
        before = len(started)
        queue.release()
        await settle()
        assert started[before:] == expected
    assert queue.active == 2 and not queue.waiting
    await asyncio.gather(*tasks)


async def test_a_thousand_waiting_jobs_wake_one_at_a_time():
    queue = ProviderQueue(1, lambda: None)
    woken: list[str] = []

    async def job(job_id: str) -> None:
        await queue.wait_turn(job_id)
        woken.append(job_id)

    ids = [f"j{n}" for n in range(1000)]
    for job_id in ids:
        queue.join(job_id)
    tasks = [asyncio.create_task(job(i)) for i in ids]
    await settle()
    assert woken == ["j0"]
    queue.release()
    await settle()
    assert woken == ["j0", "j1"]
    # each waiting task holds its own future; nothing else was resumed
    assert sum(1 for turn in queue.waiting.values() if turn is not None) == 998
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_job_that_leaves_the_line_or_is_cancelled_lets_the_next_start():
    queue = ProviderQueue(1, lambda: None)
    started: list[str] = []

    async def job(job_id: str) -> None:
        await queue.wait_turn(job_id)
        started.append(job_id)

    for job_id in ("a", "b", "c", "d"):
        queue.join(job_id)
    tasks = {i: asyncio.create_task(job(i)) for i in ("a", "b", "c", "d")}
    await settle()
    assert started == ["a"]
    assert queue.leave("b") and not queue.leave("b")  # cancelled from /jobs cancel
    tasks["c"].cancel()  # its task stopped (the bot is shutting down)
    await settle()
    assert list(queue.waiting) == ["d"]
    queue.release()
    await settle()
    assert started == ["a", "d"] and queue.active == 1
    await asyncio.gather(*tasks.values(), return_exceptions=True)


async def test_a_slot_held_by_a_resumed_job_is_given_back_on_release():
    queue = ProviderQueue(1, lambda: None)
    queue.occupy()  # at the provider since before the restart
    queue.join("new")
    waiting = asyncio.create_task(queue.wait_turn("new"))
    await settle()
    assert not waiting.done()
    queue.release()
    await settle()
    assert waiting.done() and queue.active == 1


async def test_cancelling_every_waiting_job_at_once_breaks_nothing():
    """What Runner.stop does: each cancelled waiter may hand the slot to the next one,
    whose own cancellation has not run yet."""
    queue = ProviderQueue(1, lambda: None)
    for job_id in ("a", "b", "c", "d"):
        queue.join(job_id)
    tasks = [asyncio.create_task(queue.wait_turn(i)) for i in ("a", "b", "c", "d")]
    await settle()
    queue.release()  # "a" was running; its slot frees as the bot stops
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType"] + ["CancelledError"] * 3
    assert not queue.waiting
