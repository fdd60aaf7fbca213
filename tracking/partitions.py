"""Monthly partitions of the clicks table on PostgreSQL (issue 20; docs/decisions.md "Clicks by month").

`tracking_click` is range-partitioned on `created_at`: one table per UTC month named
`tracking_click_pYYYYMM`, and `tracking_click_default` for anything outside them. A daily job keeps
the current month and the next `AHEAD` months created, so clicks never land in the default
partition in normal operation; old months are dropped whole by retention (tracking/retention.py).
An install that had clicks before partitioning keeps them in `tracking_click_legacy`, one
partition from the beginning of time to the first monthly one; retention drops it whole once all
its rows are past retention, like a month.
The embedded SQLite database keeps one plain table: every function here is a no-op there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection, transaction

TABLE = "tracking_click"
DEFAULT = "tracking_click_default"
LEGACY = "tracking_click_legacy"  # an install's clicks from before partitioning (migration 0011)
AHEAD = 3
_NAME = re.compile(r"^tracking_click_p(\d{4})(\d{2})$")


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime
    end: datetime


def month_start(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def name_for(start: datetime) -> str:
    return f"{TABLE}_p{start.year:04d}{start.month:02d}"


def enabled() -> bool:
    """True when the clicks table is partitioned (PostgreSQL after tracking migration 0011)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def monthly() -> list[Partition]:
    """The monthly partitions, oldest first (the default partition is not one of them)."""
    if not enabled():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = _NAME.match(name)
        if match:
            start = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
            found.append(Partition(name, start, next_month(start)))
    return sorted(found, key=lambda p: p.start)


_TO = re.compile(r"TO \('([^']+)'\)")


def legacy() -> Partition | None:
    """The partition holding an existing install's clicks from before partitioning, if any: from
    the beginning of time (`start` is year 1) to its upper bound."""
    if not enabled():
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) AND c.relname = %s",
            [TABLE, LEGACY],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        match = _TO.search(row[0])
        if match is None:
            return None
        cursor.execute("SELECT %s::timestamptz", [match[1]])
        end = cursor.fetchone()[0]
    return Partition(LEGACY, datetime(1, 1, 1, tzinfo=UTC), end)


def ensure(*, first: date, last: date) -> list[str]:
    """Create the monthly partitions of every month from `first` to `last` (inclusive) that is
    missing; returns the names created. Rows already in the default partition for such a month are
    moved into it, in the same transaction (ATTACH refuses while the default holds rows of the
    range)."""
    if not enabled():
        return []
    existing = {p.name for p in monthly()}
    created = []
    start, stop = month_start(first), next_month(month_start(last))
    old = legacy()
    if old is not None:
        start = max(start, old.end)  # the legacy partition holds those months
    while start < stop:
        end = next_month(start)
        name = name_for(start)
        if name not in existing:
            with transaction.atomic(), connection.cursor() as cursor:
                # The lock orders concurrent runs (two beat deliveries) and keeps writers of the
                # default partition out while its rows of the month move.
                cursor.execute(f"LOCK TABLE {DEFAULT} IN SHARE ROW EXCLUSIVE MODE")
                cursor.execute("SELECT to_regclass(%s)", [name])
                if cursor.fetchone()[0] is None:
                    cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)")
                    cursor.execute(
                        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE created_at >= %s AND created_at < %s "
                        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                        [start, end],
                    )
                    cursor.execute(
                        f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
                        [start, end],
                    )
                    created.append(name)
        start = end
    return created


def ensure_ahead(*, now: datetime, ahead: int = AHEAD) -> list[str]:
    """This month and the next `ahead` months: what the daily job keeps ready."""
    last = month_start(now.date())
    for _ in range(ahead):
        last = next_month(last)
    return ensure(first=now.date(), last=last.date())


def drop(partition: Partition) -> None:
    """Drop one month of clicks: a catalogue change, not a row-by-row delete."""
    with transaction.atomic(), connection.cursor() as cursor:
        # A table with deferred foreign-key checks still pending cannot be dropped: run them now
        # (only a transaction that also wrote clicks has any), then defer again as Django expects.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}")
        cursor.execute(f"DROP TABLE {partition.name}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
