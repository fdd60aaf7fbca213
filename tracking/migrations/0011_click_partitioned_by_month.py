"""Clicks partitioned by month on PostgreSQL (issue 20; docs/decisions.md "Clicks by month" and
"A partition migration without a long lock").

A fresh install (no clicks yet) gets the partitioned table at once: one partition per month from
this month to three months ahead, plus the default.

An install with clicks keeps them where they are: the old table becomes one partition,
`tracking_click_legacy`, covering everything before `boundary` (the first of next month, or of the
month after when the month ends within a day), and monthly partitions start at `boundary`. Writes
are blocked only for catalogue changes, however many rows there are:

1. (short) a CHECK constraint `created_at < boundary` is added NOT VALID: only new rows are checked;
2. (no lock that blocks writes) rows already past `boundary` (future-dated: normally none; the BRIN
   index finds them) move to a side table; the constraint is validated (SHARE UPDATE EXCLUSIVE:
   reads and writes go on); the primary key's successor, a unique index on (id, created_at) — the
   partition key must be in it — is built CONCURRENTLY;
3. (ACCESS EXCLUSIVE, one short transaction) the old table is renamed, its identity handed to the
   new partitioned parent with the sequence's position, the new index becomes its primary key; the
   parent gets the indexes and foreign keys of the old table under their old names, and the old
   table is ATTACHed as the legacy partition: the validated constraint spares the scan, the existing
   indexes and foreign keys are adopted instead of built or checked; the monthly partitions and the
   default are created empty, and the side table's rows are put back;
4. ANALYZE, which blocks nothing.

Retention (tracking/retention.py) empties the legacy partition as its rows age and drops it whole
once every row in it is past its program's retention. Each step checks what is already done, so a
migration interrupted between steps is resumed by running it again. The migration is not atomic
for that reason: its steps are separate transactions.

Django's state is unchanged (the model still says `id` is the primary key, which stays true in
practice: ids come from one identity sequence). SQLite keeps its one table. The reverse is a no-op:
the partitioned table serves the earlier schema as it is.
"""

from datetime import UTC, datetime, timedelta

from django.db import migrations, transaction

TABLE = "tracking_click"
LEGACY = "tracking_click_legacy"
CHECK = "tracking_click_legacy_range"
AHEAD_TABLE = "tracking_click_ahead"
NEW_KEY = "tracking_click_legacy_pkey"
AHEAD = 3
LOCK_TRIES = 20


def _next(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def _month(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _scalar(cursor, sql, params=None):
    cursor.execute(sql, params)
    row = cursor.fetchone()
    return row[0] if row else None


def _create_months(cursor, first: datetime, now: datetime) -> None:
    last = _month(now)
    for _ in range(AHEAD + 1):
        last = _next(last)
    start = first
    while start < last:
        end = _next(start)
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE}_p{start.year:04d}{start.month:02d} PARTITION OF {TABLE} "
            "FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
        start = end
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE}_default PARTITION OF {TABLE} DEFAULT")


def _fresh(connection, now: datetime) -> None:
    """No clicks yet: build the partitioned table in place of the empty one."""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        if _scalar(cursor, f"SELECT EXISTS (SELECT 1 FROM {TABLE})"):
            raise RuntimeError("clicks arrived while the migration started; run it again")
        new = f"{TABLE}_new"
        cursor.execute(
            f"CREATE TABLE {new} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY) "
            "PARTITION BY RANGE (created_at)"
        )
        indexes, foreign_keys = _definitions(cursor)
        position = _sequence_position(cursor)  # ids of deleted clicks are not given out again
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.execute(f"ALTER TABLE {new} RENAME TO {TABLE}")
        cursor.execute(f"ALTER SEQUENCE {new}_id_seq RENAME TO {TABLE}_id_seq")
        _set_sequence(cursor, position)
        _parent_keys(cursor, indexes, foreign_keys)
        _create_months(cursor, _month(now), now)


def _definitions(cursor) -> tuple[list[str], list[tuple[str, str]]]:
    """The old table's secondary indexes (CREATE INDEX statements naming `tracking_click`) and
    foreign keys (name, definition): the parent gets the same, so that ATTACH adopts them."""
    cursor.execute(
        "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY x.indexrelid",
        [TABLE],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [TABLE],
    )
    return indexes, list(cursor.fetchall())


def _parent_keys(cursor, indexes: list[str], foreign_keys: list[tuple[str, str]]) -> None:
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, created_at)")
    for statement in indexes:
        cursor.execute(statement)
    for name, definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")


def _boundary(now: datetime) -> datetime:
    # A day of margin: clicks stamped before the swap must still fit under the constraint.
    return _next(_month(now + timedelta(days=1)))


def _existing(connection, now: datetime) -> None:
    with connection.cursor() as cursor:
        boundary = _scalar(
            cursor,
            "SELECT (regexp_match(pg_get_constraintdef(oid), '''([^'']+)'''))[1]::timestamptz "
            "FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
            [TABLE, CHECK],
        )
        if boundary is None:
            # 1. Only rows written from now on are checked; the lock is held for a moment.
            boundary = _boundary(now)
            with transaction.atomic(using=connection.alias):
                cursor.execute("SET LOCAL lock_timeout = '5s'")
                cursor.execute(
                    f"ALTER TABLE {TABLE} ADD CONSTRAINT {CHECK} CHECK (created_at < %s) NOT VALID",
                    [boundary],
                )
        # 2. Rows already at or past the boundary wait in a side table (the BRIN index finds them).
        with transaction.atomic(using=connection.alias):
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {AHEAD_TABLE} (LIKE {TABLE})")
            cursor.execute(
                f"WITH moved AS (DELETE FROM {TABLE} WHERE created_at >= %s RETURNING *) "
                f"INSERT INTO {AHEAD_TABLE} SELECT * FROM moved",
                [boundary],
            )
        # Reads and writes go on during both (SHARE UPDATE EXCLUSIVE).
        cursor.execute(f"ALTER TABLE {TABLE} VALIDATE CONSTRAINT {CHECK}")
        valid = _scalar(
            cursor,
            "SELECT x.indisvalid FROM pg_index x WHERE x.indexrelid = to_regclass(%s)",
            [NEW_KEY],
        )
        if valid is False:  # a concurrent build that was interrupted leaves an invalid index
            cursor.execute(f"DROP INDEX CONCURRENTLY {NEW_KEY}")
        if not valid:
            cursor.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {NEW_KEY} ON {TABLE} (id, created_at)")

        # 3. The swap: catalogue changes only. The lock waits behind running transactions; waiting
        # short and trying again keeps the queue behind it (every click write) short too.
        for attempt in range(LOCK_TRIES):
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
                    cursor.execute("SET LOCAL lock_timeout = 0")
                    _swap(cursor, boundary, now)
                break
            except Exception as exc:
                if getattr(getattr(exc, "__cause__", None), "sqlstate", None) != "55P03" or (
                    attempt == LOCK_TRIES - 1
                ):
                    raise
        # 4. Statistics for the planner; blocks neither reads nor writes.
        cursor.execute(f"ANALYZE {TABLE}")


def _sequence_position(cursor) -> tuple[int, bool] | None:
    sequence = _scalar(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    if not sequence:
        return None
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
    return cursor.fetchone()


def _set_sequence(cursor, position: tuple[int, bool] | None) -> None:
    if position is not None:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), %s, %s)", list(position))


def _swap(cursor, boundary: datetime, now: datetime) -> None:
    position = _sequence_position(cursor)
    indexes, foreign_keys = _definitions(cursor)
    indexes = [statement for statement in indexes if f" {NEW_KEY} " not in statement]
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {LEGACY}")
    cursor.execute(
        "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary AND c.relname <> %s",
        [LEGACY, NEW_KEY],
    )
    for (name,) in cursor.fetchall():
        cursor.execute(f"ALTER INDEX {name} RENAME TO {name}_legacy")
    cursor.execute(f"ALTER TABLE {LEGACY} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    cursor.execute(f"ALTER TABLE {LEGACY} DROP CONSTRAINT {TABLE}_pkey")
    cursor.execute(f"ALTER TABLE {LEGACY} ADD CONSTRAINT {NEW_KEY} PRIMARY KEY USING INDEX {NEW_KEY}")

    cursor.execute(f"CREATE TABLE {TABLE} (LIKE {LEGACY} INCLUDING DEFAULTS) PARTITION BY RANGE (created_at)")
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
    _set_sequence(cursor, position)
    _parent_keys(cursor, indexes, foreign_keys)
    cursor.execute(
        f"ALTER TABLE {TABLE} ATTACH PARTITION {LEGACY} FOR VALUES FROM (MINVALUE) TO (%s)", [boundary]
    )
    cursor.execute(f"ALTER TABLE {LEGACY} DROP CONSTRAINT {CHECK}")  # the partition bound says it now
    _create_months(cursor, boundary, now)
    cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {AHEAD_TABLE}")
    cursor.execute(f"DROP TABLE {AHEAD_TABLE}")


def partition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if _scalar(cursor, "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE]) == "p":
            return  # already partitioned
        has_rows = _scalar(cursor, f"SELECT EXISTS (SELECT 1 FROM {TABLE})")
    now = datetime.now(UTC)
    if has_rows:
        _existing(connection, now)
    else:
        _fresh(connection, now)


class Migration(migrations.Migration):
    atomic = False  # its steps are separate transactions: see the module docstring
    dependencies = [("tracking", "0010_click_fk_without_constraint")]
    operations = [migrations.RunPython(partition, migrations.RunPython.noop, elidable=False)]
