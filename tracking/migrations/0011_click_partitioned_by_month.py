"""Clicks partitioned by month on PostgreSQL (issue 20; docs/decisions.md "Clicks by month").

The existing rows move in this migration, in one transaction:
1. `LOCK ... IN SHARE MODE`: writers wait (the click buffer keeps clicks in Redis meanwhile),
   readers go on;
2. a partitioned twin is created, with one partition per month from the oldest click (at most ten
   years back; older rows go to the default partition) to three months ahead, plus the default;
3. the rows are copied into it before any index exists (one sequential pass, then one index build
   per partition, faster than maintaining indexes row by row);
4. the old table is dropped and the twin takes its name, then the primary key (id, created_at) —
   it must include the partition key —, the indexes, the BRIN and the foreign keys are built under
   their old names. From the DROP on readers wait too, until the commit.

Django's state is unchanged (the model still says `id` is the primary key, which stays true in
practice: ids come from one identity sequence). SQLite keeps its one table. The reverse is a no-op:
the partitioned table serves the earlier schema as it is.
"""

from datetime import UTC, datetime, timedelta

from django.db import migrations

TABLE = "tracking_click"
OLDEST_MONTHS = 120
AHEAD = 3


def _next(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        if cursor.fetchone()[0] == "p":
            return  # already partitioned
        cursor.execute(f"LOCK TABLE {TABLE} IN SHARE MODE")
        cursor.execute(f"SELECT min(created_at), max(id) FROM {TABLE}")
        oldest, max_id = cursor.fetchone()
        now = datetime.now(UTC)
        floor = datetime(now.year, now.month, 1, tzinfo=UTC)
        for _ in range(OLDEST_MONTHS):
            floor = (floor - timedelta(days=1)).replace(day=1)
        first = datetime(now.year, now.month, 1, tzinfo=UTC)
        if oldest is not None:
            first = min(first, max(floor, datetime(oldest.year, oldest.month, 1, tzinfo=UTC)))
        last = datetime(now.year, now.month, 1, tzinfo=UTC)
        for _ in range(AHEAD + 1):
            last = _next(last)

        new = f"{TABLE}_new"
        cursor.execute(
            f"CREATE TABLE {new} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY) "
            "PARTITION BY RANGE (created_at)"
        )
        start = first
        while start < last:
            end = _next(start)
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{start.year:04d}{start.month:02d} PARTITION OF {new} "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
            start = end
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {new} DEFAULT")
        cursor.execute(f"INSERT INTO {new} SELECT * FROM {TABLE}")
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.execute(f"ALTER TABLE {new} RENAME TO {TABLE}")
        cursor.execute(f"ALTER SEQUENCE {new}_id_seq RENAME TO {TABLE}_id_seq")
        if max_id is not None:
            cursor.execute(f"SELECT setval('{TABLE}_id_seq', %s)", [max_id])
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, created_at)")
        cursor.execute(f"CREATE INDEX click_visitor_idx ON {TABLE} (program_id, visitor_id, created_at DESC)")
        cursor.execute(f"CREATE INDEX click_affiliate_idx ON {TABLE} (affiliate_id, created_at DESC)")
        cursor.execute(f"CREATE INDEX click_created_brin ON {TABLE} USING brin (created_at)")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT tracking_click_affiliate_id_ca352892_fk_affiliates_affiliate_id "
            "FOREIGN KEY (affiliate_id) REFERENCES affiliates_affiliate(id) DEFERRABLE INITIALLY DEFERRED"
        )
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT tracking_click_program_id_21bbeb39_fk_affiliates_program_id "
            "FOREIGN KEY (program_id) REFERENCES affiliates_program(id) DEFERRABLE INITIALLY DEFERRED"
        )
        cursor.execute(f"ANALYZE {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0010_click_fk_without_constraint")]
    operations = [migrations.RunPython(partition, migrations.RunPython.noop, elidable=False)]
