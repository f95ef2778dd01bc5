"""The fair line of a provider, over every process sharing the database.

Each process keeps its own waiting jobs in a :class:`paddock.provider_line.ProviderQueue`
(their places in line, shown on their messages) and lets its first ones ask for a slot.
Who gets a free slot is decided here, in the write that marks a job as being sent
(:func:`admit_in`), the way the Postgres job queues (procrastinate, pgqueuer) hand out
work: the order is read from the database under a lock, and the waiters are woken by a
notification rather than by polling alone.

- **Asking.** A job that asks is marked with its process's lease id (``slot_asker``) and
  the cap on its member's jobs at once that process counts with (``slot_member_cap``).
  The mark stays when the job is told to wait, so every process sees it. It counts only
  while that process still holds the job's lease: a dead process's jobs drop out of the
  line when their leases end, and a clean stop (which gives the leases up) at once.
- **The order.** The jobs asking at one provider are put in :class:`FairLine` order with
  the turns read from ``server_turns`` and ``member_turns`` (when each server, and each
  member within it, last had a slot there): servers take turns, then members within a
  server, then each member's jobs by arrival. A member already at their cap (counted over
  every provider and process) is left out, and so are their jobs beyond what the cap
  leaves room for. With `free` slots free, the first `free` of that order may go; any
  other job gets :class:`SlotTaken` and asks again.
- **Turns.** A job let through takes the next turn of its provider for its server and
  member, and its mark is cleared.
- **Waking.** On PostgreSQL a trigger on ``jobs`` announces on :data:`SLOTS_CHANNEL` (the
  provider's name, at COMMIT) every job that takes or frees a slot or stops asking; each
  process's listener wakes its jobs waiting at that provider. On SQLite the one process
  wakes its own when a slot frees; processes sharing one file ask again every second.

On PostgreSQL a transaction lock per provider (and per member) makes two processes decide
one after the other; SQLite's write lock already does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paddock.jobs import Job
from paddock.provider_line import FairLine, MemberKey

SLOTS_CHANNEL = "paddock_slots"  # PostgreSQL NOTIFY channel: a provider's line moved

# A job at its provider, or that may be (its submit is on its way).
_AT_PROVIDER = ("({j}.state IN ('submitted', 'running')"
                " OR ({j}.state = 'accepted' AND {j}.submit_attempted_at IS NOT NULL))")


# A job asking for a slot at a provider (parameters: the provider, the job deciding, now):
# marked by a process that still holds its lease (the job deciding counts even if its
# submit was sent before a restart, or its lease is past due but not yet taken).
_ASKING = ("a.provider = ? AND a.slot_asker IS NOT NULL AND a.slot_asker = a.lease_owner"
           " AND a.state = 'accepted'"
           " AND (a.id = ? OR (a.submit_attempted_at IS NULL AND a.lease_until >= ?))")


class SlotTaken(Exception):
    """Every slot the job may take is taken, or its turn has not come: it asks again."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _postgres(db: Any) -> bool:
    return getattr(db, "dialect", "sqlite") == "postgresql"


def admit_in(
    db: Any,
    job: Job,
    *,
    owner: str,
    slots: int,
    member_cap: int | None,
    clock: Callable[[], float],
) -> SlotTaken | None:
    """Inside the write that marks `job` as being sent: None if it may go now (its turns
    are taken), or the :class:`SlotTaken` that says why not (then its ask is kept: the
    caller commits and waits).

    `slots`: jobs at the provider at once; `member_cap`: the member's jobs at providers at
    once (None: no cap), both over every process sharing the database."""
    provider = job.provider
    if _postgres(db):
        db.execute("SELECT pg_advisory_xact_lock(hashtext(?)), pg_advisory_xact_lock(hashtext(?))",
                   [f"slots:{provider}", f"member:{job.guild_id}:{job.user_id}"])
    db.execute("UPDATE jobs SET slot_asker = ?, slot_member_cap = ? WHERE id = ?",
               [owner, member_cap, job.id])
    # The job itself may count as at the provider (a keyed submit sent before a restart).
    now = clock()
    taken, asking = db.execute(
        "SELECT (SELECT COUNT(*) FROM jobs j WHERE j.provider = ? AND j.id <> ?"
        f" AND {_AT_PROVIDER.format(j='j')}), (SELECT COUNT(*) FROM jobs a WHERE {_ASKING})",
        [provider, job.id, provider, job.id, now],
    ).fetchone()
    free = slots - taken
    if free <= 0:
        return SlotTaken(f"all {slots} of {provider}'s slot(s) are taken")
    # When every job asking fits, only the job's own member's room can hold it back.
    askers = _askers(db, job, now, member_only=asking <= free)
    line, behind_cap = _line(askers)
    if job.id in behind_cap:
        return SlotTaken(f"the member has {behind_cap[job.id]} job(s) at providers "
                         f"(at most {member_cap} at once)")
    first = line.order(free) if asking > free else line
    if job.id not in first:
        return SlotTaken(f"{len(first)} job(s) of other members or servers go first for "
                         f"{provider}'s {free} free slot(s)")
    _take_turn(db, job)
    return None


def _askers(db: Any, job: Job, now: float, *, member_only: bool) -> list[Any]:
    """The jobs asking at the job's provider (or only its member's), oldest first, each
    with its server's and member's last turns there and its member's jobs at providers."""
    member = " AND {t}.guild_id = ? AND {t}.user_id = ?" if member_only else ""
    their = [job.guild_id, job.user_id] if member_only else []
    return db.execute(
        "SELECT a.id, a.guild_id, a.user_id, a.slot_member_cap, s.turn, m.turn,"
        " COALESCE(c.jobs, 0)"
        " FROM jobs a"
        " LEFT JOIN server_turns s ON s.provider = a.provider AND s.guild_id = a.guild_id"
        " LEFT JOIN member_turns m ON m.provider = a.provider AND m.guild_id = a.guild_id"
        " AND m.user_id = a.user_id"
        " LEFT JOIN (SELECT j.guild_id, j.user_id, COUNT(*) AS jobs FROM jobs j"
        f" WHERE {_AT_PROVIDER.format(j='j')} AND j.id <> ?{member.format(t='j')}"
        " GROUP BY j.guild_id, j.user_id) c ON c.guild_id = a.guild_id AND c.user_id = a.user_id"
        f" WHERE {_ASKING}{member.format(t='a')} ORDER BY a.created_at, a.id",
        [job.id, *their, job.provider, job.id, now, *their],
    ).fetchall()


def _line(askers: list[Any]) -> tuple[FairLine, dict[str, int]]:
    """The asking jobs whose member has room, in a :class:`FairLine` with their turns; and
    the others, with their member's jobs at providers."""
    line = FairLine()
    room: dict[MemberKey, int | None] = {}
    behind_cap: dict[str, int] = {}
    servers: dict[int, int] = {}
    members: dict[MemberKey, int] = {}
    for job_id, guild, user, cap, server_turn, member_turn, at_providers in askers:
        key = (guild, user)
        if key not in room:
            room[key] = None if cap is None else cap - at_providers
        left = room[key]
        if left is not None:
            if left <= 0:
                behind_cap[job_id] = at_providers
                continue
            room[key] = left - 1
        line.join(job_id, guild, user)
        if server_turn is not None:
            servers[guild] = server_turn
        if member_turn is not None:
            members[key] = member_turn
    line.took_turns(servers, members)
    return line, behind_cap


def _take_turn(db: Any, job: Job) -> None:
    """The job goes: its server and member take the provider's next turn."""
    [turn] = db.execute(
        "INSERT INTO server_turns (provider, guild_id, turn)"
        " SELECT ?, ?, COALESCE(MAX(turn), 0) + 1 FROM server_turns WHERE provider = ?"
        " ON CONFLICT (provider, guild_id) DO UPDATE SET turn = excluded.turn RETURNING turn",
        [job.provider, job.guild_id, job.provider],
    ).fetchone()
    db.execute("INSERT INTO member_turns (provider, guild_id, user_id, turn) VALUES (?, ?, ?, ?)"
               " ON CONFLICT (provider, guild_id, user_id) DO UPDATE SET turn = excluded.turn",
               [job.provider, job.guild_id, job.user_id, turn])
    db.execute("UPDATE jobs SET slot_asker = NULL, slot_member_cap = NULL WHERE id = ?",
               [job.id])
