"""Domain errors. ``str(error)`` is safe to show to the member or moderator who caused it.

Cogs catch these narrowly (``except InsufficientCredits``, or ``except PaddockError`` for
the whole family) and answer with ``str(error)``; anything else is a bug and goes to the
tree's error handler. The numbers an error talks about are also attributes, so a cog can
build its own wording.
"""

from __future__ import annotations

from typing import ClassVar


class PaddockError(Exception):
    """Base of every error whose message may be shown to a Discord user."""


class StoreBusy(PaddockError):
    """The database stayed locked by another process for longer than the busy timeout."""

    def __str__(self) -> str:
        return "The credit ledger is busy right now; please try again in a moment."


class StoreUnavailable(PaddockError):
    """No write (or read) can be made now; the cause is chained (``__cause__``) and logged.

    Two different cases, and members are told which: SQLite's writer hit an error it
    cannot recover from, and only restarting the bot reopens the store; or, with
    ``server=True``, the PostgreSQL server cannot be reached, and the store reconnects
    by itself once it can.
    """

    def __init__(self, *, server: bool = False) -> None:
        super().__init__()
        self.server = server

    def __str__(self) -> str:
        if self.server:
            return "The credit ledger's database can't be reached right now; please try again soon."
        return "The credit ledger is unavailable right now; the bot needs a restart."


# -- credits --------------------------------------------------------------------------------


class CreditError(PaddockError):
    """Base of the ledger's errors."""


class InvalidAmount(CreditError):
    """An amount that makes no sense for the operation (negative, zero, not an int)."""

    def __init__(self, amount: object, why: str) -> None:
        super().__init__(amount, why)
        self.amount = amount
        self.why = why

    def __str__(self) -> str:
        return f"That amount ({self.amount!r}) isn't valid: {self.why}."


class InsufficientCredits(CreditError):
    """The account (or accounts, per the funding policy) cannot cover the cost."""

    def __init__(self, available: int, cost: int, *, source: str = "your balance") -> None:
        super().__init__(available, cost, source)
        self.available = available
        self.cost = cost
        self.source = source

    def __str__(self) -> str:
        return (
            f"Not enough credits: this needs {self.cost} and {self.source} has "
            f"{self.available} available."
        )


class BalanceInUse(CreditError):
    """A moderator tried to lower a balance below what running jobs already hold."""

    def __init__(self, requested: int, held: int) -> None:
        super().__init__(requested, held)
        self.requested = requested
        self.held = held

    def __str__(self) -> str:
        return (
            f"Can't bring this balance to {self.requested}: {self.held} credits are held by "
            f"jobs still running. Try again when they finish."
        )


class MemberBlocked(CreditError):
    """A moderator blocked this member from generating on this server."""

    def __init__(self, guild_id: int, user_id: int) -> None:
        super().__init__(guild_id, user_id)
        self.guild_id = guild_id
        self.user_id = user_id

    def __str__(self) -> str:
        return "You are blocked from generating videos on this server."


class LimitExceeded(CreditError):
    """A server limit refuses the reservation. ``limit`` names which one."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "job_cost": "This server allows at most {limit} credits per job; this one costs {cost}.",
        "member_spend": (
            "This server allows each member {limit} credits per {period}; you have used "
            "{used} and this job costs {cost}."
        ),
        "daily_ceiling": (
            "This server has reached its daily ceiling of {limit} credits ({used} used); "
            "this job costs {cost}. It resets at midnight UTC."
        ),
        "member_jobs": "You already have {used} jobs running; this server allows {limit}.",
        "server_jobs": "This server already has {used} jobs running, its limit is {limit}.",
    }

    def __init__(
        self, limit_name: str, limit: int, *, cost: int = 0, used: int = 0, period: str = ""
    ) -> None:
        super().__init__(limit_name, limit, cost, used, period)
        self.limit_name = limit_name
        self.limit = limit
        self.cost = cost
        self.used = used
        self.period = period

    def __str__(self) -> str:
        return self.MESSAGES[self.limit_name].format(
            limit=self.limit, cost=self.cost, used=self.used, period=self.period or "period"
        )


class UnknownHold(CreditError):
    """Settle or refund named a job that holds nothing."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"No credits are held for job {self.job_id}."


class ConflictingResolution(CreditError):
    """A job's hold was already resolved differently (settled vs refunded, other charge)."""

    def __init__(self, job_id: str, first: str, attempted: str) -> None:
        super().__init__(job_id, first, attempted)
        self.job_id = job_id
        self.first = first
        self.attempted = attempted

    def __str__(self) -> str:
        return f"Job {self.job_id} was already {self.first}; it can't now be {self.attempted}."


class ConflictingReservation(CreditError):
    """The same job id was reserved before for another member or amount."""

    def __init__(self, job_id: str, first: str, attempted: str) -> None:
        super().__init__(job_id, first, attempted)
        self.job_id = job_id
        self.first = first
        self.attempted = attempted

    def __str__(self) -> str:
        return f"Job {self.job_id} already holds {self.first}; it can't also hold {self.attempted}."


# -- jobs -----------------------------------------------------------------------------------


class JobError(PaddockError):
    """Base of the job store's errors."""


class JobNotFound(JobError):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"There is no job {self.job_id}."


class InvalidTransition(JobError):
    """A state change that skips or repeats a state of the job's life."""

    def __init__(self, job_id: str, current: str, wanted: str) -> None:
        super().__init__(job_id, current, wanted)
        self.job_id = job_id
        self.current = current
        self.wanted = wanted

    def __str__(self) -> str:
        return f"Job {self.job_id} is {self.current}; it can't become {self.wanted}."


class AlreadyFinished(InvalidTransition):
    """The job already reached a final state (succeeded, failed, cancelled, delivered).

    Two paths can end a job at the same moment (the provider finishing it, the sweep
    failing it past its deadline): the first final state stands, with its charge or
    refund, and the other path gets this error and stops.
    """
