"""Daily click rollups (docs/architecture.md, "Performance"): maintained as clicks arrive, read by every dashboard.

A job (every minute) reads the clicks added since its watermark, finds the (program, day) pairs
they touched and recomputes those days exactly from the clicks table (a BRIN range scan on
PostgreSQL), so distinct-visitor counts stay exact per day. Readers add the "tail" — clicks above
the watermark — live, so figures are current to the last click without waiting for the job.
Over a range, "visitors" is the sum of each day's distinct visitors.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from affiliates.models import Program

from .models import Click, ClickDaily, ProgramClickDaily, RollupState

STATE = "clicks"


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _recompute_day(program_id: int, day: date, high: int) -> None:
    start, end = _bounds(day)
    # Only up to the new watermark: later clicks belong to the readers' live tail, never to both.
    clicks = Click.objects.filter(
        program_id=program_id, created_at__gte=start, created_at__lt=end, pk__lte=high
    )
    per_affiliate = (
        clicks.values("affiliate_id").annotate(n=Count("pk"), v=Count("visitor_id", distinct=True)).order_by()
    )
    ClickDaily.objects.filter(program_id=program_id, day=day).delete()
    ClickDaily.objects.bulk_create(
        ClickDaily(
            program_id=program_id,
            affiliate_id=row["affiliate_id"],
            day=day,
            clicks=row["n"],
            visitors=row["v"],
        )
        for row in per_affiliate
    )
    total = clicks.aggregate(n=Count("pk"), v=Count("visitor_id", distinct=True))
    ProgramClickDaily.objects.filter(program_id=program_id, day=day).delete()
    if total["n"]:
        ProgramClickDaily.objects.create(
            program_id=program_id, day=day, clicks=total["n"], visitors=total["v"]
        )


def refresh(*, max_ids: int = 2_000_000) -> int:
    """Fold clicks above the watermark into the rollups. Returns how many clicks were read."""
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(name=STATE)
        low = state.last_id
        high = Click.objects.filter(pk__gt=low).aggregate(m=Max("pk"))["m"]
        if high is None:
            return 0
        high = min(high, low + max_ids)
        # Ids are not dense (sequences survive deletes and rollbacks), so count what is read.
        read = Click.objects.filter(pk__gt=low, pk__lte=high).count()
        touched = (
            Click.objects.filter(pk__gt=low, pk__lte=high)
            .annotate(day=TruncDate("created_at"))
            .values_list("program_id", "day")
            .distinct()
            .order_by()
        )
        touched = sorted(set(touched))
        today = timezone.now().date()
        kept = dict(
            Program.objects.filter(pk__in={p for p, _ in touched}).values_list("id", "click_retention_days")
        )
        for program_id, day in touched:
            # A day past retention (tracking/retention.py) keeps the totals it had: its clicks are
            # gone or going, and a recount would erase them. A straggler click for it is ignored.
            past = day < today - timedelta(days=kept.get(program_id, 0))
            if past and ProgramClickDaily.objects.filter(program_id=program_id, day=day).exists():
                continue
            _recompute_day(program_id, day, high)
        state.last_id = high
        state.updated_at = timezone.now()
        state.save(update_fields=["last_id", "updated_at"])
    return read


RETAINED_PREFIX = "retention.clicks."


def retained_since() -> dict[int, date]:
    """{program id: the first day whose raw clicks are whole}, for programs whose clicks retention
    has removed (tracking/retention.py records the cut-off before it deletes anything). A day before
    it may have lost some or all of its clicks: its rollup rows are the only totals left."""
    out = {}
    rows = RollupState.objects.filter(name__startswith=RETAINED_PREFIX).values_list("name", "last_id")
    for name, stamp in rows:
        program_id = name.removeprefix(RETAINED_PREFIX)
        if program_id.isdigit() and stamp:
            out[int(program_id)] = datetime.fromtimestamp(stamp, UTC).date()
    return out


def rebuild() -> int:
    """Recompute every day from the raw clicks (after a bulk import): one pass over the clicks table.

    Days before a program's retention cut-off are left as they are: their clicks are gone (or some
    of them), and a recount would lower or erase totals nothing else holds any more."""
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(name=STATE)
        high = Click.objects.aggregate(m=Max("pk"))["m"] or 0
        kept = retained_since()
        recounted = ~Q(program_id__in=list(kept))
        for program_id, first in kept.items():
            recounted |= Q(program_id=program_id, day__gte=first)
        ClickDaily.objects.filter(recounted).delete()
        ProgramClickDaily.objects.filter(recounted).delete()
        if connection.vendor == "postgresql":
            # Programs without a cut-off have no row in `kept` and keep every click (w.pid IS NULL).
            # created_at is timestamptz; the session runs in UTC (Django sets TIME_ZONE=UTC).
            where = """
                FROM tracking_click c
                LEFT JOIN unnest(%s::bigint[], %s::date[]) AS w(pid, first_day) ON w.pid = c.program_id
                WHERE c.id <= %s AND (w.pid IS NULL OR (c.created_at AT TIME ZONE 'UTC')::date >= w.first_day)
            """
            params = [list(kept), list(kept.values()), high]
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO tracking_clickdaily (program_id, affiliate_id, day, clicks, visitors) "
                    "SELECT c.program_id, c.affiliate_id, (c.created_at AT TIME ZONE 'UTC')::date, count(*), "
                    f"count(DISTINCT c.visitor_id) {where} GROUP BY 1, 2, 3",
                    params,
                )
                cursor.execute(
                    "INSERT INTO tracking_programclickdaily (program_id, day, clicks, visitors) "
                    "SELECT c.program_id, (c.created_at AT TIME ZONE 'UTC')::date, count(*), "
                    f"count(DISTINCT c.visitor_id) {where} GROUP BY 1, 2",
                    params,
                )
        else:
            days = (
                Click.objects.filter(pk__lte=high)
                .annotate(day=TruncDate("created_at"))
                .values_list("program_id", "day")
                .distinct()
                .order_by()
            )
            for program_id, day in sorted(set(days)):
                if program_id in kept and day < kept[program_id]:
                    continue
                _recompute_day(program_id, day, high)
        state.last_id = high
        state.updated_at = timezone.now()
        state.save(update_fields=["last_id", "updated_at"])
    return high


def watermark() -> int:
    return RollupState.objects.filter(name=STATE).values_list("last_id", flat=True).first() or 0


def click_totals(
    period_start: datetime,
    period_end: datetime,
    *,
    program_id: int | None = None,
    affiliate_ids: list[int] | None = None,
    by_day: bool = True,
) -> dict:
    """Clicks and visitors per day (and per affiliate when affiliate_ids is given) in [start, end).

    Returns {"days": {day: (clicks, visitors)}, "affiliates": {id: (clicks, visitors)}}: the rollups
    below the watermark plus the live tail above it. With by_day=False (affiliates only) the rows
    are summed per affiliate in the database and "days" stays empty: a year of ten affiliates is
    ten rows, not 3,650.
    """
    if not by_day and affiliate_ids is None:
        raise ValueError("by_day=False needs affiliate_ids")
    high = watermark()
    first, last = period_start.date(), (period_end - timedelta(microseconds=1)).date()
    days: dict[date, list[int]] = {}
    per_affiliate: dict[int, list[int]] = {}

    def add(day, affiliate_id, clicks, visitors):
        if day is not None:
            bucket = days.setdefault(day, [0, 0])
            bucket[0] += clicks
            bucket[1] += visitors
        if affiliate_id is not None:
            row = per_affiliate.setdefault(affiliate_id, [0, 0])
            row[0] += clicks
            row[1] += visitors

    if affiliate_ids is not None:
        rolled = ClickDaily.objects.filter(affiliate_id__in=affiliate_ids, day__gte=first, day__lte=last)
        rolled_group = ["day", "affiliate_id"] if by_day else ["affiliate_id"]
        for row in rolled.values(*rolled_group).annotate(c=Sum("clicks"), v=Sum("visitors")).order_by():
            add(row.get("day"), row["affiliate_id"], row["c"], row["v"])
        tail = Click.objects.filter(pk__gt=high, affiliate_id__in=affiliate_ids)
    else:
        rolled = ProgramClickDaily.objects.filter(program_id=program_id, day__gte=first, day__lte=last)
        for row in rolled.values("day").annotate(c=Sum("clicks"), v=Sum("visitors")).order_by():
            add(row["day"], None, row["c"], row["v"])
        tail = Click.objects.filter(pk__gt=high, program_id=program_id)
    tail = tail.filter(created_at__gte=period_start, created_at__lt=period_end).annotate(
        day=TruncDate("created_at")
    )
    # The tail is grouped per day even when only affiliates are wanted: visitors are distinct per
    # day in the rollups, and the tail must count them the same way.
    group = ["day", "affiliate_id"] if affiliate_ids is not None else ["day"]
    for row in tail.values(*group).annotate(c=Count("pk"), v=Count("visitor_id", distinct=True)).order_by():
        add(row["day"] if by_day else None, row.get("affiliate_id"), row["c"], row["v"])
    return {
        "days": {d: tuple(v) for d, v in days.items()},
        "affiliates": {a: tuple(v) for a, v in per_affiliate.items()},
    }


def click_totals_by_affiliate(period_start: datetime, period_end: datetime, *, program_id: int) -> dict:
    """{affiliate id: (clicks, visitors)} of a program's affiliates in [start, end): the rollups
    below the watermark, read by their (program, day) index, plus the live tail above it.
    Visitors are the sum of each day's distinct visitors, as everywhere on the dashboards."""
    high = watermark()
    first, last = period_start.date(), (period_end - timedelta(microseconds=1)).date()
    totals: dict[int, list[int]] = {}
    rolled = ClickDaily.objects.filter(program_id=program_id, day__gte=first, day__lte=last)
    for row in rolled.values("affiliate_id").annotate(c=Sum("clicks"), v=Sum("visitors")).order_by():
        totals[row["affiliate_id"]] = [row["c"], row["v"]]
    tail = (
        Click.objects.filter(
            pk__gt=high, program_id=program_id, created_at__gte=period_start, created_at__lt=period_end
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "affiliate_id")
        .annotate(c=Count("pk"), v=Count("visitor_id", distinct=True))
        .order_by()
    )
    for row in tail:
        bucket = totals.setdefault(row["affiliate_id"], [0, 0])
        bucket[0] += row["c"]
        bucket[1] += row["v"]
    return {affiliate_id: tuple(v) for affiliate_id, v in totals.items()}
