"""A server's budget rules: allowance periods, funding policy and limits, as plain values.

All times are UTC. Periods start at midnight UTC: a day, an ISO week (from Monday), or a
calendar month. ``Period.NONE`` never refills on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    NONE = "none"


class FundingPolicy(StrEnum):
    """Where a job's credits come from."""

    PERSONAL = "personal"
    POOL = "pool"
    PERSONAL_THEN_POOL = "personal_then_pool"


DEFAULT_MEMBER_SLOTS = 2  # a new server's cap on one member's jobs at providers at once


@dataclass(frozen=True, slots=True)
class Limits:
    """A server's limits. ``None`` means no limit."""

    max_job_cost: int | None = None
    member_spend: int | None = None  # credits a member may spend per member_spend_period
    member_spend_period: Period = Period.DAILY
    daily_ceiling: int | None = None  # credits the whole server may spend per UTC day
    member_jobs: int | None = None  # pending holds (jobs in flight) per member
    server_jobs: int | None = None  # pending holds per server
    # A member's jobs at providers at once; more wait in line while others' go first.
    member_slots: int | None = DEFAULT_MEMBER_SLOTS


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


@dataclass(frozen=True, slots=True)
class LimitsChange:
    """A change of a server's limits: what they were and what they are now."""

    before: Limits
    after: Limits

    @property
    def changed(self) -> tuple[str, ...]:
        """The names of the limits that differ, in :class:`Limits` order (empty: none)."""
        return tuple(
            name for name in LIMIT_NAMES if getattr(self.before, name) != getattr(self.after, name)
        )


@dataclass(frozen=True, slots=True)
class RoleAllowance:
    role_id: int
    allowance: int
    period: Period


@dataclass(frozen=True, slots=True)
class GuildSettings:
    guild_id: int
    policy: FundingPolicy = FundingPolicy.PERSONAL
    allowance: int = 0
    period: Period = Period.NONE
    limits: Limits = Limits()
    role_allowances: tuple[RoleAllowance, ...] = ()


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive datetimes are taken to be UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601 text, so that SQL compares timestamps as strings."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text)  # our own format; 50x faster than strptime


def period_start(period: Period, moment: datetime) -> datetime:
    """When the period containing ``moment`` began (the epoch for ``Period.NONE``)."""
    day = utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAILY:
        return day
    if period is Period.WEEKLY:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTHLY:
        return day.replace(day=1)
    return datetime(1970, 1, 1, tzinfo=UTC)


def next_refill(period: Period, now: datetime) -> datetime | None:
    """When an allowance of ``period`` next refills: the start of the period after the one
    containing ``now`` (``None`` for ``Period.NONE``, which never refills).

    The refill itself is lazy (the member's first action after that moment), so this is
    the earliest moment :func:`refill_due` says yes for someone refilled at ``now``.
    """
    start = period_start(period, now)
    if period is Period.DAILY:
        return start + timedelta(days=1)
    if period is Period.WEEKLY:
        return start + timedelta(days=7)
    if period is Period.MONTHLY:
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return None


def refill_due(period: Period, last_refill: datetime | None, now: datetime) -> bool:
    """Whether a member last refilled at ``last_refill`` is due a refill at ``now``.

    Due when never filled, or when a boundary of ``period`` (the member's allowance period
    *now*) lies after the last refill. Comparing the period's start with the time of the
    last refill, not period names, keeps this right when the applicable period changes
    (another role, a new server setting): a member refilled on a Wednesday under a weekly
    allowance is not refilled again that day under a daily one.
    """
    if last_refill is None:
        return True
    if period is Period.NONE:
        return False
    return period_start(period, now) > utc(last_refill)
