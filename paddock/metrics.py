"""Paddock's Prometheus metrics, on their own registry (never the process-global one).

What is exported:

- ``paddock_jobs{state,provider}``: jobs in the database by state and provider; a job
  whose video reached no one (its charge returned) counts as ``undelivered``, not
  ``delivered``.
- ``paddock_credits_reserved_total``, ``paddock_credits_settled_total``,
  ``paddock_credits_refunded_total``: credits ever held for jobs, charged, and given back
  (a refund, or the part of a hold a settle did not charge); ``paddock_credits_held``:
  credits held by jobs not finished yet. reserved = settled + refunded + held.
- ``paddock_provider_request_seconds{provider,call}``: every HTTP attempt to a provider
  (submit, status, download), retries included, as a histogram.
- ``paddock_provider_errors_total{provider,call,error}``: attempts that failed, by kind
  (rate_limited, unavailable, timeout, connection, auth, invalid, not_found, protocol,
  too_large; see `hh_api.CallOutcome`).
- ``paddock_queue_length{provider}``: jobs waiting for one of a provider's slots.
- ``paddock_jobs_in_flight``: jobs the runner is driving (in line, at a provider, or
  being delivered).
- ``paddock_gateway_latency_seconds{shard}``: seconds between the last heartbeat and
  its acknowledgement, per shard of this process (shard 0 when the bot does not shard);
  absent until a heartbeat is acknowledged.
- ``paddock_provider_failovers_total{provider}``: ``provider: auto`` jobs that left a
  provider for another one (a refused submit, or a render that failed there);
  ``paddock_provider_cooldowns_total{provider}``: times a provider was put in cooldown
  after a 429, 5xx or a connection never made (see `paddock.routing`).

The database figures come from two GROUP BY queries over covering indexes, read when
Prometheus scrapes (:meth:`PaddockMetrics.render`), so they are exact and cost nothing
between scrapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlite_utils import Database

from hh_api import CallOutcome, ProviderCall
from paddock.jobs import JobState
from paddock.store import Store

if TYPE_CHECKING:
    from paddock.runner import Runner

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
NO_PROVIDER = "none"  # the label of a job or download without a provider
# A delivered job whose video reached no one (its charge returned) has a label of its own.
UNDELIVERED = "undelivered"


@dataclass(frozen=True)
class StoreTotals:
    """The database's figures at one moment."""

    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (state, provider) -> n
    reserved: int = 0
    settled: int = 0
    refunded: int = 0
    held: int = 0


def read_totals(db: Database) -> StoreTotals:
    """Jobs by state and provider, and the ledger's credit totals, in one read transaction."""
    jobs = {
        (state, provider or NO_PROVIDER): count
        for state, provider, count in db.execute(
            f"SELECT CASE WHEN undelivered_at IS NULL THEN state ELSE '{UNDELIVERED}' END"
            " AS shown, provider, COUNT(*) FROM jobs GROUP BY shown, provider"
        )
    }
    by_state = {
        state: (amount, charged)
        for state, amount, charged in db.execute(
            "SELECT state, COALESCE(SUM(amount), 0), COALESCE(SUM(charged), 0)"
            " FROM holds GROUP BY state"
        )
    }
    pending, _ = by_state.get("pending", (0, 0))
    settled_amount, settled = by_state.get("settled", (0, 0))
    refunded_amount, _ = by_state.get("refunded", (0, 0))
    # Charges given back because the video reached no one: returned, not charged.
    returned = db.execute(
        "SELECT COALESCE(SUM(d_allowance + d_granted), 0) FROM journal WHERE kind = 'return'"
    ).fetchone()[0]
    return StoreTotals(
        jobs=jobs,
        reserved=sum(amount for amount, _ in by_state.values()),
        settled=settled - returned,
        refunded=refunded_amount + settled_amount - settled + returned,
        held=pending,
    )


class _StoreCollector(Collector):
    """Yields the latest `StoreTotals`; `PaddockMetrics.render` refreshes them first."""

    def __init__(self) -> None:
        self.totals = StoreTotals()

    def describe(self) -> Iterator[Metric]:
        return self._families(StoreTotals())

    def collect(self) -> Iterator[Metric]:
        return self._families(self.totals)

    @staticmethod
    def _families(totals: StoreTotals) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "paddock_jobs", "Jobs in the database by state and provider.",
            labels=["state", "provider"],
        )
        # Every state of every provider seen, zeros included, so rates and ratios work.
        providers = sorted({provider for _, provider in totals.jobs})
        for provider in providers:
            for state in [*(state.value for state in JobState), UNDELIVERED]:
                jobs.add_metric([state, provider], totals.jobs.get((state, provider), 0))
        yield jobs
        yield CounterMetricFamily(
            "paddock_credits_reserved", "Credits ever held for jobs when they were accepted.",
            value=totals.reserved,
        )
        yield CounterMetricFamily(
            "paddock_credits_settled", "Credits charged for finished videos.",
            value=totals.settled,
        )
        yield CounterMetricFamily(
            "paddock_credits_refunded",
            "Credits given back: failed or cancelled jobs, and what a settle did not charge.",
            value=totals.refunded,
        )
        yield GaugeMetricFamily(
            "paddock_credits_held", "Credits held by jobs not finished yet.", value=totals.held
        )


class _RunnerCollector(Collector):
    """The runner's lines and load, read on the event loop at scrape time."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily(
            "paddock_queue_length", "Jobs waiting for one of a provider's slots.",
            labels=["provider"],
        )
        for provider, waiting in sorted(self.runner.queue_lengths().items()):
            queue.add_metric([provider], waiting)
        yield queue
        yield GaugeMetricFamily(
            "paddock_jobs_in_flight",
            "Jobs the runner is driving: in line, at a provider, or being delivered.",
            value=self.runner.in_flight(),
        )
        yield GaugeMetricFamily(
            "paddock_leases_held",
            "Jobs this process holds the lease of (at its last heartbeat).",
            value=self.runner.leases.held,
        )
        yield CounterMetricFamily(
            "paddock_lease_takeovers",
            "Jobs this process took over: their lease had ended, or (at start) their holder "
            "was a previous run of the bot.",
            value=self.runner.leases.takeovers,
        )
        failovers = CounterMetricFamily(
            "paddock_provider_failovers",
            "provider: auto jobs that left this provider for another one.",
            labels=["provider"],
        )
        router = self.runner.router
        for provider, count in sorted((router.failovers() if router else {}).items()):
            failovers.add_metric([provider], count)
        yield failovers
        cooldowns = CounterMetricFamily(
            "paddock_provider_cooldowns",
            "Times this provider was rested after a 429, 5xx or a connection never made.",
            labels=["provider"],
        )
        for provider, count in sorted(self.runner.provider_health.cooldowns().items()):
            cooldowns.add_metric([provider], count)
        yield cooldowns


class _GatewayCollector(Collector):
    """Each shard's heartbeat latency, read from the bot at scrape time."""

    def __init__(self, latencies: Callable[[], Iterable[tuple[int, float]]]) -> None:
        self.latencies = latencies

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "paddock_gateway_latency_seconds",
            "Seconds between a heartbeat to Discord's gateway and its acknowledgement.",
            labels=["shard"],
        )
        for shard, seconds in sorted(self.latencies()):
            if math.isfinite(seconds):  # inf: no heartbeat acknowledged yet
                gauge.add_metric([str(shard)], seconds)
        yield gauge


class PaddockMetrics:
    """Every Paddock metric, on `registry`.

    Give `record_call` to the provider client as its ``on_call`` observer; serve
    ``await render()`` at ``/metrics``.
    """

    def __init__(self, store: Store, runner: Runner) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self._latency = Histogram(
            "paddock_provider_request_seconds",
            "Seconds per HTTP attempt to a provider, retries included.",
            ["provider", "call"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._errors = Counter(
            "paddock_provider_errors",
            "Failed HTTP attempts to a provider, by kind of failure.",
            ["provider", "call", "error"],
            registry=self.registry,
        )
        self._store_figures = _StoreCollector()
        self.registry.register(self._store_figures)
        self.registry.register(_RunnerCollector(runner))

    def watch_gateway(self, latencies: Callable[[], Iterable[tuple[int, float]]]) -> None:
        """Export ``latencies()``, (shard, seconds) pairs, as the gateway latency gauge."""
        self.registry.register(_GatewayCollector(latencies))

    def record_call(self, call: ProviderCall) -> None:
        """The provider client's ``on_call`` observer."""
        provider = call.provider or NO_PROVIDER
        self._latency.labels(provider, call.kind.value).observe(call.seconds)
        if call.outcome is not CallOutcome.OK:
            self._errors.labels(provider, call.kind.value, call.outcome.value).inc()

    async def render(self) -> bytes:
        """The Prometheus text exposition, with the database figures read just now."""
        self._store_figures.totals = await self.store.read(read_totals)
        return generate_latest(self.registry)
