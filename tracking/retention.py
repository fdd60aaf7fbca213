"""Click retention, once a day (issue 20; docs/decisions.md "Clicks by month").

Per program: clicks older than `click_retention_days` are removed, user agents older than
`user_agent_retention_days` are blanked, and the visitor ids of clicks that never converted (no
event or referral points at them) are blanked once the cookie window and the hold period are both
over — such an id can no longer attribute anything, and it is the one identifier tying a browser to
its visits. Cut-offs are UTC midnights, so a day is either whole or gone.

Order matters: the rollups are refreshed first, so the daily totals (ClickDaily,
ProgramClickDaily) hold every click before any is removed; the rollup refresh never recomputes a
day before a program's retention cut-off (tracking/rollups.py), so those totals stay. The cut-off
is recorded per program (a `retention.clicks.<id>` RollupState row) before anything is deleted, and
`rollups.rebuild()` leaves the days before it alone.

On PostgreSQL a monthly partition in which every row is past its program's retention is dropped
whole (a catalogue change, no dead tuples, no vacuum); rows of a month that still holds younger
rows of another program are deleted in batches. SQLite deletes in batches.

How far blanking has gone is kept per program in RollupState rows (`last_id` holds the cut-off as
a Unix timestamp), so each day's run reads only the day that newly passed the cut-off.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone

from affiliates.models import Program

from . import partitions, rollups
from .models import Click, Event, Referral, RollupState

BATCH = 5000


def cutoff(now: datetime, days: int) -> datetime:
    """The UTC midnight `days` days before today: rows created before it are past retention."""
    return datetime.combine(now.date() - timedelta(days=days), time.min, tzinfo=UTC)


def _fold_rollups() -> None:
    # Bounded: each call folds up to two million clicks; clicks keep arriving meanwhile.
    for _ in range(100):
        if not rollups.refresh():
            return


def _partition_droppable(partition: partitions.Partition, cutoffs: dict[int, datetime]) -> bool:
    """Every row of the partition is past its own program's retention."""
    with connection.cursor() as cursor:
        for program_id, at in cutoffs.items():
            if at >= partition.end:
                continue  # all of this program's rows in the month are past retention
            cursor.execute(
                f"SELECT 1 FROM {partition.name} WHERE program_id = %s AND created_at >= %s LIMIT 1",
                [program_id, at],
            )
            if cursor.fetchone():
                return False
        # Rows of a program that no longer exists cannot be there (the foreign key cascades).
    return True


def _drop_partitions(cutoffs: dict[int, datetime]) -> list[str]:
    if not cutoffs:
        return []
    # A month is a candidate only when it is wholly past the shortest retention.
    latest_cutoff = max(cutoffs.values())
    dropped = []
    old = partitions.legacy()
    for partition in ([old] if old else []) + partitions.monthly():
        if partition.end > latest_cutoff:
            break
        if not _partition_droppable(partition, cutoffs):
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            # No database foreign key points at clicks (partitioned); the references go first.
            for table in ("tracking_event", "tracking_referral"):
                cursor.execute(
                    f"UPDATE {table} SET click_id = NULL WHERE click_id IN (SELECT id FROM {partition.name})"
                )
            partitions.drop(partition)
        dropped.append(partition.name)
    return dropped


def _delete_old(program_id: int, before: datetime) -> int:
    deleted = 0
    while True:
        old = Click.objects.filter(program_id=program_id, created_at__lt=before)
        ids = list(old.order_by().values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        # delete() sets Event.click and Referral.click to NULL first (on_delete=SET_NULL).
        Click.objects.filter(pk__in=ids, created_at__lt=before).delete()
        deleted += len(ids)


def _since(name: str) -> datetime | None:
    done = RollupState.objects.filter(name=name).values_list("last_id", flat=True).first()
    return datetime.fromtimestamp(done, UTC) if done else None


def _blank(*, name: str, program_id: int, before: datetime, field: str, unconverted: bool = False) -> int:
    """Blank `field` of the program's clicks created before `before` (and after the previous run's
    cut-off); returns how many rows changed."""
    since = _since(name)
    rows = Click.objects.filter(program_id=program_id, created_at__lt=before).exclude(**{field: ""})
    if unconverted:
        rows = rows.filter(
            ~Exists(Event.objects.filter(click_id=OuterRef("pk"))),
            ~Exists(Referral.objects.filter(click_id=OuterRef("pk"))),
        )
    if connection.vendor == "postgresql":
        changed = _blank_by_day(rows, field=field, since=since, before=before)
    else:
        changed = _blank_in_batches(rows, field=field, since=since, before=before)
    RollupState.objects.update_or_create(
        name=name, defaults={"last_id": int(before.timestamp()), "updated_at": timezone.now()}
    )
    return changed


def _blank_by_day(rows, *, field: str, since: datetime | None, before: datetime) -> int:
    """PostgreSQL: one UPDATE per day of clicks, which the time bounds find in one partition. In
    batches of ids, each batch's `id IN (…)` was looked up in every partition's primary key: 4.6 s
    for a day's 136,986 user agents at 100,000,000 clicks against 2.8 s in one statement
    (bench/LOG.md, 2026-12-07). A daily run has one day to do; the first run ever walks every day
    since the oldest click, each statement as short as a daily run's. Nothing else writes old
    clicks, so the rows' locks for the statement stop no one."""
    start = since or rows.order_by().aggregate(first=Min("created_at"))["first"]
    changed = 0
    while start is not None and start < before:
        end = min(start + timedelta(days=1), before)
        changed += rows.filter(created_at__gte=start, created_at__lt=end).update(**{field: ""})
        start = end
    return changed


def _blank_in_batches(rows, *, field: str, since: datetime | None, before: datetime) -> int:
    """SQLite (one table): BATCH rows per statement, so that no write holds the database long."""
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    changed = 0
    while True:
        ids = list(rows.order_by().values_list("pk", flat=True)[:BATCH])
        if not ids:
            return changed
        bound = Click.objects.filter(pk__in=ids, created_at__lt=before)
        if since is not None:
            bound = bound.filter(created_at__gte=since)
        changed += bound.update(**{field: ""})


def _mark_retained(program_id: int, at: datetime) -> None:
    """Record, before anything is deleted, that the program's clicks before `at` are going, so that
    `rollups.rebuild()` leaves those days' totals alone. Never moved back: a longer retention set
    later does not bring deleted clicks back."""
    stamp = int(at.timestamp())
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(
            name=f"{rollups.RETAINED_PREFIX}{program_id}"
        )
        if stamp > state.last_id:
            state.last_id = stamp
            state.updated_at = timezone.now()
            state.save(update_fields=["last_id", "updated_at"])


def retention_apply(*, now: datetime) -> dict:
    """Apply every program's retention settings; returns what was done, for the task's result."""
    _fold_rollups()
    programs = list(
        Program.objects.values_list(
            "id", "click_retention_days", "user_agent_retention_days", "cookie_days", "hold_days"
        )
    )
    cutoffs = {pid: cutoff(now, days) for pid, days, *_ in programs}
    for pid, at in cutoffs.items():
        _mark_retained(pid, at)
    dropped = _drop_partitions(cutoffs)
    deleted = sum(_delete_old(pid, at) for pid, at in cutoffs.items())
    blanked_agents = forgotten = 0
    for pid, _days, agent_days, cookie_days, hold_days in programs:
        blanked_agents += _blank(
            name=f"retention.user_agent.{pid}",
            program_id=pid,
            before=cutoff(now, agent_days),
            field="user_agent",
        )
        forgotten += _blank(
            name=f"retention.visitor.{pid}",
            program_id=pid,
            before=cutoff(now, cookie_days + hold_days),
            field="visitor_id",
            unconverted=True,
        )
    return {
        "dropped_partitions": dropped,
        "deleted_clicks": deleted,
        "blanked_user_agents": blanked_agents,
        "forgotten_visitors": forgotten,
    }
