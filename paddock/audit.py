"""Reading the journal back: member history, the moderators' audit log, the consistency check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from paddock.budget import parse_timestamp


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal row, as history and the audit log show it."""

    id: int
    at: datetime
    guild_id: int
    user_id: int | None
    account: str | None  # 'member', 'pool', or None for a settings change
    kind: str
    job_id: str | None
    change: int  # change of the posted balance (allowance + granted)
    held_change: int
    available: int | None  # the account's available credits after this entry
    actor_id: int | None
    reason: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What :meth:`Ledger.check` looked at, and every inconsistency it found."""

    accounts: int
    entries: int
    holds: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def entries(
    db: Database, guild_id: int, user_id: int | None, limit: int, before: int | None
) -> list[Entry]:
    where = ["j.guild_id = ?"]
    args: list[Any] = [guild_id]
    if user_id is not None:
        where.append("j.user_id = ?")
        args.append(user_id)
    if before is not None:
        where.append("j.id < ?")
        args.append(before)
    args.append(limit)
    rows = db.execute(
        f"""
        SELECT j.id, j.at, j.guild_id, j.user_id, a.kind, j.kind, j.job_id,
               j.d_allowance + j.d_granted, j.d_held, j.available, j.actor_id, j.reason, j.detail
          FROM journal j LEFT JOIN accounts a ON a.id = j.account_id
         WHERE {" AND ".join(where)}
         ORDER BY j.id DESC LIMIT ?
        """,
        args,
    ).fetchall()
    return [
        Entry(
            id=r[0],
            at=parse_timestamp(r[1]),  # type: ignore[arg-type]
            guild_id=r[2],
            user_id=r[3],
            account=r[4],
            kind=r[5],
            job_id=r[6],
            change=r[7],
            held_change=r[8],
            available=r[9],
            actor_id=r[10],
            reason=r[11],
            detail=None if r[12] is None else json.loads(r[12]),
        )
        for r in rows
    ]


def check_ledger(db: Database) -> CheckReport:
    problems: list[str] = []
    accounts = db.execute(
        """
        SELECT a.id, a.guild_id, a.kind, a.user_id, a.allowance, a.granted, a.held,
               COALESCE(j.sa, 0), COALESCE(j.sg, 0), COALESCE(j.sh, 0), COALESCE(h.ph, 0)
          FROM accounts a
          LEFT JOIN (SELECT account_id, SUM(d_allowance) AS sa, SUM(d_granted) AS sg,
                            SUM(d_held) AS sh
                       FROM journal WHERE account_id IS NOT NULL GROUP BY account_id) j
                 ON j.account_id = a.id
          LEFT JOIN (SELECT account, SUM(part) AS ph FROM (
                        SELECT personal_account AS account, from_personal AS part
                          FROM holds WHERE state = 'pending'
                        UNION ALL
                        SELECT pool_account, from_pool FROM holds
                         WHERE state = 'pending' AND pool_account IS NOT NULL) parts
                      GROUP BY account) h
                 ON h.account = a.id
        """
    ).fetchall()
    for acc_id, guild_id, kind, user_id, allowance, granted, held, sa, sg, sh, ph in accounts:
        name = f"{kind} account {acc_id} (server {guild_id}, user {user_id})"
        if (allowance, granted, held) != (sa, sg, sh):
            problems.append(
                f"{name}: cached allowance/granted/held {allowance}/{granted}/{held} "
                f"!= journal sums {sa}/{sg}/{sh}"
            )
        if held != ph:
            problems.append(f"{name}: held {held} != pending holds {ph}")
        if min(allowance, granted, held) < 0 or allowance + granted < held:
            problems.append(f"{name}: negative figure {allowance}/{granted}/{held}")
    # Per (job, account): each part of a hold must be held and charged on its own account
    # (the personal part charged first), so a charge moved between member and pool shows.
    # A charge given back later (``return`` entries) is checked apart: all of it, once.
    sums = {
        (job_id, account_id): (d_held, charged)
        for job_id, account_id, d_held, charged in db.execute(
            """
            SELECT job_id, account_id, SUM(d_held), -SUM(d_allowance + d_granted)
              FROM journal WHERE job_id IS NOT NULL AND account_id IS NOT NULL
                             AND kind != 'return'
             GROUP BY job_id, account_id
            """
        )
    }
    returns = {
        (job_id, account_id): returned
        for job_id, account_id, returned in db.execute(
            """
            SELECT job_id, account_id, SUM(d_allowance + d_granted) FROM journal
             WHERE kind = 'return' AND job_id IS NOT NULL AND account_id IS NOT NULL
             GROUP BY job_id, account_id
            """
        )
    }
    holds = db.execute(
        """
        SELECT job_id, state, charged, from_personal, from_pool, personal_account, pool_account
          FROM holds
        """
    ).fetchall()
    for job_id, state, charged, personal, pool, personal_id, pool_id in holds:
        charge_personal = min(charged or 0, personal)
        parts = [("personal", personal_id, personal, charge_personal)]
        if pool_id is not None:
            parts.append(("pool", pool_id, pool, (charged or 0) - charge_personal))
        for which, account_id, part, part_charge in parts:
            want = (part if state == "pending" else 0, part_charge)
            net_held, net_charged = sums.pop((job_id, account_id), (0, 0))
            if (net_held, net_charged) != want:
                problems.append(
                    f"hold {job_id} ({state}, {part} held, {part_charge} charged on the "
                    f"{which} account {account_id}): journal shows {net_held} still held "
                    f"and {net_charged} charged"
                )
            returned = returns.pop((job_id, account_id), None)
            if returned is not None and (state != "settled" or returned != part_charge):
                problems.append(
                    f"hold {job_id} ({state}, {part_charge} charged on the {which} account "
                    f"{account_id}): {returned} returned, not the whole charge"
                )
    for job_id, account_id in returns:
        problems.append(f"job {job_id} has credits returned on account {account_id}, "
                        "which it was never charged on")
    held_jobs = {row[0] for row in holds}
    for job_id, account_id in sums:  # a hold's job with entries on an account it never used
        if job_id in held_jobs:
            problems.append(
                f"job {job_id} has journal entries on account {account_id}, not its own"
            )
    orphans = db.execute(
        """
        SELECT COUNT(*) FROM journal
         WHERE (account_id IS NULL AND (d_allowance != 0 OR d_granted != 0 OR d_held != 0))
            OR (job_id IS NOT NULL AND job_id NOT IN (SELECT job_id FROM holds))
        """
    ).fetchone()[0]
    if orphans:
        problems.append(f"{orphans} journal entries belong to no account or no hold")
    entries = db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    return CheckReport(len(accounts), entries, len(holds), tuple(problems))
