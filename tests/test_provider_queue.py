"""The line in front of a provider's slots: fair between servers and members, first come
first served for each member, a cap on one member's jobs at once, and a long line costs
nothing while it waits (only the job whose turn it is is woken)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from paddock.provider_line import FairLine, MemberSlots, ProviderQueue

G, ALICE, BOB = 1, 10, 20  # one server and two of its members, for the slot tests


def uncapped() -> MemberSlots:
    return MemberSlots(default=None)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_jobs_start_in_arrival_order_as_slots_free():
    moves = []
    queue = ProviderQueue(2, lambda: moves.append(1), uncapped())
    started: list[str] = []

    async def job(job_id: str) -> None:
        await queue.wait_turn(job_id)
        started.append(job_id)

    ids = [f"j{n}" for n in range(6)]
    assert [queue.join(i, G, ALICE) for i in ids] == [1, 2, 3, 4, 5, 6]
    tasks = [asyncio.create_task(job(i)) for i in reversed(ids)]  # tasks run out of order
    await settle()
    assert started == ["j0", "j1"] and queue.active == 2
    assert queue.position("j2") == 1 and queue.position("j5") == 4
    for done, expected in zip(ids, (["j2"], ["j3"], ["j4"], ["j5"]), strict=False):
        before = len(started)
        queue.release(done)
        await settle()
        assert started[before:] == expected
    assert queue.active == 2 and not queue.line
    await asyncio.gather(*tasks)


async def test_a_thousand_waiting_jobs_wake_one_at_a_time():
    queue = ProviderQueue(1, lambda: None)
    woken: list[str] = []

    async def job(job_id: str) -> None:
        await queue.wait_turn(job_id)
        woken.append(job_id)

    ids = [f"j{n}" for n in range(1000)]
    for n, job_id in enumerate(ids):
        queue.join(job_id, G, n % 7)  # seven members take turns
    tasks = [asyncio.create_task(job(i)) for i in ids]
    await settle()
    assert woken == ["j0"]
    queue.release("j0")
    await settle()
    assert woken == ["j0", "j1"]
    # each waiting task holds its own future; nothing else was resumed
    waiting = [queue.line.entry(i) for i in ids[2:]]
    assert all(e is not None and e.turn is not None and not e.turn.done() for e in waiting)
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
        queue.join(job_id, G, ALICE)
    tasks = {i: asyncio.create_task(job(i)) for i in ("a", "b", "c", "d")}
    await settle()
    assert started == ["a"]
    assert queue.leave("b") and not queue.leave("b")  # cancelled from /jobs cancel
    tasks["c"].cancel()  # its task stopped (the bot is shutting down)
    await settle()
    assert queue.places(10) == ["d"]
    queue.release("a")
    await settle()
    assert started == ["a", "d"] and queue.active == 1
    await asyncio.gather(*tasks.values(), return_exceptions=True)


async def test_a_slot_held_by_a_resumed_job_is_given_back_on_release():
    queue = ProviderQueue(1, lambda: None)
    queue.occupy("old", G, ALICE)  # at the provider since before the restart
    queue.join("new", G, BOB)
    waiting = asyncio.create_task(queue.wait_turn("new"))
    await settle()
    assert not waiting.done()
    queue.release("old")
    await settle()
    assert waiting.done() and queue.active == 1


async def test_cancelling_every_waiting_job_at_once_breaks_nothing():
    """What Runner.stop does: each cancelled waiter may hand the slot to the next one,
    whose own cancellation has not run yet."""
    queue = ProviderQueue(1, lambda: None)
    for job_id in ("a", "b", "c", "d"):
        queue.join(job_id, G, ALICE)
    tasks = [asyncio.create_task(queue.wait_turn(i)) for i in ("a", "b", "c", "d")]
    await settle()
    queue.release("a")  # "a" was running; its slot frees as the bot stops
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType"] + ["CancelledError"] * 3
    assert not queue.line


# -- the fair order ---------------------------------------------------------------------------

# A history: who asks (server, member) and when a job starts, in any interleaving.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(1, 3), st.integers(1, 4)),
        st.tuples(st.just("start"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


def replay(history) -> tuple[FairLine, list[tuple[int, int]]]:
    """The line after `history`; and whose job each start served, in order."""
    line, served, made = FairLine(), [], 0
    for action, guild, member in history:
        if action == "join":
            line.join(f"{guild}.{member}.{made}", guild, member)
            made += 1
        elif (job_id := line.next()) is not None:
            entry = line.serve(job_id)
            served.append((entry.guild, entry.member))
    return line, served


def drain(line: FairLine) -> list[str]:
    started = []
    while (job_id := line.next()) is not None:
        line.serve(job_id)
        started.append(job_id)
    return started


@settings(max_examples=150, deadline=None)
@given(steps)
def test_the_shown_order_and_places_are_the_order_jobs_start_in(history) -> None:
    line, _ = replay(history)
    shown = line.order()
    places = {job_id: line.position(job_id) for job_id in shown}
    assert line.order(3) == shown[:3]
    assert drain(line) == shown
    assert places == {job_id: n for n, job_id in enumerate(shown, start=1)}


@settings(max_examples=150, deadline=None)
@given(steps)
def test_each_members_jobs_start_first_come_first_served(history) -> None:
    line, _ = replay(history)
    started = drain(line)
    for member in {job_id.rsplit(".", 1)[0] for job_id in started}:
        made = [int(j.rsplit(".", 1)[1]) for j in started if j.rsplit(".", 1)[0] == member]
        assert made == sorted(made)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(1, 4)), min_size=1, max_size=60))
def test_servers_take_turns_then_members_within_a_server(asks) -> None:
    """Whatever was asked, in any order: while a server (a member) still has jobs waiting,
    it never falls more than one start behind another that has."""
    line = FairLine()
    for n, (guild, member) in enumerate(asks):
        line.join(f"{guild}.{member}.{n}", guild, member)
    started = [tuple(map(int, j.split(".")[:2])) for j in drain(line)]
    total: dict[object, int] = {}
    for who in started:
        total[who[0]] = total.get(who[0], 0) + 1
        total[who] = total.get(who, 0) + 1
    for cut in range(len(started)):
        done = started[:cut]
        waiting_servers = {g for g, _ in started[cut:]}
        counts = [sum(1 for g, _ in done if g == s) for s in waiting_servers]
        assert max(counts) - min(counts) <= 1
        for server in waiting_servers:
            waiting_members = {w for w in started[cut:] if w[0] == server}
            counts = [done.count(w) for w in waiting_members]
            assert max(counts) - min(counts) <= 1


@settings(max_examples=150, deadline=None)
@given(steps, st.integers(1, 3))
def test_a_member_who_asks_while_others_wait_is_next_in_their_server(history, guild) -> None:
    """Someone new asks once: within their server only others not served yet (who asked
    earlier) go first, and the server's turn comes once per round of the servers."""
    line, served = replay(history)
    served_here = {m for g, m in served if g == guild}
    line.join("newcomer", guild, 99)
    order = line.order()
    ahead = [line.entry(j) for j in order[: order.index("newcomer")]]
    ahead_here = {e.member for e in ahead if e is not None and e.guild == guild}
    assert not ahead_here & served_here
    servers = {e.guild for j in order if (e := line.entry(j)) is not None}
    assert (line.position("newcomer") or 0) <= len(servers) * (len(ahead_here) + 1)


def test_alice_queues_ten_and_bob_who_asks_once_is_next() -> None:
    line = FairLine()
    for n in range(10):
        line.join(f"alice{n}", G, ALICE)
    line.serve(line.next() or "")  # alice0 starts
    line.join("bob", G, BOB)
    assert line.position("bob") == 1
    assert line.order() == ["bob", *(f"alice{n}" for n in range(1, 10))]
    # a quiet server goes before the second job of a busy one, too
    line.join("carol", 2, 30)
    assert line.order(3) == ["carol", "bob", "alice1"]


def test_a_member_who_waited_after_being_served_goes_after_those_never_served() -> None:
    line = FairLine()
    line.join("a1", G, ALICE)
    line.join("a2", G, ALICE)
    line.serve("a1")
    line.join("b1", G, BOB)
    line.join("c1", G, 30)
    assert line.order() == ["b1", "c1", "a2"]


# -- one member's jobs at once ------------------------------------------------------------


async def test_a_member_has_at_most_the_cap_of_jobs_at_the_provider_and_others_go_first():
    queue = ProviderQueue(8, lambda: None, MemberSlots(default=2))
    started: list[str] = []

    async def job(job_id: str) -> None:
        await queue.wait_turn(job_id)
        started.append(job_id)

    tasks = []
    for n in range(5):
        queue.join(f"alice{n}", G, ALICE)
        tasks.append(asyncio.create_task(job(f"alice{n}")))
    await settle()
    assert started == ["alice0", "alice1"]  # slots free, but alice has her two
    queue.join("bob", G, BOB)
    tasks.append(asyncio.create_task(job("bob")))
    await settle()
    assert started[2:] == ["bob"]
    queue.release("alice0")
    await settle()
    assert started[3:] == ["alice2"] and queue.active == 3
    queue.members.caps[G] = None  # a moderator lifted the cap
    queue.advance()
    await settle()
    assert started[4:] == ["alice3", "alice4"]
    await asyncio.gather(*tasks)


async def test_the_cap_counts_a_members_jobs_at_every_provider():
    members = MemberSlots(default=1)
    queues: dict[str, ProviderQueue] = {}

    def advance_all() -> None:
        for queue in queues.values():
            queue.advance()

    for name in ("joypix", "hiapi"):
        queues[name] = ProviderQueue(8, lambda: None, members, on_freed=advance_all)
    joypix, hiapi = queues["joypix"], queues["hiapi"]
    joypix.join("first", G, ALICE)
    hiapi.join("second", G, ALICE)
    await joypix.wait_turn("first")
    second = asyncio.create_task(hiapi.wait_turn("second"))
    await settle()
    assert not second.done()  # her one job at a time is at JoyPix
    joypix.release("first")
    await settle()
    assert second.done() and hiapi.active == 1
