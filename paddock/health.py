"""Is the bot healthy? Three checks, each saying what is wrong when it is not.

- ``gateway``: the bot's connection to Discord is up: with shards, every shard this
  process runs is connected and ready (a callable the bot provides, saying what is
  wrong or None, so this module stays Discord-free).
- ``database``: a real write (one row of ``health_probe`` rewritten) commits within a
  short timeout, through the store's one writer like every other write.
- ``runner``: the runner takes jobs and its sweeper task is alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from paddock.budget import timestamp, utcnow
from paddock.errors import PaddockError
from paddock.store import Store, database_errors

if TYPE_CHECKING:
    from paddock.runner import Runner


@dataclass(frozen=True)
class HealthReport:
    """Each check's problem, or None where it passed."""

    problems: dict[str, str | None]

    @property
    def healthy(self) -> bool:
        return all(problem is None for problem in self.problems.values())

    def as_json(self) -> dict[str, object]:
        checks = {name: problem or "ok" for name, problem in self.problems.items()}
        return {"status": "ok" if self.healthy else "unhealthy", "checks": checks}


def _touch_probe(db: Database, at: str) -> None:
    db.execute(
        "INSERT INTO health_probe (id, at) VALUES (1, ?)"
        " ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        [at],
    )


class HealthCheck:
    """Runs the three checks; at most one database probe is in flight at a time."""

    def __init__(
        self,
        *,
        gateway_problem: Callable[[], str | None],
        store: Store,
        runner: Runner,
        write_timeout: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.gateway_problem = gateway_problem
        self.store = store
        self.runner = runner
        self.write_timeout = write_timeout
        self.clock = clock
        self._probe: asyncio.Task[None] | None = None

    async def run(self) -> HealthReport:
        return HealthReport({
            "gateway": self.gateway_problem(),
            "database": await self._database(),
            "runner": self.runner.health(),
        })

    async def _database(self) -> str | None:
        # A probe stuck behind a locked database is shared by the checks that follow it
        # rather than queueing one more write each.
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(
                self.store.write(_touch_probe, timestamp(self.clock())), name="health probe"
            )
            # Its outcome is read here, or by the check waiting on it; never left unread.
            self._probe.add_done_callback(lambda probe: probe.cancelled() or probe.exception())
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), self.write_timeout)
        except TimeoutError:
            return f"a write did not commit within {self.write_timeout:g} s"
        except (PaddockError, RuntimeError, *database_errors()) as error:
            return f"a write failed: {type(error).__name__}: {error}"
        return None
