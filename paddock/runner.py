"""The runner: takes accepted jobs to their provider, waits for them, hands them to delivery.

Every step is written to the job store before the next one starts, so a restart picks
each job up where it was:

- ``accepted``: waits its turn in its provider's line (:mod:`paddock.provider_line`:
  servers take turns, then members within a server, then each member's jobs in order;
  at most ``provider_slots`` jobs at a provider at once, and at most the server's
  ``member_slots``, 2 unless a moderator changes it, of one member's jobs at all
  providers together), then is submitted. Which job takes a free slot is decided in
  the database, over every process sharing it (:mod:`paddock.fair_slots`). The submit attempt
  is recorded before the request leaves; a job found after a restart with that mark
  but no task id may or may not exist at the provider, so it is resubmitted only where
  the provider deduplicates by idempotency key (the job id) and otherwise failed,
  refunded and explained. Nothing is ever submitted twice.
- ``submitted`` / ``running``: polled with hh_api's growing interval until its deadline;
  ``wake(task_id)`` polls at once (a provider callback arrived).
- ``succeeded`` / ``failed``: delivered through the `Delivery` the bot provides, retried
  with backoff, then marked delivered.

Credits follow the job store: charged when the video arrives, refunded when it fails.

A ``provider: auto`` job (one with a route, see `paddock.routing`) may change provider, one
stored step at a time (`JobStore.move`): when its turn comes at a provider that is cooling
down (nothing sent), after a submit that certainly created no task (refused, 429, 503, a
connection never made), and once after its task failed at the provider for a reason that
is not the member's. Never after a submit whose outcome is unknown, and never while a task
of it may be alive. It is charged the price of the provider that made it. A job whose
member named the provider is never moved.

Every log line about a job starts ``job=<id> member=<id> provider=<name>``, so grepping a
job's id follows its whole life (the provider's task id is logged once it has one).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal, Protocol, TypeVar

from hh_api import (
    AuthenticationError,
    HappyHorse,
    HappyHorseError,
    InvalidRequestError,
    PollPolicy,
    ProtocolError,
    ProviderUnavailableError,
    RateLimitError,
    Status,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskNotFoundError,
    TaskState,
    VideoRequest,
    WaitTimeoutError,
)
from hh_api.render_times import RenderKey
from paddock.errors import AlreadyFinished, InvalidTransition, StoreBusy, StoreUnavailable
from paddock.fair_slots import SLOTS_CHANNEL, SlotTaken, admit_in
from paddock.jobs import IN_FLIGHT, Job, JobState, JobStore
from paddock.leases import (
    DEFAULT_TTL,
    WAKES_CHANNEL,
    LeaseLost,
    Leases,
    RunnerLock,
)
from paddock.provider_line import MemberSlots, ProviderQueue
from paddock.refused_keys import RefusedKeys
from paddock.render_history import RenderHistory
from paddock.routing import Health, Route, Router
from paddock.settings_changes import CHANNEL as SETTINGS_CHANNEL
from paddock.settings_changes import LIMITS
from paddock.settings_changes import parse as parse_settings_change
from paddock.store.notifications import Subscription

log = logging.getLogger(__name__)
T = TypeVar("T")

ALL_RESTING = (
    "Every provider that can make this video is resting after errors{back}. Nothing was "
    "sent; your credits were returned. Please try again then."
)
# Words in a provider's reason that mean the member's content was the problem (moderation):
# such a job is not sent to another provider (it would be refused there too, or should be).
MODERATION = ("moderat", "policy", "safety", "sensitive", "nsfw", "inappropriate", "violat",
              "prohibit", "not allowed", "flagged")

UNKNOWN_OUTCOME = (
    "The bot stopped while sending this job, and {provider} cannot tell us whether it "
    "arrived. To be sure you are never charged twice it was not sent again; your "
    "credits were returned. Please run the command again."
)

UNCONFIRMED_SUBMIT = (
    "The connection to {provider} broke while this job was being sent, so it is not known "
    "whether it arrived. To be sure you are never charged twice it was not sent again; "
    "your credits were returned. Please run the command again."
)

STALLED = ("%s stopped unexpectedly in state %s; it is resumed from its stored state "
           "once its lease ends")
CLAIM_BATCH = 500  # jobs claimed in one write
# Seconds between tries to store that a posted job is delivered, while the database refuses.
RECORD_RETRY_FIRST = 0.25
RECORD_RETRY_MAX = 5.0
SHOWN_PLACES = 25  # jobs in line whose message shows their place as it moves
# A moving line's places are shown once it has been still this long: a burst of commands
# moves it on every join and every start, and each look at the first places costs up to
# SHOWN_PLACES edits' worth of work on the event loop.
PLACES_SETTLE = 0.25  # seconds
# Jobs on their way to a provider at once (from their turn to the provider's answer): a
# burst's jobs otherwise take each step together, a hundred callbacks at a time on the
# event loop, and the members of the next burst wait behind them for their first answer.
SENDS_AT_ONCE = 16


@dataclass(frozen=True)
class Progress:
    """Where a job stands, for its public message."""

    phase: Literal["queued", "submitted", "rendering"]
    position: int | None = None  # 1 = next to start
    started_at: float | None = None  # Unix time the provider started rendering


class DeliveryError(Exception):
    """Posting a result failed. `retry` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class VideoUnusable(DeliveryError):
    """The provider's file is not a video (a web page, empty, cut short) or its link is
    gone: the job fails with `reason` (plain words for the member) and its charge returns."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retry=False)
        self.reason = reason


class Delivery(Protocol):
    """What the bot does with a job's progress and outcome (Discord glue)."""

    async def progress(self, job: Job, progress: Progress) -> None: ...

    async def deliver(
        self, job: Job, *, earlier: bool = False,
        posting: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Post the video (succeeded) or the reason and refund (failed); raise DeliveryError.

        ``earlier``: the job finished under another process (or before a restart), which
        may have posted it already. ``posting`` is awaited just before each post goes out
        (after the download, the join and the re-encode): it raises when this process no
        longer holds the job, so that a process that lost it meanwhile posts nothing."""

    async def undelivered(self, job: Job, reason: str) -> None:
        """The outcome can't be posted: tell the member by what remains (with the video's
        link, whose credits are being returned)."""


@dataclass(frozen=True)
class RunnerSettings:
    provider_slots: int = 8  # jobs at one provider at once
    progress_every: float = 5.0  # seconds between edits of one job's message
    poll: PollPolicy | None = None  # None: the client's own
    # Jobs whose provider calls back when they end are polled only as a safety net.
    callback_poll: PollPolicy = PollPolicy(initial=30.0, factor=2.0, maximum=120.0, near=30.0)
    delivery_attempts: int = 5
    delivery_backoff: float = 2.0  # seconds, doubled per attempt
    sweep_every: float = 60.0
    job_timeout: timedelta = timedelta(minutes=30)
    lease_ttl: float = DEFAULT_TTL  # seconds; renewed every third of it (paddock.leases)
    # seconds between tries of a job whose slot is free here but taken by another process
    # (or whose turn has not come): at the latest, if no news of a slot wakes it first
    slot_retry: float = 1.0


@dataclass
class _Throttle:
    """At most one progress edit per `every` seconds per job; the latest always shows."""

    every: float
    last: float = 0.0
    pending: Progress | None = None
    timer: asyncio.Task[None] | None = field(default=None, repr=False)
    # Held while an edit is on its way, so edits reach Discord in the order they were made.
    showing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    ended: bool = False  # the job has its result: no progress edit may follow it
    shown: Progress | None = None  # the state last put on the message (or on its way)


class Runner:
    """Drives jobs from accepted to delivered. Start it once the bot can post."""

    def __init__(
        self,
        jobs: JobStore,
        hh: HappyHorse,
        delivery: Delivery,
        settings: RunnerSettings = RunnerSettings(),
        *,
        callback_url: str | None = None,
        history: RenderHistory | None = None,
        member_slots: Callable[[int], Awaitable[int | None]] | None = None,
        router: Router | None = None,
        refused_keys: RefusedKeys | None = None,
        leases: Leases | None = None,
        give_way: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`member_slots(guild_id)` reads a server's cap on one member's jobs at providers
        at once (None: no cap); without it every server has the default cap. `router`
        chooses and changes the provider of ``provider: auto`` jobs; `refused_keys` keeps
        the keys providers refused across restarts. `leases`: this process's leases on
        jobs (by default made on the job store's database with ``settings.lease_ttl``);
        every job accepted through `jobs` from now on is leased to this runner.
        `give_way` is awaited before each send and each status check: it returns once
        more urgent work (members waiting for a first answer) has gone first."""
        self.leases = leases or Leases(jobs.store, ttl=settings.lease_ttl)
        jobs.lease_new_jobs(self.leases.new_job_lease)
        self.jobs = jobs.fenced(self.leases.fence)
        self._lock = RunnerLock(jobs.store)
        self._heartbeat: asyncio.Task[None] | None = None
        self._set_aside: set[str] = set()  # held, but no longer driven here: let them lapse
        self.hh = hh
        self.router = router
        self.provider_health = router.health if router is not None else Health()
        self.refused_keys = refused_keys
        self.delivery = delivery
        self.settings = settings
        self.callback_url = callback_url
        self.history = history
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._queues: dict[str, ProviderQueue] = {}
        self._members = MemberSlots()
        self._read_member_slots = member_slots
        self._cap_reads: Counter[int] = Counter()  # reads of each server's cap started
        self._store = jobs.store
        self._settings_news: Subscription | None = None
        self._wake_news: Subscription | None = None
        self._slot_news: Subscription | None = None
        self._slot_moved: dict[str, asyncio.Event] = {}  # per provider, for jobs asking there
        self._beat_now = asyncio.Event()  # renew the leases (and take the wakes) now
        self._wakes: dict[str, asyncio.Event] = {}
        self._throttles: dict[str, _Throttle] = {}
        self._placed: dict[str, int] = {}  # the last place in line shown (or on its way)
        self._places_due: dict[str, asyncio.TimerHandle] = {}  # provider -> its next look
        self._sends = asyncio.Semaphore(SENDS_AT_ONCE)
        self._give_way = give_way
        self._sending: set[str] = set()  # jobs holding one of `_sends`
        self._waiting: dict[str, Job] = {}  # jobs in a provider's line, as accepted
        self._early_wakes: OrderedDict[str, None] = OrderedDict()  # task ids woken too soon
        self._background: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._accepting = False
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> int:
        """Sweep what is past its deadline, then resume every unfinished job. Returns how many."""
        # A moderator's /quota limits in any process (PostgreSQL) changes the caps here.
        self._settings_news = await self._store.listen(
            SETTINGS_CHANNEL, self._settings_changed, self._settings_missed)
        # A provider's callback that reached another process: polled at once if driven here.
        self._wake_news = await self._store.listen(
            WAKES_CHANNEL, self._woken_elsewhere, self._beat_now.set)
        # A slot taken or freed at a provider by any process: the jobs asking there try again.
        self._slot_news = await self._store.listen(
            SLOTS_CHANNEL, self._slots_moved, self._every_slot_moved)
        if self.history is not None:
            learned = await self.history.load_into(self.hh.render_times)
            self.hh.render_times.on_record = self._keep_render_time
            log.info("render times: %d kept from earlier runs", learned)
        if self.refused_keys is not None:
            configs = {name: spec.config for name, spec in self.hh.providers.items()}
            for refused in await self.refused_keys.still_refused(configs):
                self.provider_health.key_refused(refused.provider, refused.reason)
                log.error("provider=%s refused this key at %s (%s); auto routing skips it "
                          "until %s_API_KEY is replaced", refused.provider,
                          refused.at.isoformat(timespec="seconds"), refused.reason,
                          refused.provider.upper())
        await self.sweep()
        # Alone on the file: every lease in it is a dead process's, take them all back now.
        alone = await self._lock.acquire()
        unfinished: list[Job] = []
        try:
            while True:
                batch = await self.leases.claim_lapsed(every_lease=alone, limit=CLAIM_BATCH)
                unfinished += batch
                if len(batch) < CLAIM_BATCH:
                    break
        finally:
            await self._lock.share()
        for job in unfinished:
            self._spawn(job, resumed=True)
        self.leases.takeovers += len(unfinished)
        self._accepting = True
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="paddock sweep")
        self._heartbeat = asyncio.create_task(self._keep_leases(), name="paddock leases")
        log.info("runner started; resumed %d unfinished job(s)%s; lease owner %s",
                 len(unfinished), "" if alone else " (others' jobs once their leases end)",
                 self.leases.owner)
        return len(unfinished)

    async def stop(self) -> None:
        """Stop taking jobs and cancel the work in memory; the database keeps every job."""
        self._accepting = False
        for news in (self._settings_news, self._wake_news, self._slot_news):
            if news is not None:
                news.close()
        tasks = [t for t in (self._sweeper, self._heartbeat, *self._tasks.values())
                 if t is not None]
        tasks += [t.timer for t in self._throttles.values() if t.timer is not None]
        tasks += self._background
        for task in tasks:
            task.cancel()
        for look in self._places_due.values():
            look.cancel()
        self._places_due.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._idle.set()
        try:
            released = await self.leases.release_all()
        except Exception:  # the leases end by themselves after their time
            log.warning("could not release this process's leases", exc_info=True)
        else:
            log.info("released %d lease(s)", released)
        await self._lock.release()
        log.info("runner stopped; unfinished jobs resume at the next start")

    @property
    def accepting(self) -> bool:
        return self._accepting

    def health(self) -> str | None:
        """None while the runner takes jobs and its sweeper runs; otherwise what is wrong."""
        if not self._accepting:
            return "the runner is not running (not started yet, or stopped)"
        for name, task in (("sweeper", self._sweeper), ("lease heartbeat", self._heartbeat)):
            if task is None or task.done():
                error = None
                if task is not None and not task.cancelled():
                    error = task.exception()
                return f"the {name} stopped: {error!r}" if error else f"the {name} stopped"
        return None

    # -- what the bot calls -------------------------------------------------------------

    def enqueue(self, job: Job) -> int | None:
        """Start driving a newly accepted job; returns its place in line (None: no wait)."""
        if not self._accepting:
            raise RuntimeError("the runner is not running")
        return self._spawn(job)

    def in_flight(self) -> int:
        """Jobs being driven: waiting in line, at a provider, or being delivered."""
        return len(self._tasks)

    def queue_lengths(self) -> dict[str, int]:
        """Jobs waiting for a slot, per provider that has had a job since the start."""
        return {name: len(queue.line) for name, queue in self._queues.items()}

    async def wait_idle(self) -> None:
        """Return once no job is being driven (all delivered, cancelled or put down)."""
        await self._idle.wait()

    def wake(self, task_id: str) -> bool:
        """Poll `task_id` at once (a provider said it finished); False if nobody waits on it
        yet, in which case the wake is kept for a while: a callback can arrive before the
        runner has stored the task id its submit returned."""
        if self.wake_here(task_id):
            return True
        # Another process may drive it: keep the wake where its heartbeat finds it.
        self._in_background(self._record_wake(task_id))
        return False

    def wake_here(self, task_id: str) -> bool:
        """Poll `task_id` at once if this process drives it (else keep the wake a while)."""
        event = self._wakes.get(task_id)
        if event is None:
            self._early_wakes[task_id] = None
            while len(self._early_wakes) > 10_000:
                self._early_wakes.popitem(last=False)
            return False
        event.set()
        return True

    async def _record_wake(self, task_id: str) -> None:
        try:
            await self.leases.record_wake(task_id)
        except Exception:  # the owner still polls it on its own schedule
            log.warning("could not record the callback of task=%s for its owner", task_id,
                        exc_info=True)

    async def refresh_member_slots(self, guild_id: int) -> None:
        """Read the server's cap on one member's jobs at once again (a moderator changed
        it with /quota limits), and start what the new cap lets start."""
        if self._read_member_slots is None:
            return
        self._cap_reads[guild_id] += 1
        started = self._cap_reads[guild_id]
        try:
            cap = await self._read_member_slots(guild_id)
        except Exception:  # the cap in memory (or the default) stays; jobs still move
            log.warning("could not read the member job cap of guild=%s", guild_id,
                        exc_info=True)
            return
        if started != self._cap_reads[guild_id]:
            return  # a later read (after a later change) decides
        self._members.caps[guild_id] = cap
        self._advance_lines()

    def _woken_elsewhere(self, task_id: str) -> None:
        """Another process recorded a callback for `task_id`: poll it now if driven here
        (else its owner does; a task not driven yet finds the record at its heartbeat)."""
        if task_id in self._wakes:
            log.info("task=%s called back at another process (notified); checking its "
                     "status now", task_id)
            self.wake_here(task_id)

    def _settings_changed(self, payload: str) -> None:
        """A process changed a server's limits: read its member cap again, if it is kept."""
        change = parse_settings_change(payload)
        if change is not None and change[1] == LIMITS and change[0] in self._members.caps:
            self._in_background(self.refresh_member_slots(change[0]))

    def _settings_missed(self) -> None:
        """Changes may have gone unheard (the listener reconnected): read every cap again."""
        for guild_id in list(self._members.caps):
            self._in_background(self.refresh_member_slots(guild_id))

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job still waiting in line, refunding it.

        Raises InvalidTransition when the job is already being sent or is at the provider:
        the job store refuses once a submit is recorded, in the transaction that cancels,
        so a cancel and a submit never both happen, in this process or across processes.
        The cancel is stored first and the job leaves its line only then, so a failed
        write leaves it waiting and driven, never orphaned. A job waiting in another
        process's line (or for a slot another process holds) finds itself cancelled when
        it next reads or writes its state.
        """
        job = await self.jobs.get(job_id)
        if job.state is not JobState.ACCEPTED:
            raise InvalidTransition(job_id, job.state.value, "cancelled")
        cancelled = await self.jobs.cancel(job_id)
        queue = self._queues.get(job.provider or "")
        if queue is not None and queue.leave(job_id):
            task = self._tasks.get(job_id)
            if task is not None:
                task.cancel()
        log.info("%s cancelled while queued; %d credits refunded", job_fields(cancelled),
                 cancelled.estimated_credits)
        return cancelled

    # -- driving one job ------------------------------------------------------------------

    def _queue(self, provider: str) -> ProviderQueue:
        if provider not in self._queues:
            self._queues[provider] = ProviderQueue(
                self.settings.provider_slots, lambda: self._queue_moved(provider),
                members=self._members, on_freed=self._advance_lines,
            )
        return self._queues[provider]

    def _advance_lines(self) -> None:
        """A member slot came free or a cap changed: every provider's line may move."""
        for queue in self._queues.values():
            queue.advance()
        self._every_slot_moved()

    def _slots_moved(self, provider: str) -> None:
        """A slot at `provider` was taken or freed, or a job stopped asking for one: the
        jobs asking there (told to wait) try again."""
        moved = self._slot_moved.pop(provider, None)
        if moved is not None:
            moved.set()

    def _every_slot_moved(self) -> None:
        for provider in list(self._slot_moved):
            self._slots_moved(provider)

    def _spawn(self, job: Job, *, resumed: bool = False) -> int | None:
        """Drive `job`; returns its place in line if it waits for a slot."""
        if job.id in self._tasks:
            return None
        self._set_aside.discard(job.id)
        position = None
        if job.state is JobState.ACCEPTED:
            assert job.provider is not None
            position = self._queue(job.provider).join(job.id, job.guild_id, job.user_id)
            self._waiting[job.id] = job
        elif job.state in (JobState.SUBMITTED, JobState.RUNNING):
            assert job.provider is not None
            self._queue(job.provider).occupy(job.id, job.guild_id, job.user_id)
        if resumed:
            log.info("%s resumed in state %s", job_fields(job), job.state.value)
        if job.state in IN_FLIGHT and job.guild_id not in self._members.caps:
            self._members.caps[job.guild_id] = self._members.default  # until it is read
            self._in_background(self.refresh_member_slots(job.guild_id))
        task = asyncio.create_task(self._drive(job, resumed=resumed), name=f"job {job.id}")
        self._tasks[job.id] = task
        self._idle.clear()
        task.add_done_callback(lambda done: self._finished(job.id, done))
        return position

    def _finished(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
        if not self._tasks:
            self._idle.set()

    async def _drive(self, job: Job, *, resumed: bool = False) -> None:
        # Finished before this process took it: an earlier driver may have posted it.
        earlier = resumed and job.state in (JobState.SUCCEEDED, JobState.FAILED)
        try:
            if resumed and job.state is JobState.SUCCEEDED:
                job = await self._fresh_link(job)
            if job.state is JobState.ACCEPTED:
                job = await self._submit(job)
            elif job.state in (JobState.SUBMITTED, JobState.RUNNING):
                provider = job.provider or ""
                try:
                    job = await self._await_result(job)
                finally:
                    self._queue(provider).release(job.id)
                if job.state is JobState.ACCEPTED:  # moved on after its render failed
                    self._line_up(job)
                    job = await self._submit(job)
            if job.state in (JobState.SUCCEEDED, JobState.FAILED):
                await self._end_progress(job.id)
                await self._deliver(job, earlier=earlier)
        except asyncio.CancelledError:
            raise
        except LeaseLost as lost:
            _log_lost(job, lost)
        except InvalidTransition as first:
            # Another path ended the job while this one was on its way (the sweep failed it
            # past its deadline while its submit was still out): that outcome stands, and
            # nobody else will post it, since the sweep leaves jobs driven here alone.
            job = await self.jobs.get(job.id)
            if job.state is JobState.CANCELLED:  # cancelled before its submit was stored
                log.info("%s was cancelled before it was sent", job_fields(job))
                return
            if job.state not in (JobState.SUCCEEDED, JobState.FAILED):
                log.exception(STALLED, job_fields(job), job.state.value)
                self._stalled(job)
                return
            log.warning("%s was already %s when this went on to %s; that outcome stands",
                        job_fields(job), first.current, first.wanted)
            await self._end_progress(job.id)
            try:
                await self._deliver(job, earlier=earlier)
            except LeaseLost as lost:
                _log_lost(job, lost)
        except Exception:
            # A bug or a database fault: the job stays as stored, and its lease runs out.
            log.exception(STALLED, job_fields(job), job.state.value)
            self._stalled(job)
        finally:
            self._forget(job.id)

    def _stalled(self, job: Job) -> None:
        """Nobody drives the job here any more: stop renewing its lease, so that once it
        ends the job is taken over and resumed from its stored state (by this process or
        another), as after a restart."""
        self._set_aside.add(job.id)

    async def _submit(self, job: Job) -> Job:
        """Wait for a slot, send the job, wait for its result; for a routed job, move on to
        the next provider where that is safe (see the module docstring)."""
        while True:
            assert job.provider is not None
            queue = self._queue(job.provider)
            await queue.wait_turn(job.id)
            self._waiting.pop(job.id, None)
            self._placed.pop(job.id, None)
            try:
                if self._give_way is not None:
                    await self._give_way()
                await self._sends.acquire()
                self._sending.add(job.id)
                job = await self._send(job.id, job.provider)
            finally:
                self._sent(job.id)
                queue.release(job.id)
            if job.state is not JobState.ACCEPTED:
                return job
            self._line_up(job)  # moved to another provider: wait for a slot there

    async def _send(self, job_id: str, provider: str) -> Job:
        """Send the job to `provider` (its slot taken) and wait for the result; returns the
        job finished, or ``accepted`` at the next provider if it moved on."""
        job = await self.jobs.get(job_id)
        if job.state is not JobState.ACCEPTED:  # cancelled or swept while it waited
            log.info("%s was %s while it waited in line; not sent", job_fields(job),
                     job.state.value)
            return job
        idempotent = self.hh.provider(provider).idempotent_submit
        if job.submit_attempted_at is not None and not idempotent:
            log.warning("%s submit outcome unknown after a restart; refunding", job_fields(job))
            return await self.jobs.mark_failed(
                job.id, error=UNKNOWN_OUTCOME.format(provider=self._title(provider)),
                attempt="unknown",
            )
        health = self.provider_health
        if job.routed and job.submit_attempted_at is None and not health.admit(provider):
            return await self._move_on(job, "skipped", f"{provider} is cooling down")
        # A send before a restart (HiAPI, keyed) may have made a task: never move then.
        uncertain = job.submit_attempted_at is not None
        spare = job.routed and not uncertain and await self._spare_provider(job)
        job = await self._mark_submitting(job)
        callback = self.callback_url if provider == "hiapi" else None  # HiAPI only
        try:
            while True:
                try:
                    submission = await self.hh.submit(
                        provider, VideoRequest.from_dict(job.request),
                        idempotency_key=job.id, callback_url=callback,
                        # with another provider to go to, a 429 moves the job at once
                        wait_on_rate_limit=not spare or uncertain,
                    )
                    break
                except (SubmitOutcomeUnknownError, RateLimitError,
                        ProviderUnavailableError) as error:
                    if not idempotent or not (
                            uncertain or isinstance(error, SubmitOutcomeUnknownError)):
                        raise
                    uncertain = True
                    # The task may exist (HiAPI may still be making it): the same key
                    # finds it, so send again until the sweep ends the job at its deadline.
                    # A later refusal does not make it certain that no task exists.
                    pause = (self.settings.poll or self.hh.poll).maximum
                    log.warning("%s submit outcome unknown; sending it again with the "
                                "same key in %.2f s: %s", job_fields(job), pause,
                                error.for_log())
                    self._sent(job.id)  # no other job waits for this one's retries
                    await asyncio.sleep(pause)
                    job = await self.jobs.get(job.id)
                    if job.state is not JobState.ACCEPTED:
                        return job  # swept past its deadline, and refunded
        except SubmitOutcomeUnknownError as error:
            await self._submit_failed(provider, error)
            log.warning("%s failed, refunded: %s", job_fields(job), error.for_log())
            return await self.jobs.mark_failed(
                job.id, error=UNCONFIRMED_SUBMIT.format(provider=self._title(provider)),
                attempt="unknown",
            )
        except HappyHorseError as error:
            await self._submit_failed(provider, error)
            certain = error.created_nothing and not uncertain
            if job.routed and certain and not _members_fault(error):
                return await self._move_on(job, "refused", _plain(error, self._title(provider)))
            _log_failure(job, "submit refused; failed and refunded", error)
            return await self.jobs.mark_failed(
                job.id, error=_plain(error, self._title(provider)),
                attempt="refused" if certain else "unknown",
            )
        self.provider_health.submit_succeeded(provider)
        task_id = submission.task_id
        job = await self._store_after(
            job, lambda: self.jobs.mark_submitted(job.id, provider_task_id=task_id),
            lambda stored: stored.provider_task_id == task_id)
        self._sent(job.id)
        log.info("%s submitted as task=%s", job_fields(job), submission.task_id)
        await self._progress(job, Progress("submitted"))
        return await self._await_result(job)

    async def _mark_submitting(self, job: Job) -> Job:
        """Mark the job as being sent once the database lets it go: a slot is free over
        every process sharing it, and the job is first in the fair line of every process's
        jobs asking there (`paddock.fair_slots`). Until then it keeps its place here and
        asks again when a slot moves (or after ``slot_retry`` at the latest)."""
        said = False
        while True:
            assert job.provider is not None
            moved = self._slot_moved.setdefault(job.provider, asyncio.Event())
            admit = functools.partial(
                admit_in, owner=self.leases.owner, slots=self.settings.provider_slots,
                member_cap=self._members.cap(job.guild_id), clock=self.leases.clock)
            try:
                return await self.jobs.mark_submitting(job.id, admit=admit)
            except SlotTaken as taken:
                if not said:
                    log.info("%s waits for a slot taken by another process: %s",
                             job_fields(job), taken.why)
                    said = True
            self._sent(job.id)  # waiting for a slot elsewhere: let the others go
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(moved.wait(), self.settings.slot_retry)

    def _sent(self, job_id: str) -> None:
        """The job's send is over (or waits for something else): another may go."""
        if job_id in self._sending:
            self._sending.discard(job_id)
            self._sends.release()

    async def _spare_provider(self, job: Job) -> bool:
        """Whether a routed job has another provider to go to if this one refuses it."""
        assert job.route is not None and self.router is not None
        tried = {a.provider for a in await self.jobs.attempts(job.id) if a.outcome == "sent"}
        routes = [Route.from_dict(r) for r in job.route]
        return self.router.first_usable(routes, tried={*tried, job.provider or ""}) is not None

    def _line_up(self, job: Job) -> None:
        """A job moved to another provider takes a place in that provider's line."""
        assert job.provider is not None
        self._queue(job.provider).join(job.id, job.guild_id, job.user_id)
        self._waiting[job.id] = job

    async def _move_on(self, job: Job, outcome: str, why: str) -> Job:
        """Move a routed job to its next provider, or fail and refund it if none is left.

        Returns the moved job (``accepted``, at its new provider, not yet in line) or
        the failed one. The caller lines the moved job up (after releasing its slot).
        """
        assert job.provider is not None and job.route is not None and self.router is not None
        was = job.provider
        tried = {a.provider for a in await self.jobs.attempts(job.id) if a.outcome == "sent"}
        routes = [Route.from_dict(r) for r in job.route]
        following = self.router.first_usable(routes, tried={*tried, was})
        if following is None:
            back = self.router.soonest_back(routes)
            log.warning("%s no other provider can take it (%s); failed and refunded",
                        job_fields(job), why)
            if outcome == "skipped":
                words = f" (back in about {back:.0f} s)" if back else ""
                return await self._failed(job, ALL_RESTING.format(back=words))
            said = why if outcome == "refused" else (
                f"{self._title(was)} could not make this video: {why}.")
            return await self._failed(job, f"{said} No other provider could take it; your "
                                           f"credits were returned.",
                                      attempt="render_failed" if outcome == "render_failed"
                                      else "refused")
        moved = await self.jobs.move(job.id, provider=following.provider, outcome=outcome,
                                     detail=why)
        if outcome != "skipped":
            self.router.failed_over(was)
        log.info("%s moved from %s to %s after %s: %s", job_fields(moved), was,
                 following.provider, outcome.replace("_", " "), why)
        return moved

    async def _submit_failed(self, provider: str, error: HappyHorseError) -> None:
        """What a failed submit says about the provider's health."""
        if isinstance(error, AuthenticationError):
            self.provider_health.key_refused(provider, str(error))
            log.error("provider=%s refused its key; auto routing skips it until %s_API_KEY "
                      "is replaced and the bot restarted", provider, provider.upper())
            key = self.hh.provider(provider).config.api_key
            if self.refused_keys is not None and key:
                await self.refused_keys.remember(provider, key, str(error))
        elif isinstance(error, (RateLimitError, ProviderUnavailableError)):
            hint = error.retry_after if isinstance(error, RateLimitError) else None
            seconds = self.provider_health.submit_failed(provider, hint)
            log.warning("provider=%s cooling down for %.0f s after: %s", provider, seconds,
                        error.for_log())
        else:  # the member's request, not the provider's health: let another job probe
            self.provider_health.probe_abandoned(provider)

    async def _await_result(self, job: Job) -> Job:
        assert job.provider is not None and job.provider_task_id is not None
        task_id = job.provider_task_id
        wake = self._wakes.setdefault(task_id, asyncio.Event())
        if self._early_wakes.pop(task_id, False) is None:
            wake.set()
        current = job

        async def on_update(state: TaskState) -> None:
            nonlocal current
            if state.status is not Status.QUEUED and current.state is JobState.SUBMITTED:
                current = await self.jobs.mark_running(job.id)
                log.info("%s rendering (task=%s)", job_fields(job), task_id)
            if state.status is Status.RUNNING:
                started = current.started_at.timestamp() if current.started_at else time.time()
                await self._progress(current, Progress("rendering", started_at=started))

        remaining = (job.deadline_at - self.jobs.now()).total_seconds()
        try:
            calls_back = self.callback_url is not None and job.provider == "hiapi"
            state = await self.hh.wait(
                job.provider, task_id, timeout=max(remaining, 0.0),
                poll=self.settings.callback_poll if calls_back else self.settings.poll,
                on_update=on_update, wake=wake,
                request=VideoRequest.from_dict(job.request), submitted_at=job.submitted_at,
                before_check=self._give_way,
            )
            if current.state is JobState.SUBMITTED:
                current = await self.jobs.mark_running(job.id)
            assert state.video_url is not None
            self.provider_health.render_succeeded(job.provider)
            done = await self.jobs.mark_succeeded(
                job.id, result_url=state.video_url, charged=job.price_at(job.provider)
            )
            log.info("%s succeeded (task=%s); %d credits charged, %d returned", job_fields(job),
                     task_id, done.charged_credits or 0,
                     job.estimated_credits - (done.charged_credits or 0))
            return done
        except TaskFailedError as error:
            log.info("%s failed at the provider (task=%s): %s", job_fields(job), task_id,
                     error.reason)
            if not _members_fault(error):
                self.provider_health.render_failed(job.provider)
                if job.routed and not await self._failed_render_before(job):
                    current = await self.jobs.get(job.id)
                    if current.state in (JobState.SUBMITTED, JobState.RUNNING):
                        return await self._move_on(current, "render_failed", error.reason)
            return await self._failed(job, f"{self._title(job.provider)} could not make this "
                                           f"video: {error.reason}", attempt="render_failed")
        except WaitTimeoutError:
            minutes = self.settings.job_timeout.total_seconds() / 60
            log.warning("%s timed out after %.0f minutes (task=%s)", job_fields(job), minutes,
                        task_id)
            return await self._failed(
                job, f"{self._title(job.provider)} did not finish within {minutes:.0f} minutes."
            )
        except HappyHorseError as error:
            _log_failure(job, f"status checks failed (task={task_id})", error)
            return await self._failed(job, _plain(error, self._title(job.provider)))
        except AlreadyFinished as first:
            # The sweep failed it (past its deadline) as the provider answered: the first
            # final state stands, with its refund; what is left is to deliver it.
            log.warning("%s answered by the provider (task=%s) after it was already %s; "
                        "that outcome stands", job_fields(job), task_id, first.current)
            return await self.jobs.get(job.id)
        finally:
            self._wakes.pop(task_id, None)

    async def _fresh_link(self, job: Job) -> Job:
        """A video found finished but not posted after a restart: its link may have expired
        (or, for the demo, moved), so ask the provider once for the current one."""
        if job.provider is None or job.provider_task_id is None:
            return job
        try:
            state = await self.hh.status(job.provider, job.provider_task_id)
        except HappyHorseError as error:
            log.warning("%s could not refresh the video link; using the stored one: %s",
                        job_fields(job), error.for_log())
            return job
        if state.status is not Status.SUCCEEDED or state.video_url in (None, job.result_url):
            return job
        log.info("%s video link refreshed after the restart", job_fields(job))
        return await self.jobs.refresh_result_url(job.id, state.video_url)

    async def _failed_render_before(self, job: Job) -> bool:
        """Whether a task of this job already failed at a provider (it moves only once)."""
        return any(a.outcome == "render_failed" for a in await self.jobs.attempts(job.id))

    async def _failed(self, job: Job, reason: str, *, attempt: str | None = None) -> Job:
        try:
            failed = await self.jobs.mark_failed(job.id, error=reason, attempt=attempt)
        except AlreadyFinished as first:
            log.info("%s was already %s (the sweep failed it first); that outcome stands",
                     job_fields(job), first.current)
            return await self.jobs.get(job.id)
        log.info("%s failed; %d credits refunded", job_fields(job), failed.estimated_credits)
        return failed

    async def _deliver(self, job: Job, *, earlier: bool = False) -> None:
        """Post the outcome; never leave a member charged for a video they did not get."""
        delay = self.settings.delivery_backoff
        attempt = 0
        while attempt < self.settings.delivery_attempts:
            attempt += 1
            # A post cannot be fenced by a write: renew the lease before the download and
            # again just before the post itself (after a re-encode that may take longer
            # than a lease), so a process that lost the job meanwhile posts nothing.
            await self._confirm(job)
            try:
                await self.delivery.deliver(job, earlier=earlier,
                                            posting=functools.partial(self._confirm, job))
            except LeaseLost:
                raise
            except VideoUnusable as error:
                log.warning("%s the provider's video is unusable; failing and returning its "
                            "credits: %s", job_fields(job), error)
                job = await self.jobs.fail_unusable(job.id, error=error.reason)
                attempt = 0  # now deliver the failure message
            except Exception as failure:  # a DeliveryError, or see _unforeseen
                error = (failure if isinstance(failure, DeliveryError)
                         else _unforeseen(job, failure))
                if not error.retry or attempt == self.settings.delivery_attempts:
                    log.error("%s delivery given up after %d attempt(s): %s", job_fields(job),
                              attempt, error)
                    await self._give_up(job, str(error))
                    return
                log.warning("%s delivery attempt %d failed, retrying: %s", job_fields(job),
                            attempt, error)
                job = await self.jobs.record_delivery_failure(job.id, str(error))
                await asyncio.sleep(delay)
                delay *= 2
            else:
                await self._record_delivered(job)
                log.info("%s delivered (%s)", job_fields(job), job.state.value)
                return

    async def _confirm(self, job: Job) -> None:
        """Renew the job's lease before a post (`Leases.confirm`), again while the database
        refuses (busy, unreachable): the lease stays this process's until another takes it,
        and setting the job aside would hold its video back until the lease ran out."""
        await self._while_refused(job, lambda: self.leases.confirm(job.id),
                                  "renewing its lease before the post")

    async def _record_delivered(self, job: Job) -> None:
        """The outcome is posted: store that (see `_store_after`). Giving up would leave the
        job unfinished with its lease unrenewed, and its next driver would post it again
        whenever the post is no longer among the channel's latest messages."""
        await self._store_after(job, lambda: self.jobs.mark_delivered(job.id),
                                lambda stored: stored.state is JobState.DELIVERED)

    async def _store_after(
        self, job: Job, write: Callable[[], Awaitable[Job]], stored: Callable[[Job], bool]
    ) -> Job:
        """Store what was done outside the database and cannot be undone (a post went out,
        a provider took the job), trying again for as long as the database refuses (busy,
        unreachable) and this process holds the job: were this driver to stop, the next
        one would do it again or, unable to tell, give the member's credits back for a
        video being made. ``stored`` tells a write whose COMMIT's answer was lost but
        which went through."""
        unsure = False  # a COMMIT whose answer was lost may have stored it already

        async def attempt() -> Job:
            nonlocal unsure
            try:
                return await write()
            except StoreUnavailable:
                unsure = True
                raise

        try:
            return await self._while_refused(job, attempt, "storing what was done")
        except (LeaseLost, InvalidTransition):
            if unsure:
                now = await self.jobs.get(job.id)
                if stored(now):
                    return now
            raise

    async def _while_refused(self, job: Job, act: Callable[[], Awaitable[T]], doing: str) -> T:
        """``act()``, again while the database refuses it (busy, unreachable): after 0.25 s,
        doubling up to 5 s."""
        delay = RECORD_RETRY_FIRST
        while True:
            try:
                return await act()
            except (StoreBusy, StoreUnavailable) as error:
                log.warning("%s %s failed (%s); trying again in %.2f s", job_fields(job), doing,
                            type(error).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECORD_RETRY_MAX)

    async def _give_up(self, job: Job, reason: str) -> None:
        """Nothing could be posted: a finished video's credits come back first (a failed
        job's already did), then the member is told by what remains."""
        if job.state is JobState.SUCCEEDED:
            await self.jobs.mark_undelivered(job.id, delivery_error=reason)
            log.warning("%s undelivered; %d credits returned", job_fields(job),
                        job.charged_credits or 0)
        else:
            await self.jobs.mark_delivered(job.id, delivery_error=reason)
        try:
            await self.delivery.undelivered(job, reason)
        except Exception:  # the credits are back; only the telling failed
            log.warning("%s could not tell the member the outcome was not posted",
                        job_fields(job), exc_info=True)

    # -- progress ---------------------------------------------------------------------------

    async def _progress(self, job: Job, progress: Progress) -> None:
        throttle = self._throttles.setdefault(job.id, _Throttle(self.settings.progress_every))
        if throttle.ended:
            return
        if progress == throttle.shown:  # already on the message: newer than anything held
            throttle.pending = None
            return
        now = time.monotonic()
        if now - throttle.last >= throttle.every and throttle.timer is None:
            throttle.last, throttle.shown = now, progress
            async with throttle.showing:
                await self._show(job, progress)
            return
        throttle.pending = progress
        if throttle.timer is None:
            wait = throttle.every - (now - throttle.last)
            throttle.timer = asyncio.create_task(self._show_later(job, throttle, wait))

    async def _show_later(self, job: Job, throttle: _Throttle, wait: float) -> None:
        await asyncio.sleep(max(wait, 0.0))
        throttle.timer = None
        if throttle.pending is not None and not throttle.ended and job.id in self._tasks:
            progress, throttle.pending = throttle.pending, None
            throttle.last, throttle.shown = time.monotonic(), progress
            async with throttle.showing:
                await self._show(job, progress)

    async def _end_progress(self, job_id: str) -> None:
        """No progress edit after this; wait for the one on its way, if any, so that it
        cannot land on the job message after the result's."""
        throttle = self._throttles.get(job_id)
        if throttle is None:
            return
        throttle.ended = True
        throttle.pending = None
        async with throttle.showing:
            pass

    async def _show(self, job: Job, progress: Progress) -> None:
        try:
            if job.progress_message_id is None:  # the cog may have stored it since
                job = await self.jobs.get(job.id)
            await self.delivery.progress(job, progress)
        except Exception:
            log.warning("%s progress update failed", job_fields(job), exc_info=True)

    def _queue_moved(self, provider: str) -> None:
        """The line moved: show the new places once it has settled. In a burst the line
        moves on every join and every start, shifting each place shown by one each time;
        one look after `PLACES_SETTLE` shows where each job ended up."""
        if provider not in self._places_due:
            self._places_due[provider] = asyncio.get_running_loop().call_later(
                PLACES_SETTLE, self._show_places, provider)

    def _show_places(self, provider: str) -> None:
        """Show the new places in line: only the first `SHOWN_PLACES` move often enough to
        matter, and editing every message of a long line would hit Discord's rate limits."""
        del self._places_due[provider]
        queue = self._queues[provider]
        for position, job_id in enumerate(queue.places(SHOWN_PLACES), start=1):
            if position > SHOWN_PLACES:
                break
            job = self._waiting.get(job_id)
            # a place already asked for needs no task
            if job is not None and job_id in self._tasks and self._placed.get(job_id) != position:
                self._placed[job_id] = position
                self._in_background(self._progress(job, Progress("queued", position=position)))

    def _in_background(self, work: Coroutine[object, object, None]) -> None:
        """Run `work` without waiting for it; `stop` cancels what is still running."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _forget(self, job_id: str) -> None:
        self._waiting.pop(job_id, None)
        self._placed.pop(job_id, None)
        throttle = self._throttles.pop(job_id, None)
        if throttle is not None and throttle.timer is not None:
            throttle.timer.cancel()

    def _keep_render_time(self, key: RenderKey, after: float, done_by: float) -> None:
        self._in_background(self._store_render_time(key, after, done_by))

    async def _store_render_time(self, key: RenderKey, after: float, done_by: float) -> None:
        assert self.history is not None
        try:
            await self.history.add(key, after, done_by)
        except Exception:  # only the next start's polling is less sharp; the job is fine
            log.warning("could not keep a render time for %s", key, exc_info=True)

    # -- the sweep --------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Fail and refund what is past its deadline or never sent (on a timer, and at
        start); a failed job nobody drives is handed to delivery."""
        report = await self.jobs.sweep(accept_grace=self.settings.job_timeout)
        for job_id in (*report.never_submitted, *report.timed_out):
            job = await self.jobs.get(job_id)
            log.warning("%s failed by the sweep (past its deadline or never sent); refunded",
                        job_fields(job))
            if job_id not in self._tasks and self._accepting:
                # Its failure is posted by whoever holds it; by this process if nobody does.
                claimed = await self.leases.claim(job_id)
                if claimed is not None:
                    self._spawn(claimed)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_every)
            try:
                await self.sweep()
            except Exception:
                log.exception("the sweep failed; trying again in %.0f s",
                              self.settings.sweep_every)

    # -- leases ------------------------------------------------------------------------

    async def _keep_leases(self) -> None:
        every = self.leases.ttl / 3
        while True:
            # Renew every third of the lease time; sooner when another process's lease
            # ends before that, so its jobs are taken over as soon as it has ended.
            pause = every
            if self.leases.next_lapse is not None:
                pause = min(every, max(self.leases.next_lapse - self.leases.clock(), 0.0) + 0.05)
            with contextlib.suppress(TimeoutError):  # or at once, when wakes were missed
                await asyncio.wait_for(self._beat_now.wait(), pause)
            self._beat_now.clear()
            try:
                await self.heartbeat()
            except Exception:
                log.exception("renewing the leases failed; trying again in %.1f s", every)

    async def heartbeat(self) -> None:
        """Renew this process's leases (on a timer): stop driving the jobs another process
        took, poll the tasks whose callback arrived elsewhere, and take over the jobs whose
        lease ended."""
        beat = await self.leases.renew(keep_out=self._set_aside)
        for job_id, task in list(self._tasks.items()):
            if job_id in beat.held or task.done():
                continue
            holder, job = await self.leases.holder(job_id)
            if self._tasks.get(job_id) is not task:
                continue  # it ended (or was driven anew) while the holder was read
            if holder == self.leases.owner:
                continue  # leased since the renewal read the leases (just accepted)
            if job.state in (JobState.DELIVERED, JobState.CANCELLED):
                continue  # it ended (and gave its lease up) since the renewal
            log.warning("%s lost its lease (another process took it over); stopped driving "
                        "it here", job_fields(job))
            del self._tasks[job_id]
            task.cancel()
            if not self._tasks:
                self._idle.set()
        for task_id in beat.woken:
            log.info("task=%s called back at another process; checking its status now",
                     task_id)
            self.wake_here(task_id)
        if not self._accepting:
            return
        for job in await self.leases.claim_lapsed():
            if job.id in self._tasks:
                continue
            log.info("%s taken over: its lease ended", job_fields(job))
            self.leases.takeovers += 1
            self._spawn(job, resumed=True)

    def _title(self, provider: str) -> str:
        return self.hh.provider(provider).title


def job_fields(job: Job) -> str:
    """The start of every log line about a job, for grep: ``job=... member=... provider=...``."""
    return f"job={job.id} member={job.user_id} provider={job.provider}"


def _log_lost(job: Job, lost: LeaseLost) -> None:
    log.warning("%s lost its lease to %s while %s here; stopped driving it (that process "
                "finishes it)", job_fields(job), lost.holder or "nobody", job.state.value)


def _log_failure(job: Job, what: str, error: HappyHorseError) -> None:
    """A provider error that ends a job: a refused key needs the owner (ERROR)."""
    level = logging.ERROR if isinstance(error, AuthenticationError) else logging.WARNING
    log.log(level, "%s %s: %s", job_fields(job), what, error.for_log())


def _members_fault(error: HappyHorseError) -> bool:
    """Whether the provider refused the member's input: moderation, or (for a render that
    failed) input it calls invalid. A refused key, a rate limit or an outage never is."""
    if isinstance(error, TaskFailedError):
        text = error.reason.lower()
        return "invalid" in text or any(word in text for word in MODERATION)
    if isinstance(error, InvalidRequestError):
        return any(word in str(error).lower() for word in MODERATION)
    return False


def _plain(error: HappyHorseError, title: str) -> str:
    """A provider error in words a member can act on. Addresses, OS errors and what the
    provider said about its own trouble stay in the log."""
    if isinstance(error, InvalidRequestError):
        if error.from_provider:  # the provider's own words on the request: actionable
            return f"The provider refused the request: {error}"
        return str(error)  # our own check: names the field and what is allowed
    if isinstance(error, ProviderUnavailableError):
        if error.status is None:
            return f"Could not reach {title}; it may be down. Try again later."
        return f"{title} is unavailable right now (HTTP {error.status}). Try again later."
    if isinstance(error, RateLimitError):
        return f"{title} is busy (too many requests). Try again in a few minutes."
    if isinstance(error, AuthenticationError):
        return f"{title} refused the bot's API key; the bot's owner has to check it."
    if isinstance(error, TaskNotFoundError):
        return f"{title} no longer knows this job."
    if isinstance(error, ProtocolError):
        return f"{title} answered in a way the bot does not understand."
    return f"{title} could not take this job."


def _unforeseen(job: Job, failure: Exception) -> DeliveryError:
    """A delivery failure nobody foresaw (a bug, a fault of a kind not mapped yet): logged
    with its traceback, then retried and given up on like any other, so the member's
    credits come back rather than staying charged for a video nobody saw."""
    log.error("%s delivery failed unexpectedly", job_fields(job), exc_info=failure)
    return DeliveryError("something went wrong while posting it")
