"""What other processes changed, as the database tells it: one listener per process.

A write function announces a change with ``db.notify(channel, payload)``. On PostgreSQL
that is ``pg_notify``: delivered to every listening session when the write commits, never
when it rolls back (a write retried after a serialization failure announces once). On
SQLite it does nothing: one process owns the file, and its own writes update its caches
directly.

``await store.listen(channel, on_notify, on_missed)`` subscribes. On PostgreSQL one
:class:`Listener` per store keeps one dedicated connection (autocommit, ``LISTEN`` on
every subscribed channel) and reads ``notifies()`` on the event loop, so no thread waits
and the loop never blocks; ``on_notify(payload)`` runs on the loop for each notification,
the writing process's own included. When the connection is lost (server restart,
``pg_terminate_backend``, a proxy), notifications sent meanwhile are lost for good, so
every subscriber's ``on_missed()`` runs at once, and again once the listener is back
(reconnected with a jittered backoff, every channel listened to again): a cache drops all
it holds, a runner re-checks. :attr:`Subscription.live` says whether notifications reach
the subscriber now; a cache fills only while it is true. On SQLite a subscription is
always live and never called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

OnNotify = Callable[[str], None]
OnMissed = Callable[[], None]

RETRY_FIRST = 0.05  # seconds before the first reconnection attempt
RETRY_MAX = 5.0  # the longest wait between two attempts
# A host that vanished (no RST) is noticed within about a minute, not after TCP's hours.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 20, "keepalives_interval": 5,
              "keepalives_count": 4}
APPLICATION_NAME = "paddock-listener"  # how pg_stat_activity names the connection


@dataclass(eq=False)
class Subscription:
    """One subscriber's callbacks on one channel; ``close()`` stops them."""

    channel: str
    on_notify: OnNotify
    on_missed: OnMissed | None = None
    _listener: Listener | None = field(default=None, repr=False)

    @property
    def live(self) -> bool:
        """Whether every notification sent now will reach ``on_notify`` (always on SQLite)."""
        return self._listener is None or self._listener.connected

    def close(self) -> None:
        if self._listener is not None:
            self._listener.unsubscribe(self)


class Listener:
    """The one ``LISTEN`` connection of a process to a PostgreSQL database.

    Its task owns the connection: it connects, listens to every subscribed channel, and
    reads notifications until the connection is lost or a new channel is asked for (then
    it stops reading, sends ``LISTEN``, and reads again).
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 10.0,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.connected = False
        self.reconnects = 0  # connections lost and made again (for tests and benchmarks)
        self.backend_pid: int | None = None  # the server process of the connection, if any
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._listening: set[str] = set()  # channels LISTENed to on the current connection
        self._asked = asyncio.Event()  # a channel was subscribed that is not listened to
        self._waiters: list[asyncio.Future[None]] = []  # listen() calls waiting for LISTEN
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def subscribe(
        self, channel: str, on_notify: OnNotify, on_missed: OnMissed | None = None
    ) -> Subscription:
        """Call ``on_notify(payload)`` for every notification on ``channel`` from now on.

        Returns once the channel is listened to, or once an attempt to connect failed
        (then ``on_missed`` runs when the listener is back).
        """
        if self._closed:
            raise RuntimeError("the listener is closed")
        subscription = Subscription(channel, on_notify, on_missed, self)
        self._subscriptions.setdefault(channel, []).append(subscription)
        if channel in self._listening:
            return subscription
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._asked.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="paddock listener")
        await waiter
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.channel, [])
        if subscription in subscribers:
            subscribers.remove(subscription)

    async def close(self) -> None:
        """Stop listening and close the connection. Safe to call twice."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._answer_waiters()

    # -- the listener's task -------------------------------------------------------------

    async def _run(self) -> None:
        import psycopg  # here, so that a SQLite bot never loads the driver (0.2 s at start)

        delay = self.retry_first
        lost = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name=APPLICATION_NAME,
                    connect_timeout=max(1, round(self.connect_timeout)), **KEEPALIVES)
            except psycopg.OperationalError as exc:
                log.warning("cannot listen to the database (%s); again in %.2f s",
                            _first_line(exc), delay)
                lost = True  # a write may go unannounced until the first LISTEN
                self._answer_waiters()
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, self.retry_max)
                continue
            try:
                await self._listen_all(conn)
                self.connected = True
                self.backend_pid = conn.info.backend_pid
                if lost:
                    self.reconnects += 1
                    log.info("listening to the database again; caches start afresh")
                    self._missed()
                delay = self.retry_first
                await self._read(conn)
            except psycopg.Error as exc:
                log.warning("lost the database's notifications (%s); reconnecting",
                            _first_line(exc))
            finally:
                was_connected, self.connected = self.connected, False
                self._listening.clear()
                self.backend_pid = None
                await conn.close()
            if was_connected:  # what was cached may have changed unannounced from now on
                self._missed()
            lost = True
            self._answer_waiters()
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, self.retry_max)

    async def _listen_all(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """LISTEN to every subscribed channel not listened to yet; answer the waiters."""
        self._asked.clear()
        waiters, self._waiters = self._waiters, []
        from psycopg import sql

        for channel in sorted(set(self._subscriptions) - self._listening):
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._listening.add(channel)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _read(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Deliver notifications until the connection is lost (raises) or a channel is
        asked for (listens to it, then reads on)."""
        while True:
            reading = asyncio.create_task(self._deliver(conn), name="paddock notifications")
            asked = asyncio.create_task(self._asked.wait(), name="paddock listen request")
            try:
                await asyncio.wait({reading, asked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reading, asked):
                    task.cancel()
                await asyncio.wait({reading, asked})
            if reading.done() and not reading.cancelled():
                import psycopg

                raise reading.exception() or psycopg.OperationalError("notifications ended")
            await self._listen_all(conn)

    async def _deliver(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for notify in conn.notifies():
            for subscription in list(self._subscriptions.get(notify.channel, ())):
                try:
                    subscription.on_notify(notify.payload)
                except Exception:  # one subscriber's bug must not deafen the others
                    log.exception("a subscriber of %s failed on %r", notify.channel,
                                  notify.payload)

    def _missed(self) -> None:
        for subscribers in list(self._subscriptions.values()):
            for subscription in list(subscribers):
                if subscription.on_missed is None:
                    continue
                try:
                    subscription.on_missed()
                except Exception:
                    log.exception("a subscriber of %s failed to start afresh",
                                  subscription.channel)

    def _answer_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
