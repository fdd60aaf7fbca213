"""How long the clicks partition migration (tracking 0011) blocks writes on an existing install.

    .venv/bin/python bench/partition_migration.py --rows 10000000 [--db refapp_bench_partmig]

Recreates its own database (the name must start with refapp_bench), migrates it to tracking 0010
(the unpartitioned clicks table) with the affiliates app at its latest, seeds `--rows` clicks over
13 months with set-based SQL (INSERT … SELECT over generate_series, secondary indexes dropped during
the load and rebuilt after, then VACUUM ANALYZE, as an install's table would be), and then runs
`migrate tracking 0011` while two probes work on their own connections:

  writer  one click INSERT after another (a pause of --interval between them), as the click buffer's
          drain or the click endpoint would;
  reader  a count of the last hour's clicks of the program, as a dashboard's live tail would.

The longest single INSERT during the migration is the window in which writes were blocked (to the
probe's resolution). It checks that every row is still there, in the legacy partition, that ids
went on from where they were, and that a new click lands in its partition. One JSON object on the
last line of stdout; progress on stderr. PostgreSQL only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DAYS = 395  # 13 months
BATCH = 1_000_000
AFFILIATES = 100
INSERT = """
INSERT INTO tracking_click (visitor_id, created_at, landing_url, referrer, utm_source, utm_medium,
    utm_campaign, utm_term, utm_content, sub_id, user_agent, country, ip_prefix, ip_hash, source,
    affiliate_id, program_id)
VALUES ('probe', now(), 'https://probe.example/', '', '', '', '', '', '', '', '', '', '', '', 'script', %s, %s)
RETURNING id, tableoid::regclass::text
"""


def log(message: str) -> None:
    print(f"[bench.partition_migration] {message}", file=sys.stderr, flush=True)


class Probe(threading.Thread):
    """Runs one statement after another on its own connection, timing each."""

    def __init__(self, database_url: str, statement: str, params: list, interval: float):
        super().__init__(daemon=True)
        self.database_url = database_url
        self.statement = statement
        self.params = params
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (start, seconds)
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while not self.stop_event.is_set():
                started = time.monotonic()
                try:
                    conn.execute(self.statement, self.params).fetchall()
                except psycopg.Error as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}".strip()[:300])
                self.samples.append((started, time.monotonic() - started))
                self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=120)

    def during(self, start: float, end: float) -> dict:
        """Figures of the statements that overlapped [start, end]."""
        inside = [(s, d) for s, d in self.samples if s + d >= start and s <= end]
        before = [d for s, d in self.samples if s + d < start]
        durations = sorted(d for _, d in inside)
        return {
            "statements": len(inside),
            "longest_s": round(durations[-1], 3) if durations else None,
            "p50_ms": round(durations[len(durations) // 2] * 1000, 2) if durations else None,
            "over_1s": sum(1 for d in durations if d > 1.0),
            "baseline_longest_ms": round(max(before) * 1000, 2) if before else None,
            "errors": self.errors[:5],
        }


def seed(cursor, program_id: int, a0: int, rows: int) -> None:
    from bench.scale import IndexesOff, in_parallel

    def batch(job_cursor, lo: int, hi: int) -> None:
        started = time.monotonic()
        job_cursor.execute(
            f"""
            INSERT INTO tracking_click (visitor_id, created_at, landing_url, referrer, utm_source,
                utm_medium, utm_campaign, utm_term, utm_content, sub_id, user_agent, country,
                ip_prefix, ip_hash, source, affiliate_id, program_id)
            SELECT 'mv' || (g / 3), now() - interval '{DAYS} days' + (g::float8 / %(total)s) * interval '{DAYS} days',
                'https://migrate.example/?ref=seed', '', '', '', '', '', '', '', 'Mozilla/5.0 (seed)', '',
                '', '', 'script', %(a0)s + g %% {AFFILIATES}, %(prog)s
            FROM generate_series(%(lo)s, %(hi)s) g
            """,
            {"total": rows, "lo": lo, "hi": hi, "prog": program_id, "a0": a0},
        )
        log(f"  clicks {hi:,}/{rows:,} ({time.monotonic() - started:.1f}s)")

    jobs = []
    for start in range(0, rows, BATCH):
        lo, hi = start + 1, min(start + BATCH, rows)
        jobs.append(lambda c, lo=lo, hi=hi: batch(c, lo, hi))
    with IndexesOff(cursor, ["tracking_click"]):
        in_parallel(jobs)


def measure(*, rows: int, pg_url: str, db_name: str, interval: float) -> dict:
    from bench.run import recreate_database

    database_url = f"{pg_url}/{db_name}"
    log(f"recreating database {db_name}")
    recreate_database(pg_url, db_name)
    os.environ.update(
        DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="refapp.settings", LOG_LEVEL="WARNING"
    )
    os.environ.setdefault("SECRET_KEY", "bench")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from affiliates.models import Program
    from bench.scale import insert_affiliates
    from tracking import partitions

    started = time.monotonic()
    call_command("migrate", "tracking", "0010", verbosity=0)
    call_command("migrate", "affiliates", verbosity=0)
    program = Program.objects.create(slug="migrate", name="Migrate", website="https://migrate.example")
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        a0, _ = insert_affiliates(cursor, program.pk, AFFILIATES, "pm")
        log(f"seeding {rows:,} clicks over {DAYS} days")
        seed(cursor, program.pk, a0, rows)
        seed_seconds = round(time.monotonic() - started, 1)
        t0 = time.monotonic()
        cursor.execute("VACUUM ANALYZE tracking_click")
        vacuum_seconds = round(time.monotonic() - t0, 1)
        cursor.execute(
            "SELECT count(*), max(id), pg_total_relation_size('tracking_click') FROM tracking_click"
        )
        count_before, max_id_before, size_before = cursor.fetchone()
    log(f"  seeded in {seed_seconds}s, vacuum analyze {vacuum_seconds}s, {size_before / 2**20:.0f} MB")

    writer = Probe(database_url, INSERT, [a0, program.pk], interval)
    reader = Probe(
        database_url,
        "SELECT count(*) FROM tracking_click WHERE program_id = %s AND created_at >= now() - interval '1 hour'",
        [program.pk],
        interval,
    )
    writer.start()
    reader.start()
    time.sleep(2)  # a baseline before the migration
    log("migrate tracking 0011, with the writer and reader probes running")
    t0 = time.monotonic()
    call_command("migrate", "tracking", "0011", verbosity=0)
    t1 = time.monotonic()
    time.sleep(2)
    writer.stop()
    reader.stop()
    migration_seconds = round(t1 - t0, 2)
    log(f"  migration took {migration_seconds}s")

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_click WHERE visitor_id <> 'probe'")
        count_after = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tracking_click_legacy WHERE visitor_id <> 'probe'")
        in_legacy = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tracking_click WHERE visitor_id = 'probe'")
        probe_rows = cursor.fetchone()[0]
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'tracking_click'::regclass")
        partitioned = cursor.fetchone()[0] == "p"
        cursor.execute(INSERT, [a0, program.pk])
        new_id, landed_in = cursor.fetchone()
    legacy = partitions.legacy()
    call_command("migrate", verbosity=0)  # everything after, so the app's own code runs against it
    from django.utils import timezone

    ahead = partitions.ensure_ahead(now=timezone.now())
    writes = writer.during(t0, t1)
    reads = reader.during(t0, t1)
    result = {
        "rows": rows,
        "table_mb_before": round(size_before / 2**20),
        "seed_seconds": seed_seconds,
        "vacuum_analyze_seconds": vacuum_seconds,
        "migration_seconds": migration_seconds,
        "writes_blocked_longest_s": writes["longest_s"],
        "reads_blocked_longest_s": reads["longest_s"],
        "writer": writes,
        "reader": reads,
        "probe_interval_s": interval,
        "partitioned": partitioned,
        "rows_kept": count_after == count_before,
        "rows_in_legacy_partition": in_legacy,
        "probe_rows_written": probe_rows,
        "probe_inserts_failed": len(writer.errors),
        "ids_continue": new_id > max_id_before,
        "new_click_landed_in": landed_in,
        "legacy_until": legacy.end.isoformat() if legacy else None,
        "partitions_created_by_daily_job": ahead,
        "note": "the longest probe INSERT while the migration ran is the blocked-writes window, to "
        "the probe's interval; the machine is shared, so the figures are noisy",
    }
    result["ok"] = bool(
        partitioned
        and result["rows_kept"]
        and in_legacy == count_before
        and probe_rows == len(writer.samples) - len(writer.errors)
        and result["ids_continue"]
        and not writer.errors
        and not reader.errors
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", default="refapp_bench_partmig", help="dropped and recreated")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--interval", type=float, default=0.02, help="pause between probe statements (s)")
    args = parser.parse_args(argv)
    if not args.db.startswith("refapp_bench") or args.rows < 1:
        parser.error("--db must start with refapp_bench (it is dropped) and --rows be at least 1")
    result = measure(rows=args.rows, pg_url=args.pg_url.rstrip("/"), db_name=args.db, interval=args.interval)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
