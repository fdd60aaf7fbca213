"""Conversion rollups: the dashboards' figures of events and commissions, kept as rows arrive.

Triggers (migration 0006) append every change that moves a figure to commissions_conversiondelta:
an event counts once, with its amount net of refunds, on its occurred_at day, once it has an
affiliate; a commission counts its amount under its status on its created_at day, unless it is
rejected. An update writes minus the old row and plus the new one, a delete minus the old row.

`fold` moves that log into three rollups (per affiliate and day, per program and day, per
affiliate all-time) every few seconds. Readers take the rollups and the log rows not yet folded in
within one statement, which sees one snapshot: a fold commits its delete and its additions at
once, so a reader counts every change exactly once and the figures are current to the last
committed row. `rebuild` recomputes everything from the events and commissions.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .models import ConversionFigures

FIGURES = ConversionFigures.FIELDS
EARNED = ("pending_cents", "approved_cents", "processing_cents", "paid_cents")
DELTA = "commissions_conversiondelta"
AFFILIATE_DAILY = "commissions_affiliateconversiondaily"
PROGRAM_DAILY = "commissions_programconversiondaily"
AFFILIATE_TOTAL = "commissions_affiliateconversiontotal"
# pg_advisory_xact_lock key: one fold at a time, so that two never upsert the same rows crosswise.
FOLD_LOCK = 7_340_001

_COLUMNS = ", ".join(FIGURES)
_SUMS = ", ".join(f"SUM({f})" for f in FIGURES)
# Upserts add what is folded to what is there.
_ADD = ", ".join(f"{f} = target.{f} + EXCLUDED.{f}" for f in FIGURES)

# (target, key columns, conflict columns, owner table) of each rollup. The program's and the
# affiliate's all-time rows are sums of the per-affiliate daily rows. A log row whose owner is gone
# is dropped for that rollup: deleting an affiliate deletes its rollup rows and logs minus rows for
# its events and commissions, which the program's rollup still takes.
_TARGETS = (
    (AFFILIATE_DAILY, "program_id, affiliate_id, livemode, day", "affiliate_id, livemode, day", "affiliate"),
    (PROGRAM_DAILY, "program_id, livemode, day", "program_id, livemode, day", "program"),
    (AFFILIATE_TOTAL, "program_id, affiliate_id, livemode", "affiliate_id, livemode", "affiliate"),
)
_OWNER = {"affiliate": "affiliates_affiliate", "program": "affiliates_program"}


def _exists(owner: str, table: str) -> str:
    return f"EXISTS (SELECT 1 FROM {_OWNER[owner]} o WHERE o.id = {table}.{owner}_id)"


def _day(vendor: str, column: str) -> str:
    """SQL of a timestamp column's UTC date (PostgreSQL sessions run in UTC; SQLite stores UTC)."""
    return f"({column} AT TIME ZONE 'UTC')::date" if vendor == "postgresql" else f"date({column})"


def _sources(vendor: str) -> str:
    """Every row's contribution, as the triggers write it: the truth the rollups must equal."""
    per_status = ", ".join(
        f"CASE WHEN status = '{column.removesuffix('_cents')}' THEN amount_cents ELSE 0 END"
        for column in EARNED
    )
    counted = ", ".join(f"'{column.removesuffix('_cents')}'" for column in EARNED)
    return f"""
        SELECT program_id, affiliate_id, livemode, {_day(vendor, "occurred_at")} AS day,
            1 AS conversions, amount_cents - refunded_cents AS revenue_cents,
            0 AS pending_cents, 0 AS approved_cents, 0 AS processing_cents, 0 AS paid_cents
        FROM tracking_event WHERE affiliate_id IS NOT NULL
        UNION ALL
        SELECT program_id, affiliate_id, livemode, {_day(vendor, "created_at")}, 0, 0, {per_status}
        FROM commissions_commission WHERE status IN ({counted})
    """


def rebuild(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Recompute the rollups from the events and commissions and empty the log, in one transaction.

    On PostgreSQL the log is locked (EXCLUSIVE) first: that waits for the writers in flight and
    holds new ones back until the rebuild commits, so each change is in the rebuild or in the log,
    never both, never neither.
    """
    connection = connections[using]
    vendor = connection.vendor
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {DELTA} IN EXCLUSIVE MODE")
        for table in (DELTA, AFFILIATE_DAILY, PROGRAM_DAILY, AFFILIATE_TOTAL):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - module constants
        cursor.execute(
            f"""
            INSERT INTO {AFFILIATE_DAILY} (program_id, affiliate_id, livemode, day, {_COLUMNS})
            SELECT program_id, affiliate_id, livemode, day, {_SUMS}
            FROM ({_sources(vendor)}) rows GROUP BY program_id, affiliate_id, livemode, day
            """  # noqa: S608 - module constants
        )
        for table, keys, _conflict, _owner in _TARGETS[1:]:
            cursor.execute(
                f"INSERT INTO {table} ({keys}, {_COLUMNS}) "  # noqa: S608 - module constants
                f"SELECT {keys}, {_SUMS} FROM {AFFILIATE_DAILY} GROUP BY {keys}"
            )


def fold(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Move the log into the rollups; returns how many log rows were folded.

    Log rows of a program or affiliate deleted since are dropped from that owner's rollups, whose
    rows went with it.
    """
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
            # One statement: the DELETE takes exactly the rows its snapshot sees, and the upserts
            # add exactly those. A row committed meanwhile stays in the log for the next fold.
            upserts = ",\n".join(
                f"""{table.split("_")[-1]} AS (
                    INSERT INTO {table} AS target ({keys}, {_COLUMNS})
                    SELECT {keys}, {_SUMS} FROM folded WHERE {_exists(owner, "folded")}
                    GROUP BY {keys} ORDER BY {keys}
                    ON CONFLICT ({conflict}) DO UPDATE SET {_ADD}
                )"""
                for table, keys, conflict, owner in _TARGETS
            )
            cursor.execute(
                f"""
                WITH folded AS (
                    DELETE FROM {DELTA} RETURNING program_id, affiliate_id, livemode, day, {_COLUMNS}
                ),
                {upserts}
                SELECT count(*) FROM folded
                """  # noqa: S608 - module constants
            )
            return cursor.fetchone()[0]
        # SQLite: this transaction holds the only write lock (BEGIN IMMEDIATE), so the log cannot
        # grow under it; rows above the highest id read belong to the next fold.
        cursor.execute(f"SELECT MAX(id) FROM {DELTA}")  # noqa: S608 - module constants
        high = cursor.fetchone()[0]
        if high is None:
            return 0
        for table, keys, conflict, owner in _TARGETS:
            # The WHERE clause also keeps SQLite from reading ON CONFLICT as part of a join.
            cursor.execute(
                f"INSERT INTO {table} AS target ({keys}, {_COLUMNS}) "  # noqa: S608 - module constants
                f"SELECT {keys}, {_SUMS} FROM {DELTA} WHERE id <= %s AND {_exists(owner, DELTA)} "
                f"GROUP BY {keys} ON CONFLICT ({conflict}) DO UPDATE SET {_ADD}",
                [high],
            )
        cursor.execute(f"DELETE FROM {DELTA} WHERE id <= %s", [high])  # noqa: S608
        return cursor.rowcount


# --- readers ------------------------------------------------------------------------------------


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _figures(values) -> dict[str, int]:
    figures = dict(zip(FIGURES, (int(v or 0) for v in values), strict=True))
    figures["earned_cents"] = sum(figures[c] for c in EARNED)
    return figures


# What the ranking of affiliates reads: three sums, all in the covering index of the daily rollup.
_RANKED = {
    "conversions": "conversions",
    "revenue_cents": "revenue_cents",
    "earned_cents": " + ".join(EARNED),
}


def _live_rows(
    rollup: str,
    group: str,
    where: str,
    params: list[Any],
    *,
    columns: dict[str, str] | None = None,
    tail: str = "",
    using: str = DEFAULT_DB_ALIAS,
) -> list[tuple]:
    """SUM of each column (every figure by default) per `group` over a rollup's rows and the log's
    rows that match `where`: one statement, so one snapshot."""
    columns = columns or {f: f for f in FIGURES}
    inner = ", ".join(f"{sql} AS {name}" for name, sql in columns.items())
    sums = ", ".join(f"SUM({name})" for name in columns)
    sql = f"""
        SELECT {group}, {sums} FROM (
            SELECT {group}, {inner} FROM {rollup} WHERE {where}
            UNION ALL
            SELECT {group}, {inner} FROM {DELTA} WHERE {where}
        ) figures
        GROUP BY {group} {tail}
    """  # noqa: S608 - module constants and fixed clauses
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params + params)
        return cursor.fetchall()


def _days(rollup: str, owner: str, owner_id: int, livemode: bool, first: date, last: date) -> dict:
    rows = _live_rows(
        rollup,
        "day",
        f"{owner} = %s AND livemode = %s AND day >= %s AND day <= %s",
        [owner_id, livemode, first, last],
    )
    return {_as_date(day): _figures(values) for day, *values in rows}


def program_days(program_id: int, livemode: bool, first: date, last: date) -> dict[date, dict[str, int]]:
    """{day: figures} of a program's days in [first, last]; days without a row are absent."""
    return _days(PROGRAM_DAILY, "program_id", program_id, livemode, first, last)


def affiliate_days(affiliate_id: int, livemode: bool, first: date, last: date) -> dict[date, dict[str, int]]:
    """{day: figures} of one affiliate's days in [first, last]."""
    return _days(AFFILIATE_DAILY, "affiliate_id", affiliate_id, livemode, first, last)


# How many affiliates, by all-time revenue, the ranking of a range sums first (see top_affiliates).
CANDIDATES = 64


def top_affiliates(
    program_id: int, livemode: bool, first: date, last: date, *, limit: int
) -> list[tuple[int, dict[str, int]]]:
    """[(affiliate id, {conversions, revenue_cents, earned_cents})] of the affiliates with
    conversions in [first, last], most revenue first (ties by id).

    On PostgreSQL it first sums the range for the CANDIDATES affiliates with the most revenue of all
    time, and for those with changes not folded yet. A day's revenue is never negative (a refund
    never exceeds its sale), so nobody earns more in a range than in all time: when the last of the
    `limit` best candidates earned more in the range than the best affiliate left out earned ever,
    nobody left out can rank, and the answer is exact without summing every affiliate's days. A
    program whose revenue is spread evenly, or a short range, falls back to that full sum. All the
    reads see one snapshot (REPEATABLE READ).
    """
    where = "program_id = %s AND livemode = %s AND day >= %s AND day <= %s"
    params = [program_id, livemode, first, last]
    order = f"HAVING SUM(conversions) > 0 ORDER BY SUM(revenue_cents) DESC, affiliate_id LIMIT {int(limit)}"

    def ranked(where: str, params: list[Any]) -> list[tuple[int, dict[str, int]]]:
        rows = _live_rows(AFFILIATE_DAILY, "affiliate_id", where, params, columns=_RANKED, tail=order)
        return [
            (affiliate_id, dict(zip(_RANKED, map(int, values), strict=True)))
            for affiliate_id, *values in rows
        ]

    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return ranked(where, params)
    with transaction.atomic(), connection.cursor() as cursor:
        if len(connection.atomic_blocks) == 1:
            # Not inside the caller's transaction (a test, an atomic request), whose isolation a
            # read cannot change: this one is ours, and both reads see its snapshot.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # A parallel plan starts worker processes that cost more than they save on these sums
        # (365 days of the benchmark: 134 ms parallel, 80 ms not).
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        # Candidates: the best CANDIDATES + 1 all-time rows of the rollup (an index scan), and every
        # affiliate with changes not folded yet, whose all-time figure the rollup does not hold.
        # Anyone else earned at most the rollup's next row.
        cursor.execute(
            f"SELECT affiliate_id, revenue_cents FROM {AFFILIATE_TOTAL} WHERE program_id = %s AND livemode = %s "
            "ORDER BY revenue_cents DESC, affiliate_id LIMIT %s",
            [program_id, livemode, CANDIDATES + 1],
        )
        best = cursor.fetchall()
        cursor.execute(
            f"SELECT DISTINCT affiliate_id FROM {DELTA} WHERE program_id = %s AND livemode = %s",
            [program_id, livemode],
        )
        ids = {affiliate_id for affiliate_id, _ in best[:CANDIDATES]} | {row[0] for row in cursor.fetchall()}
        if not ids and not best:
            return []
        if ids:
            marks = ", ".join(["%s"] * len(ids))
            rows = ranked(f"affiliate_id IN ({marks}) AND {where}", [*sorted(ids), *params])
            left_out = best[CANDIDATES][1] if len(best) > CANDIDATES else None
            if left_out is None or (len(rows) == limit and rows[-1][1]["revenue_cents"] > left_out):
                return rows
        return ranked(where, params)


def affiliate_totals(affiliate_ids: list[int], livemode: bool) -> dict[int, dict[str, int]]:
    """{affiliate id: all-time figures} of the given affiliates (absent: nothing yet)."""
    if not affiliate_ids:
        return {}
    marks = ", ".join(["%s"] * len(affiliate_ids))
    rows = _live_rows(
        AFFILIATE_TOTAL,
        "affiliate_id",
        f"affiliate_id IN ({marks}) AND livemode = %s",
        [*affiliate_ids, livemode],
    )
    return {affiliate_id: _figures(values) for affiliate_id, *values in rows}


def affiliates_in_range(
    program_id: int, livemode: bool, first: date, last: date
) -> dict[int, dict[str, int]]:
    """{affiliate id: figures} of a program's affiliates with any figure in [first, last]: the
    reports' per-affiliate rows, read from the covering (program, livemode, day) index."""
    rows = _live_rows(
        AFFILIATE_DAILY,
        "affiliate_id",
        "program_id = %s AND livemode = %s AND day >= %s AND day <= %s",
        [program_id, livemode, first, last],
    )
    return {affiliate_id: _figures(values) for affiliate_id, *values in rows}
