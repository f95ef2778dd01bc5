"""paddock.budget's date arithmetic: when periods start and when an allowance next refills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from paddock.budget import Period, next_refill, refill_due


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "expected"),
    [
        # daily: the next UTC midnight, even one microsecond before it
        (Period.DAILY, utc(2025, 3, 5, 10, 0), utc(2025, 3, 6)),
        (Period.DAILY, utc(2025, 3, 5, 23, 59, 59, 999999), utc(2025, 3, 6)),
        (Period.DAILY, utc(2025, 3, 6), utc(2025, 3, 7)),  # at midnight: the day just began
        (Period.DAILY, utc(2025, 12, 31, 12), utc(2026, 1, 1)),
        (Period.DAILY, utc(2024, 2, 28, 12), utc(2024, 2, 29)),  # a leap day
        # weekly: the next Monday (ISO weeks)
        (Period.WEEKLY, utc(2025, 3, 5, 10), utc(2025, 3, 10)),  # Wednesday
        (Period.WEEKLY, utc(2025, 3, 9, 23, 59), utc(2025, 3, 10)),  # Sunday night
        (Period.WEEKLY, utc(2025, 3, 10), utc(2025, 3, 17)),  # Monday 00:00
        (Period.WEEKLY, utc(2025, 12, 31), utc(2026, 1, 5)),  # across the year
        # monthly: the 1st of the next month, whatever this month's length
        (Period.MONTHLY, utc(2025, 1, 31, 23, 59), utc(2025, 2, 1)),
        (Period.MONTHLY, utc(2025, 2, 28, 12), utc(2025, 3, 1)),
        (Period.MONTHLY, utc(2024, 2, 29, 12), utc(2024, 3, 1)),
        (Period.MONTHLY, utc(2025, 4, 30), utc(2025, 5, 1)),
        (Period.MONTHLY, utc(2025, 3, 1), utc(2025, 4, 1)),  # the 1st at midnight
        (Period.MONTHLY, utc(2025, 12, 15), utc(2026, 1, 1)),  # December into January
        # none: never
        (Period.NONE, utc(2025, 3, 5), None),
    ],
)
def test_next_refill(period: Period, now: datetime, expected: datetime | None) -> None:
    assert next_refill(period, now) == expected


def test_next_refill_counts_in_utc_whatever_the_zone_given() -> None:
    # 23:30 on 31 March at UTC-2 is already 1 April in UTC: the next monthly refill is May.
    evening = datetime(2025, 3, 31, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert next_refill(Period.MONTHLY, evening) == utc(2025, 5, 1)
    assert next_refill(Period.DAILY, evening) == utc(2025, 4, 2)
    naive = datetime(2025, 3, 31, 23, 30)  # naive means UTC
    assert next_refill(Period.MONTHLY, naive) == utc(2025, 4, 1)


@pytest.mark.parametrize("period", [Period.DAILY, Period.WEEKLY, Period.MONTHLY])
def test_next_refill_is_when_a_refill_becomes_due(period: Period) -> None:
    """What /credits balance shows agrees with the ledger's rule: a member refilled at
    ``moment`` is due again exactly at ``next_refill(moment)``, not a microsecond before."""
    moment = utc(2023, 12, 20, 7, 45)
    for _ in range(60):  # through month ends, a year end and a leap February
        refill = next_refill(period, moment)
        assert refill is not None and refill > moment
        assert refill_due(period, moment, refill)
        assert not refill_due(period, moment, refill - timedelta(microseconds=1))
        moment += timedelta(days=5, hours=7)
