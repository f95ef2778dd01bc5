"""The job store: each generation job's life, durable enough to finish it after a restart.

States
    ``accepted`` → ``submitted`` → ``running`` → ``succeeded`` | ``failed`` → ``delivered``.
    A job may also fail straight from ``accepted`` (the provider refused the submission) or
    from ``submitted``, and may be ``cancelled`` while still ``accepted`` (``/jobs cancel``
    before it reached the provider) unless a submit attempt is recorded
    (``submit_attempted_at``, set by :meth:`JobStore.mark_submitting`): from then on the
    job may be at the provider, and only the runner decides its fate. Any other change,
    including repeating the current state, raises :class:`~paddock.errors.InvalidTransition`.

    A ``provider: auto`` job (``route`` set) may go back to ``accepted`` at another
    provider of its route through :meth:`JobStore.move`: after a submit that certainly
    created no task, a turn skipped at a cooling provider, or once after its task failed
    at the provider. Every submit event (``sent``, ``accepted``, ``refused``, ...) is
    appended to ``job_attempts`` in the transaction of the state change it goes with.

    Failed jobs are delivered too: the member must be told that the job failed and that its
    credits came back, so ``failed`` waits for ``delivered`` like ``succeeded`` does.
    ``delivered`` means delivery is over; if the bot gave up (channel gone, token expired
    and no channel access), ``delivery_error`` says why. A finished video that could not
    be posted anywhere is ``delivered`` with ``undelivered_at`` set and its credits
    returned (:meth:`JobStore.mark_undelivered`); a "video" that turns out not to be one
    goes ``succeeded`` → ``failed`` with its charge returned
    (:meth:`JobStore.fail_unusable`). ``cancelled`` is final at once, since the cancel
    command's own reply tells the member.

Credits
    :meth:`JobStore.accept` stores the job and reserves its estimated credits in one
    transaction; ``mark_succeeded`` settles the hold, ``mark_failed`` and ``cancel`` refund
    it, each in the same transaction as the state change, so a crash can never leave a
    finished job with a pending hold or a refund that happened without its job failing.

Leases
    A job is driven by one process at a time, the holder of its lease (`paddock.leases`):
    a job is leased in the write that accepts it (:meth:`JobStore.lease_new_jobs`), each
    change a driver makes first checks that it still holds it (:meth:`JobStore.fenced`),
    and the write that ends the job (delivered, undelivered, cancelled) gives it up.

Sweep
    :meth:`JobStore.sweep` (at start-up, then on a timer) fails and refunds jobs still
    ``accepted`` after ``accept_grace`` with no submit attempt recorded (they never reached
    the provider, typically because the bot died before submitting), and jobs past their
    deadline that may be at the provider: ``accepted`` with a submit attempt recorded (the
    runner decides those on resume until then), ``submitted`` or ``running``. It also
    refunds pending holds that have no job at all after the grace: every hold should be
    made through :meth:`JobStore.accept`. The failed jobs then await delivery of their
    failure message like any other.

    The sweep may fail a job at the moment its provider finishes it. The first final
    state stands, with its charge or refund: each change is a conditional UPDATE on the
    state it was read in, and the later path gets :class:`~paddock.errors.AlreadyFinished`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlite_utils import Database

from paddock.budget import parse_timestamp, timestamp, utc, utcnow
from paddock.errors import (
    AlreadyFinished,
    ConflictingReservation,
    InvalidTransition,
    JobNotFound,
)
from paddock.ledger import Clock, Reservation, refund_in, reserve_in, settle_in
from paddock.store import Store
from paddock.transfers import return_charge_in

log = logging.getLogger(__name__)


class JobState(StrEnum):
    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.ACCEPTED: frozenset({JobState.SUBMITTED, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUBMITTED: frozenset({JobState.RUNNING, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED}),
    JobState.SUCCEEDED: frozenset({JobState.DELIVERED, JobState.FAILED}),
    JobState.FAILED: frozenset({JobState.DELIVERED}),
    JobState.DELIVERED: frozenset(),
    JobState.CANCELLED: frozenset(),
}
IN_FLIGHT = (JobState.ACCEPTED, JobState.SUBMITTED, JobState.RUNNING)
FINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.DELIVERED)
UNFINISHED = (*IN_FLIGHT, JobState.SUCCEEDED, JobState.FAILED)  # still need the bot's work

# The column each state stamps with the time it was entered.
_STAMPS = {
    JobState.SUBMITTED: "submitted_at",
    JobState.RUNNING: "started_at",
    JobState.SUCCEEDED: "finished_at",
    JobState.FAILED: "finished_at",
    JobState.CANCELLED: "finished_at",
    JobState.DELIVERED: "delivered_at",
}

# A job that ends gives up its lease in the write that ends it (see paddock.leases).
_RELEASED = {"lease_owner": None, "lease_until": None}

DEFAULT_TIMEOUT = timedelta(minutes=30)
DEFAULT_ACCEPT_GRACE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Job:
    """One generation job as stored. ``request`` is the normalised request as a plain dict."""

    id: str
    guild_id: int
    channel_id: int | None
    user_id: int
    interaction_token: str | None
    token_expires_at: datetime | None
    progress_message_id: int | None
    request: dict[str, Any]
    provider: str | None
    provider_task_id: str | None
    state: JobState
    estimated_credits: int
    charged_credits: int | None
    result_url: str | None
    error: str | None
    created_at: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    delivered_at: datetime | None
    deadline_at: datetime
    updated_at: datetime
    delivery_attempts: int
    delivery_error: str | None
    idempotency_key: str | None
    submit_attempted_at: datetime | None = None  # set just before the first submit is sent
    undelivered_at: datetime | None = None  # the video reached no one; credits returned
    # provider: auto: every provider that can make it (`paddock.routing.Route` dicts);
    # None when the member (or the owner's default) named the provider.
    route: list[dict[str, Any]] | None = None

    @property
    def undelivered(self) -> bool:
        return self.undelivered_at is not None

    @property
    def in_flight(self) -> bool:
        return self.state in IN_FLIGHT

    @property
    def routed(self) -> bool:
        """Whether the bot chooses (and may change) the provider of this job."""
        return self.route is not None

    def price_at(self, provider: str) -> int:
        """What this job costs at `provider`: its route's price there, else the estimate."""
        for route in self.route or ():
            if route["provider"] == provider:
                return int(route["credits"])
        return self.estimated_credits


ATTEMPT_OUTCOMES = (
    "sent", "accepted", "refused", "unknown", "render_failed", "rendered", "skipped",
)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One event of a job's submits, as stored (see migration m011)."""

    provider: str
    outcome: str
    at: datetime
    task_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """What :meth:`JobStore.accept` did. ``duplicate`` is true for a repeated idempotency key."""

    job: Job
    reservation: Reservation
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class SweepReport:
    """Job ids the sweep failed (and refunded), and hold ids it refunded without a job."""

    never_submitted: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    resolved_stray_holds: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.never_submitted) + len(self.timed_out) + len(self.resolved_stray_holds)


_COLUMNS = [name for name in Job.__dataclass_fields__]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
_TIME_COLUMNS = {
    "submit_attempted_at",
    "undelivered_at",
    "token_expires_at",
    "created_at",
    "submitted_at",
    "started_at",
    "finished_at",
    "delivered_at",
    "deadline_at",
    "updated_at",
}


def _job(row: tuple[Any, ...]) -> Job:
    values: dict[str, Any] = dict(zip(_COLUMNS, row, strict=True))
    for name in _TIME_COLUMNS:
        values[name] = parse_timestamp(values[name])
    values["request"] = json.loads(values["request"])
    values["route"] = None if values["route"] is None else json.loads(values["route"])
    values["state"] = JobState(values["state"])
    return Job(**values)


def select_jobs(db: Database, where: str, args: list[Any]) -> list[Job]:
    """The jobs matching the SQL condition `where` (``?`` placeholders), in no order."""
    return [_job(r) for r in db.execute(f"{_SELECT} WHERE {where}", args).fetchall()]


def _get(db: Database, job_id: str) -> Job:
    row = db.execute(f"{_SELECT} WHERE id = ?", [job_id]).fetchone()
    if row is None:
        raise JobNotFound(job_id)
    return _job(row)


def _movable(db: Database, job_id: str, to: JobState) -> Job:
    """The job, if ``to`` is a legal next state for it; else :class:`InvalidTransition`."""
    job = _get(db, job_id)
    if to not in TRANSITIONS[job.state]:
        raise _refusal(job_id, job.state, to)
    return job


def _refusal(job_id: str, state: JobState, to: JobState) -> InvalidTransition:
    """AlreadyFinished when another path ended the job first, else InvalidTransition."""
    ended_first = state in FINAL and to is not JobState.DELIVERED
    return (AlreadyFinished if ended_first else InvalidTransition)(job_id, state.value, to.value)


def _transition(
    db: Database, now: datetime, job_id: str, to: JobState, **changes: Any
) -> tuple[Job, Job]:
    """Move the job to ``to`` if that is a legal next state; return (before, after).

    The UPDATE is conditional on the state read: if anything else moved the job in
    between, nothing changes and the refusal says what the job became.
    """
    before = _movable(db, job_id, to)
    at = timestamp(now)
    changes = {**changes, "state": to.value, "updated_at": at, _STAMPS[to]: at}
    assignments = ", ".join(f"{name} = :{name}" for name in changes)
    row = db.execute(
        f"UPDATE jobs SET {assignments} WHERE id = :job_id AND state = :was"
        f" RETURNING {', '.join(_COLUMNS)}",
        {**changes, "job_id": job_id, "was": before.state.value},
    ).fetchone()
    if row is None:
        raise _refusal(job_id, _get(db, job_id).state, to)
    return before, _job(row)


def _attempt(
    db: Database,
    now: datetime,
    job_id: str,
    provider: str,
    outcome: str,
    *,
    task_id: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one event of a job's submits."""
    if outcome not in ATTEMPT_OUTCOMES:
        raise ValueError(f"unknown attempt outcome {outcome!r}")
    db.execute(
        "INSERT INTO job_attempts (job_id, provider, outcome, task_id, detail, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [job_id, provider, outcome, task_id, detail, timestamp(now)],
    )


def _attempts(db: Database, job_id: str) -> list[Attempt]:
    rows = db.execute(
        "SELECT provider, outcome, at, task_id, detail FROM job_attempts WHERE job_id = ?"
        " ORDER BY id",
        [job_id],
    ).fetchall()
    return [Attempt(p, o, parse_timestamp(at), t, d) for p, o, at, t, d in rows]


def _fail(
    db: Database,
    now: datetime,
    job_id: str,
    error: str,
    charged: int,
    outcome: str | None = None,
) -> Job:
    before = _movable(db, job_id, JobState.FAILED)  # refuse before touching the hold
    if before.state is JobState.SUCCEEDED:
        # The first terminal state wins; a finished video is failed only by fail_unusable.
        raise AlreadyFinished(job_id, JobState.SUCCEEDED.value, JobState.FAILED.value)
    if outcome is not None and before.provider is not None:
        _attempt(db, now, job_id, before.provider, outcome, task_id=before.provider_task_id,
                 detail=error)
    hold = settle_in(db, now, job_id, charged) if charged else refund_in(db, now, job_id)
    _, job = _transition(
        db, now, job_id, JobState.FAILED, error=error, charged_credits=hold.charged or None
    )
    return job


def _accept(
    db: Database,
    now: datetime,
    fields: dict[str, Any],
    role_ids: tuple[int, ...],
    lease: Callable[[], dict[str, Any]] | None = None,
) -> Accepted:
    if lease is not None:  # its end counted from when the write runs, not when it queued
        fields = {**fields, **lease()}
    key = fields.get("idempotency_key")
    if key is not None:
        row = db.execute(f"{_SELECT} WHERE idempotency_key = ?", [key]).fetchone()
        if row is not None:
            job = _job(row)
            if (job.guild_id, job.user_id) != (fields["guild_id"], fields["user_id"]):
                raise ConflictingReservation(job.id, "a job of another member", "this one")
            reservation = reserve_in(
                db, now, job.id, job.guild_id, job.user_id, job.estimated_credits, role_ids
            )
            return Accepted(job, reservation, duplicate=True)
    names = list(fields)
    db.execute(
        f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})",
        fields,
    )
    # Reserving after the insert: if the member can't pay, the savepoint drops the job too.
    reservation = reserve_in(
        db,
        now,
        fields["id"],
        fields["guild_id"],
        fields["user_id"],
        fields["estimated_credits"],
        role_ids,
    )
    return Accepted(_get(db, fields["id"]), reservation)


NEVER_SUBMITTED = "The job never reached the provider; your credits were refunded."
TIMED_OUT = "The provider took too long; your credits were refunded."
UNCONFIRMED = (
    "The provider never confirmed it received the job in time; your credits were refunded."
)


def _sweep(db: Database, now: datetime, accept_grace: timedelta) -> SweepReport:
    report = SweepReport()
    cutoff = timestamp(now - accept_grace)
    # A job with a submit attempt recorded may be at the provider: not "never submitted".
    stale = db.execute(
        "SELECT id FROM jobs WHERE state = 'accepted' AND submit_attempted_at IS NULL"
        " AND created_at <= ? ORDER BY created_at",
        [cutoff],
    ).fetchall()
    for (job_id,) in stale:
        _fail(db, now, job_id, NEVER_SUBMITTED, 0)
        report.never_submitted.append(job_id)
    late = db.execute(
        "SELECT id, state FROM jobs WHERE deadline_at <= ?"
        " AND (state IN ('submitted', 'running')"
        "      OR (state = 'accepted' AND submit_attempted_at IS NOT NULL))"
        " ORDER BY created_at",
        [timestamp(now)],
    ).fetchall()
    for job_id, state in late:
        _fail(db, now, job_id, UNCONFIRMED if state == "accepted" else TIMED_OUT, 0)
        report.timed_out.append(job_id)
    # Holds no job explains: reserved without a job, or a job finished without resolving them.
    stray = db.execute(
        """
        SELECT h.job_id, j.state, j.charged_credits FROM holds h
          LEFT JOIN jobs j ON j.id = h.job_id
         WHERE h.state = 'pending'
           AND ((j.id IS NULL AND h.reserved_at <= ?)
                OR j.state IN ('succeeded', 'failed', 'delivered', 'cancelled'))
        """,
        [cutoff],
    ).fetchall()
    for job_id, state, charged in stray:
        if state in ("succeeded", "delivered") and charged is not None:
            settle_in(db, now, job_id, charged)
        else:
            refund_in(db, now, job_id)
        report.resolved_stray_holds.append(job_id)
    return report


class JobStore:
    """Jobs on a :class:`~paddock.store.Store`, with their credits held in the same ledger.

    Pass the same ``clock`` as the :class:`~paddock.ledger.Ledger` so both agree on time.
    """

    def __init__(self, store: Store, *, clock: Clock = utcnow) -> None:
        self.store = store
        self._clock = clock
        # Leases (see paddock.leases): the columns that lease a new job to the runner of
        # this process, and the check every write of a driver makes first.
        self._new_lease: Callable[[], dict[str, Any]] | None = None
        self._fence: Callable[[Database, str], None] | None = None

    def now(self) -> datetime:
        return utc(self._clock())

    def lease_new_jobs(self, lease: Callable[[], dict[str, Any]]) -> None:
        """Lease every job accepted from now on with the columns `lease()` gives, in the
        write that accepts it (the runner of this process drives it)."""
        self._new_lease = lease

    def fenced(self, fence: Callable[[Database, str], None]) -> JobStore:
        """This store for a driver: each change of a job's state first runs
        ``fence(db, job_id)`` in its transaction (it raises when the lease is lost)."""
        driven = JobStore(self.store, clock=self._clock)
        driven._new_lease, driven._fence = self._new_lease, fence
        return driven

    async def _driver_write(self, job_id: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(db, now, *args)`` in one write, behind the fence when there is one."""
        fence = self._fence

        def run(db: Database, now: datetime, *rest: Any) -> Any:
            if fence is not None:
                fence(db, job_id)
            return fn(db, now, *rest)

        return await self.store.write(run, self.now(), *args)

    async def accept(
        self,
        *,
        guild_id: int,
        user_id: int,
        request: Mapping[str, Any],
        estimated_credits: int,
        channel_id: int | None = None,
        role_ids: Iterable[int],
        provider: str | None = None,
        interaction_token: str | None = None,
        token_expires_at: datetime | None = None,
        idempotency_key: str | None = None,
        timeout: timedelta = DEFAULT_TIMEOUT,
        job_id: str | None = None,
        route: list[dict[str, Any]] | None = None,
        progress_message_id: int | None = None,
    ) -> Accepted:
        """Store a new job and hold its estimated credits, atomically.

        ``route`` (provider: auto) lists every provider that can make the job, each with
        its resolved request and price; ``provider`` is the first choice among them and
        ``estimated_credits`` should be the highest price, so any of them can be paid.

        ``role_ids`` are the member's current roles (``()`` for none), required because a
        refill due now tops the member up to the allowance those roles give.
        ``progress_message_id``: the message that will show the job, when it is known
        already (the member's placeholder), saving a write after.

        Raises the ledger's errors (:class:`~paddock.errors.InsufficientCredits`,
        :class:`~paddock.errors.LimitExceeded`, ...) and then stores nothing. A repeated
        ``idempotency_key`` returns the first job, with ``duplicate=True``.
        """
        now = self.now()
        at = timestamp(now)
        fields = {
            "id": job_id or uuid.uuid4().hex,
            "guild_id": guild_id,
            "channel_id": channel_id,
            "user_id": user_id,
            "interaction_token": interaction_token,
            "token_expires_at": None if token_expires_at is None else timestamp(token_expires_at),
            "request": json.dumps(dict(request), sort_keys=True),
            "provider": provider,
            "state": JobState.ACCEPTED.value,
            "estimated_credits": estimated_credits,
            "created_at": at,
            "updated_at": at,
            "deadline_at": timestamp(now + timeout),
            "idempotency_key": idempotency_key,
            "route": None if route is None else json.dumps(route, sort_keys=True),
            "progress_message_id": progress_message_id,
        }
        return await self.store.write(_accept, now, fields, tuple(role_ids), self._new_lease)

    async def mark_submitted(
        self, job_id: str, *, provider_task_id: str, provider: str | None = None
    ) -> Job:
        """The provider accepted the job and gave it ``provider_task_id``."""
        changes: dict[str, Any] = {"provider_task_id": provider_task_id}
        if provider is not None:
            changes["provider"] = provider

        def run(db: Database, now: datetime) -> Job:
            job = _transition(db, now, job_id, JobState.SUBMITTED, **changes)[1]
            if job.provider is not None:
                _attempt(db, now, job_id, job.provider, "accepted", task_id=provider_task_id)
            return job

        return await self._driver_write(job_id, run)

    async def mark_submitting(
        self, job_id: str, *, admit: Callable[[Database, Job], Exception | None] | None = None
    ) -> Job:
        """Record, before the request leaves, that a submit is being sent.

        After a crash, an accepted job with this mark may or may not exist at the
        provider: it is resubmitted only where the provider deduplicates by key.
        ``admit(db, job)`` runs first in the same transaction and may refuse by returning
        an exception (the limits on jobs at once and the fair line, over every process:
        `paddock.fair_slots.admit_in`): what it wrote is committed, and that is raised.
        """

        def run(db: Database, now: datetime) -> Job | Exception:
            job = _get(db, job_id)
            if job.state is not JobState.ACCEPTED:
                raise InvalidTransition(job_id, job.state.value, "submitting")
            if admit is not None and (refused := admit(db, job)) is not None:
                return refused
            db.execute(
                "UPDATE jobs SET submit_attempted_at = COALESCE(submit_attempted_at, ?),"
                " updated_at = ? WHERE id = ?",
                [timestamp(now), timestamp(now), job_id],
            )
            if job.provider is not None:
                _attempt(db, now, job_id, job.provider, "sent")
            return _get(db, job_id)

        marked = await self._driver_write(job_id, run)
        if isinstance(marked, Exception):
            raise marked
        return marked

    async def mark_running(self, job_id: str) -> Job:
        def run(db: Database, now: datetime) -> Job:
            return _transition(db, now, job_id, JobState.RUNNING)[1]

        return await self._driver_write(job_id, run)

    async def mark_succeeded(self, job_id: str, *, result_url: str, charged: int) -> Job:
        """The video is ready; charge ``charged`` credits (at most what is held)."""

        def run(db: Database, now: datetime) -> Job:
            _movable(db, job_id, JobState.SUCCEEDED)  # refuse before touching the hold
            hold = settle_in(db, now, job_id, charged)
            _, job = _transition(
                db,
                now,
                job_id,
                JobState.SUCCEEDED,
                result_url=result_url,
                charged_credits=hold.charged,
            )
            if job.provider is not None:
                _attempt(db, now, job_id, job.provider, "rendered", task_id=job.provider_task_id)
            return job

        return await self._driver_write(job_id, run)

    async def mark_failed(
        self, job_id: str, *, error: str, charged: int = 0, attempt: str | None = None
    ) -> Job:
        """The job failed; refund its credits (or charge ``charged`` if the provider billed).

        ``attempt``: how its last submit ended (``refused``, ``unknown``, ``render_failed``),
        stored with the job in the same transaction.
        """
        return await self._driver_write(job_id, _fail, job_id, error, charged, attempt)

    async def move(
        self, job_id: str, *, provider: str, outcome: str, detail: str | None = None
    ) -> Job:
        """Fail a routed job over to `provider`, one of its route, in one transaction.

        ``outcome`` is how the attempt at its current provider ended: ``refused`` (no task
        was created; the job is still ``accepted``), ``skipped`` (nothing was sent: the
        provider was cooling down when the job's turn came) or ``render_failed`` (its task failed at
        the provider for a reason not the member's; the job was ``submitted`` or
        ``running``, and goes back to ``accepted``). The job takes the route's request and
        loses its task id; the hold stays as it is. Refused (InvalidTransition): a job that
        is not routed, a provider outside its route or already tried, a second move after a
        failed render, or a job in any other state.
        """
        if outcome not in ("refused", "render_failed", "skipped"):
            raise ValueError(f"a job moves after a refused submit, a failed render or a "
                             f"skipped turn, not {outcome!r}")

        def run(db: Database, now: datetime) -> Job:
            job = _get(db, job_id)
            target = f"moved to {provider}"
            allowed = (JobState.SUBMITTED, JobState.RUNNING) if outcome == "render_failed" else (
                JobState.ACCEPTED,)
            if job.state not in allowed or job.route is None or job.provider is None:
                raise InvalidTransition(job_id, job.state.value, target)
            if outcome == "skipped" and job.submit_attempted_at is not None:
                raise InvalidTransition(job_id, job.state.value, target)
            [route] = [r for r in job.route if r["provider"] == provider] or [None]
            history = _attempts(db, job_id)
            tried = {a.provider for a in history if a.outcome == "sent"} | {job.provider}
            again = outcome == "render_failed" and any(
                a.outcome == "render_failed" for a in history)
            if route is None or provider in tried or again:
                raise InvalidTransition(job_id, job.state.value, target)
            _attempt(db, now, job_id, job.provider, outcome, task_id=job.provider_task_id,
                     detail=detail)
            db.execute(
                "UPDATE jobs SET state = 'accepted', provider = ?, request = ?,"
                " provider_task_id = NULL, submit_attempted_at = NULL, submitted_at = NULL,"
                " started_at = NULL, updated_at = ? WHERE id = ?",
                [provider, json.dumps(route["request"], sort_keys=True), timestamp(now),
                 job_id],
            )
            return _get(db, job_id)

        return await self._driver_write(job_id, run)

    async def attempts(self, job_id: str) -> list[Attempt]:
        """Every event of the job's submits, oldest first."""
        return await self.store.read(_attempts, job_id)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job that has not reached the provider yet, refunding its credits.

        Raises :class:`~paddock.errors.InvalidTransition` once a submit attempt is recorded
        (the request may have reached the provider) or the job was submitted.
        """

        def run(db: Database, now: datetime) -> Job:
            if _movable(db, job_id, JobState.CANCELLED).submit_attempted_at is not None:
                raise InvalidTransition(job_id, "being sent to the provider", "cancelled")
            _, job = _transition(db, now, job_id, JobState.CANCELLED, **_RELEASED)
            refund_in(db, now, job_id)
            return job

        return await self.store.write(run, self.now())

    async def mark_delivered(self, job_id: str, *, delivery_error: str | None = None) -> Job:
        """Delivery is over: the result (or failure) reached the member, or we gave up."""

        def run(db: Database, now: datetime) -> Job:
            return _transition(db, now, job_id, JobState.DELIVERED, delivery_error=delivery_error,
                               **_RELEASED)[1]

        return await self._driver_write(job_id, run)

    async def fail_unusable(self, job_id: str, *, error: str) -> Job:
        """The provider's "video" is not one (a web page, an empty or cut file): fail the
        succeeded job and return its charge, in one transaction."""

        def run(db: Database, now: datetime) -> Job:
            _movable(db, job_id, JobState.FAILED)
            return_charge_in(db, now, job_id, f"the video could not be used: {error}")
            return _transition(db, now, job_id, JobState.FAILED, error=error,
                               charged_credits=None)[1]

        return await self._driver_write(job_id, run)

    async def mark_undelivered(self, job_id: str, *, delivery_error: str) -> Job:
        """The video exists but Discord took it nowhere: delivery is over, the charge is
        returned (with the reason, for the moderators' log), in one transaction."""

        def run(db: Database, now: datetime) -> Job:
            job = _movable(db, job_id, JobState.DELIVERED)
            if job.state is not JobState.SUCCEEDED:
                raise InvalidTransition(job_id, job.state.value, "undelivered")
            return_charge_in(db, now, job_id, f"the video could not be posted: {delivery_error}")
            return _transition(db, now, job_id, JobState.DELIVERED, delivery_error=delivery_error,
                               charged_credits=None, undelivered_at=timestamp(now),
                               **_RELEASED)[1]

        return await self._driver_write(job_id, run)

    async def record_delivery_failure(self, job_id: str, error: str) -> Job:
        """Count a failed delivery attempt; the job stays undelivered for a retry."""

        def run(db: Database, now: datetime) -> Job:
            job = _get(db, job_id)
            if job.state not in (JobState.SUCCEEDED, JobState.FAILED):
                raise InvalidTransition(job_id, job.state.value, "retried for delivery")
            db.execute(
                "UPDATE jobs SET delivery_attempts = delivery_attempts + 1, delivery_error = ?,"
                " updated_at = ? WHERE id = ?",
                [error, timestamp(now), job_id],
            )
            return _get(db, job_id)

        return await self._driver_write(job_id, run)

    async def refresh_result_url(self, job_id: str, url: str) -> Job:
        """Replace a succeeded job's video link (the provider gave a fresh one)."""

        def run(db: Database, now: datetime) -> Job:
            job = _get(db, job_id)
            if job.state is not JobState.SUCCEEDED:
                raise InvalidTransition(job_id, job.state.value, "given a new video link")
            db.execute(
                "UPDATE jobs SET result_url = ?, updated_at = ? WHERE id = ?",
                [url, timestamp(now), job_id],
            )
            return _get(db, job_id)

        return await self._driver_write(job_id, run)

    async def set_progress_message(self, job_id: str, message_id: int) -> Job:
        def run(db: Database, now: datetime) -> Job:
            cursor = db.execute(
                "UPDATE jobs SET progress_message_id = ?, updated_at = ? WHERE id = ?",
                [message_id, timestamp(now), job_id],
            )
            if cursor.rowcount == 0:
                raise JobNotFound(job_id)
            return _get(db, job_id)

        return await self.store.write(run, self.now())

    # queries

    async def get(self, job_id: str) -> Job:
        """The job, or :class:`~paddock.errors.JobNotFound`."""
        return await self.store.read(_get, job_id)

    async def list_for_member(self, guild_id: int, user_id: int, *, limit: int = 10) -> list[Job]:
        """The member's most recent jobs on the server, newest first."""

        def run(db: Database) -> list[Job]:
            rows = db.execute(
                f"{_SELECT} WHERE guild_id = ? AND user_id = ?"
                " ORDER BY created_at DESC, id DESC LIMIT ?",
                [guild_id, user_id, limit],
            ).fetchall()
            return [_job(r) for r in rows]

        return await self.store.read(run)

    async def list_unfinished(self) -> list[Job]:
        """Jobs the bot still has work on (in flight or awaiting delivery), oldest first."""

        def run(db: Database) -> list[Job]:
            marks = ", ".join("?" for _ in UNFINISHED)
            rows = db.execute(
                f"{_SELECT} WHERE state IN ({marks}) ORDER BY created_at, id",
                [s.value for s in UNFINISHED],
            ).fetchall()
            return [_job(r) for r in rows]

        return await self.store.read(run)

    async def count_in_flight(self, guild_id: int, user_id: int | None = None) -> int:
        """Jobs accepted, submitted or running, on the server or for one member."""

        def run(db: Database) -> int:
            marks = ", ".join("?" for _ in IN_FLIGHT)
            sql = f"SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND state IN ({marks})"
            args: list[Any] = [guild_id, *(s.value for s in IN_FLIGHT)]
            if user_id is not None:
                sql += " AND user_id = ?"
                args.append(user_id)
            return int(db.execute(sql, args).fetchone()[0])

        return await self.store.read(run)

    async def sweep(
        self, now: datetime | None = None, *, accept_grace: timedelta = DEFAULT_ACCEPT_GRACE
    ) -> SweepReport:
        """Fail and refund jobs that never reached the provider or ran past their deadline.

        ``accept_grace``: how long an ``accepted`` job with no submit attempt recorded may
        wait before it counts as never submitted (the runner passes the job timeout, so
        queued jobs are swept only once they could no longer finish in time). An accepted
        job with a submit attempt is left to the runner until its deadline.

        Run it at start-up and then on a timer. One transaction: a crash mid-sweep leaves
        everything as it was.
        """
        report = await self.store.write(_sweep, utc(now or self.now()), accept_grace)
        if report.total:
            log.info(
                "sweep: %d never submitted, %d timed out, %d stray holds",
                len(report.never_submitted),
                len(report.timed_out),
                len(report.resolved_stray_holds),
            )
        return report
