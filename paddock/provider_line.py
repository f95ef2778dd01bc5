"""The line in front of each provider: who goes next when a slot frees.

:class:`FairLine` orders the waiting jobs fairly (servers take turns, then members within
a server, then each member's own jobs in order); :class:`MemberSlots` caps how many of
one member's jobs are at providers at once; :class:`ProviderQueue` puts both in front of
one provider's slots and wakes only the job whose turn it is.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from paddock.budget import DEFAULT_MEMBER_SLOTS

MemberKey = tuple[int, int]  # (server id, member id)


@dataclass
class _Waiting:
    guild: int
    member: int
    seq: int  # arrival order
    turn: asyncio.Future[None] | None = None  # what its task waits on, once it asks


class FairLine:
    """The jobs waiting for one provider, in a fair order.

    Servers take turns, then members within a server, then each member's own jobs go
    first come, first served. Taking turns means the server (and within it the member)
    served least recently goes next; one not served yet goes before any that was, in
    order of arrival. So a member who asks while another has ten jobs waiting is next,
    and a busy server does not hold back a quiet one. Pure bookkeeping, no waiting.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, _Waiting] = {}
        self._lines: dict[int, dict[int, deque[str]]] = {}  # server -> member -> job ids
        self._guild_served: dict[int, int] = {}  # the turn each was last served at
        self._member_served: dict[MemberKey, int] = {}
        self._arrivals = itertools.count()
        self._turns = itertools.count()

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def join(self, job_id: str, guild: int, member: int) -> None:
        self._jobs[job_id] = _Waiting(guild, member, next(self._arrivals))
        self._lines.setdefault(guild, {}).setdefault(member, deque()).append(job_id)

    def entry(self, job_id: str) -> _Waiting | None:
        return self._jobs.get(job_id)

    def remove(self, job_id: str) -> _Waiting:
        waiting = self._jobs.pop(job_id)
        members = self._lines[waiting.guild]
        members[waiting.member].remove(job_id)
        if not members[waiting.member]:
            del members[waiting.member]
            if not members:
                del self._lines[waiting.guild]
        return waiting

    def serve(self, job_id: str) -> _Waiting:
        """Take `job_id` out of the line as started: its server and member had a turn."""
        waiting = self.remove(job_id)
        self.had_turn(waiting.guild, waiting.member)
        return waiting

    def had_turn(self, guild: int, member: int) -> None:
        """Count a turn for the member (a job resumed at the provider after a restart), so
        the line after a restart is the line before it."""
        turn = next(self._turns)
        self._guild_served[guild] = turn
        self._member_served[(guild, member)] = turn

    def took_turns(self, servers: dict[int, int], members: dict[MemberKey, int]) -> None:
        """Set when servers and members last had a turn (numbers that grow with each turn:
        the turns kept in the database, see `paddock.fair_slots`)."""
        self._guild_served.update(servers)
        self._member_served.update(members)

    def next(self, has_room: Callable[[int, int], bool] = lambda guild, member: True) -> str | None:
        """The job whose turn it is, among members `has_room` says may start one more."""
        best: tuple[tuple[int, int], tuple[int, int]] | None = None
        chosen = None
        for guild, members in self._lines.items():
            open_members = [m for m in members if has_room(guild, m)]
            if not open_members:
                continue
            guild_rank = (self._guild_served.get(guild, -1),
                          min(self._jobs[members[m][0]].seq for m in open_members))
            for member in open_members:
                head = members[member][0]
                rank = (guild_rank,
                        (self._member_served.get((guild, member), -1), self._jobs[head].seq))
                if best is None or rank < best:
                    best, chosen = rank, head
        return chosen

    def order(self, limit: int | None = None) -> list[str]:
        """The waiting jobs in the order they would start if nobody else asked (and every
        member had room): what a job's place in line means.

        Turns go round in a fixed order (servers by their last turn, members within a
        server by theirs), so the order is made round by round, lazily: the first few
        places of a long line cost little.
        """
        servers = sorted(self._lines, key=self._server_rank)
        rounds = _take_turns(self._server_jobs(guild) for guild in servers)
        return list(itertools.islice(rounds, limit))

    def _server_rank(self, guild: int) -> tuple[int, int]:
        members = self._lines[guild]
        return (self._guild_served.get(guild, -1),
                min(self._jobs[jobs[0]].seq for jobs in members.values()))

    def _member_rank(self, guild: int, member: int) -> tuple[int, int]:
        return (self._member_served.get((guild, member), -1),
                self._jobs[self._lines[guild][member][0]].seq)

    def _server_jobs(self, guild: int) -> Iterator[str]:
        """One server's waiting jobs in the order its members' turns give them."""
        members = self._lines[guild]
        ranked = sorted(members, key=lambda member: self._member_rank(guild, member))
        yield from _take_turns(iter(members[member]) for member in ranked)

    def position(self, job_id: str) -> int | None:
        """The job's place in :meth:`order` (1: next), counted without walking the line.

        Turns go round in a fixed order (servers by their last turn, members within a
        server by theirs), so a job with `k` of its own server's jobs before it starts
        after at most `k` (or `k + 1`, for those ahead in the round) of each other's.
        """
        entry = self._jobs.get(job_id)
        if entry is None:
            return None
        members = self._lines[entry.guild]
        own = members[entry.member].index(job_id)
        ahead_in_server = own + _rounds_before(
            own, entry.member, {m: len(jobs) for m, jobs in members.items()},
            lambda member: self._member_rank(entry.guild, member),
        )
        sizes = {g: sum(map(len, ms.values())) for g, ms in self._lines.items()}
        ahead = ahead_in_server + _rounds_before(
            ahead_in_server, entry.guild, sizes, self._server_rank
        )
        return ahead + 1


def _take_turns(queues: Iterable[Iterator[str]]) -> Iterator[str]:
    """One item from each queue in turn, round after round, until all are empty."""
    turns = deque(queues)
    while turns:
        queue = turns.popleft()
        item = next(queue, None)
        if item is not None:
            yield item
            turns.append(queue)


def _rounds_before(
    rounds: int, mine: int, sizes: dict[int, int], rank: Callable[[int], tuple[int, int]]
) -> int:
    """Jobs of the others in `sizes` served before `mine`'s job of round `rounds` (0-based)
    when turns go round in `rank` order, one job a turn, a turn skipped once empty."""
    ranked = sorted(sizes, key=rank)
    ahead = ranked.index(mine)
    return sum(
        min(size, rounds + (1 if place < ahead else 0))
        for place, (other, size) in enumerate((o, sizes[o]) for o in ranked)
        if other != mine
    )


class MemberSlots:
    """How many jobs each member has at providers, against their server's cap (shared by
    every provider's queue: the cap counts a member's jobs at all providers)."""

    def __init__(self, default: int | None = DEFAULT_MEMBER_SLOTS) -> None:
        self.default = default
        self.caps: dict[int, int | None] = {}  # per server, once read from its limits
        self.running: Counter[MemberKey] = Counter()

    def cap(self, guild: int) -> int | None:
        return self.caps.get(guild, self.default)

    def has_room(self, guild: int, member: int) -> bool:
        cap = self.cap(guild)
        return cap is None or self.running[(guild, member)] < cap

    def take(self, key: MemberKey) -> None:
        self.running[key] += 1

    def give_back(self, key: MemberKey) -> None:
        self.running[key] -= 1
        if self.running[key] <= 0:
            del self.running[key]


class ProviderQueue:
    """The line in front of one provider's slots: a :class:`FairLine`, at most `slots`
    jobs at the provider, and at most the server's cap of one member's jobs at once.

    Each waiting job has its own future, and only the job whose turn it is gets woken
    when a slot frees, so a long line costs nothing while it waits.
    """

    def __init__(
        self,
        slots: int,
        on_moved: Callable[[], None],
        members: MemberSlots | None = None,
        on_freed: Callable[[], None] = lambda: None,
    ) -> None:
        self.slots = slots
        self.line = FairLine()
        self.members = members if members is not None else MemberSlots()
        self.running: dict[str, MemberKey] = {}  # jobs holding a slot, and whose they are
        self._on_moved = on_moved
        self._on_freed = on_freed  # a member slot came free: other providers' lines may move

    @property
    def active(self) -> int:
        return len(self.running)

    def join(self, job_id: str, guild: int, member: int) -> int:
        """Take a place in line now (synchronously, so arrival order is kept); returns it."""
        self.line.join(job_id, guild, member)
        position = self.line.position(job_id) or 0
        if position < len(self.line):  # it went before others: their places moved
            self._on_moved()
        return position

    def position(self, job_id: str) -> int | None:
        return self.line.position(job_id)

    def places(self, limit: int) -> list[str]:
        """The first `limit` waiting jobs, in the order they start."""
        return self.line.order(limit)

    def leave(self, job_id: str) -> bool:
        entry = self.line.entry(job_id)
        if entry is None:
            return False
        self.line.remove(job_id)
        if entry.turn is not None:
            entry.turn.cancel()
        self._advance()
        self._on_moved()
        return True

    async def wait_turn(self, job_id: str) -> None:
        entry = self.line.entry(job_id)
        assert entry is not None, f"job {job_id} did not join the line"
        if self.active < self.slots and self.line.next(self.members.has_room) == job_id:
            self._start(job_id)
        else:
            turn = asyncio.get_running_loop().create_future()
            entry.turn = turn
            try:
                await turn
            except asyncio.CancelledError:
                if self.line.entry(job_id) is entry:
                    self.line.remove(job_id)
                elif turn.done() and not turn.cancelled():
                    self._free(job_id)  # given the slot just as it was cancelled
                self._advance()
                raise
        self._advance()
        self._on_moved()

    def occupy(self, job_id: str, guild: int, member: int) -> None:
        """A job already at the provider (resumed after a restart) takes a slot at once."""
        self.running[job_id] = (guild, member)
        self.members.take((guild, member))
        self.line.had_turn(guild, member)

    def release(self, job_id: str) -> None:
        self._free(job_id)
        self._advance()

    def advance(self) -> None:
        """Start what may start now (a member's cap changed, or a slot freed elsewhere)."""
        if self._advance():
            self._on_moved()

    def _free(self, job_id: str) -> None:
        key = self.running.pop(job_id, None)
        if key is not None:
            self.members.give_back(key)
            self._on_freed()

    def _start(self, job_id: str) -> None:
        entry = self.line.serve(job_id)
        self.running[job_id] = (entry.guild, entry.member)
        self.members.take((entry.guild, entry.member))

    def _advance(self) -> bool:
        """Give free slots to the jobs whose turn it is and whose tasks wait for one."""
        started = False
        while self.active < self.slots:
            job_id = self.line.next(self.members.has_room)
            if job_id is None:
                break
            entry = self.line.entry(job_id)
            assert entry is not None
            if entry.turn is None:
                break  # its task will take the slot when it asks
            if entry.turn.done():  # its task was cancelled and has not cleaned up yet
                self.line.remove(job_id)
                continue
            self._start(job_id)
            entry.turn.set_result(None)
            started = True
        return started
