"""Django-side helpers of the benchmark for the sections that need data at scale.

Run by bench/run.py in a subprocess whose environment points DATABASE_URL at the right database:

    python bench/scale.py seed --clicks 10000000 --events 300000 --affiliates 20000 --csv-rows 1000000
    python bench/scale.py sessions              # staff and portal session keys for the page probes
    python bench/scale.py explain URL...        # EXPLAIN (ANALYZE, BUFFERS) of each page's slowest query
    python bench/scale.py payouts-seed --affiliates 20000
    python bench/scale.py payouts-run           # payouts_create; a Celery worker beside it sends
    python bench/scale.py load-seed --out-dir D # a key, codes and visitors for events to `scale`
    python bench/scale.py conversions-reset     # empty the conversion tables before the fair events figure
    python bench/scale.py retention             # the daily retention job dropping the oldest month

Each prints one JSON object on its last stdout line. The seed writes with set-based SQL
(INSERT … SELECT over generate_series, run inside PostgreSQL), with the big tables' secondary
indexes dropped during the load and rebuilt afterwards from their own definitions, so ten million
clicks take minutes rather than the hour row-by-row inserts would. PostgreSQL only.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

SCALE_SLUG = "scale"
CSV_SLUG = "csvexp"
PAYOUT_SLUG = "pay"
DAYS = 730
BATCH = 1_000_000
LOAD_VISITORS = 100_000  # bench.lua's MAX_LINES: the most visitor ids a wrk thread reads
SEED_WORKERS = 2  # concurrent load statements: the machine's cores
META_TABLE = "bench_seed_meta"
ADMIN_USERNAME = "bench-admin"


def log(message: str) -> None:
    print(f"[bench.scale] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM) in MB.

    Not getrusage's ru_maxrss: Linux carries that over fork and exec, so a child started by a big
    parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- set-based seeding ------------------------------------------------------------------------


def _indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of a table's secondary indexes (not its primary key)."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY i.relname
        """,
        [table],
    )
    return list(cursor.fetchall())


class IndexesOff:
    """Drop a table's secondary indexes for a bulk load, recreate them (same definitions) after."""

    def __init__(self, cursor, tables: list[str]):
        self.cursor = cursor
        self.tables = tables
        self.saved = [ix for table in tables for ix in _indexes(cursor, table)]

    def __enter__(self):
        for name, _ in self.saved:
            self.cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        return self

    def __exit__(self, *exc):
        for name, definition in self.saved:
            started = time.monotonic()
            # A partitioned table's index reads back as `ON ONLY` (the parent's index alone, left
            # INVALID until every partition has one attached): rebuilt as it was created, over
            # every partition. Rebuilt `ON ONLY`, the scale seed's partitions had no visitor index
            # and each event's click lookup read whole months (15.8 ms of PostgreSQL CPU per event
            # at 2,000,000 clicks against 0.97 ms on the load database).
            self.cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
            log(f"  index {name} rebuilt in {time.monotonic() - started:.1f}s")
        if exc[0] is None:
            self.cursor.execute(
                "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " WHERE NOT x.indisvalid AND x.indrelid = ANY(%s::regclass[])",
                [list(self.tables)],
            )
            invalid = [row[0] for row in self.cursor.fetchall()]
            if invalid:
                raise RuntimeError(f"indexes left invalid after the bulk load: {invalid}")
        return False


# The conversion rollups' triggers (commissions migration 0006): off for the bulk load, which
# rebuilds the rollups once at the end instead of logging a change per row.
ROLLUP_TRIGGERS = {
    "tracking_event": ["commissions_event_delta", "commissions_event_delta_update"],
    "commissions_commission": ["commissions_commission_delta", "commissions_commission_delta_update"],
}


class RollupTriggersOff:
    def __init__(self, cursor):
        self.cursor = cursor

    def _set(self, state: str) -> None:
        for table, names in ROLLUP_TRIGGERS.items():
            for name in names:
                self.cursor.execute(f"ALTER TABLE {table} {state} TRIGGER {name}")

    def __enter__(self):
        self._set("DISABLE")
        return self

    def __exit__(self, *exc):
        self._set("ENABLE")
        return False


def _program(slug: str, name: str, *, minimum_payout_cents: int = 5000):
    from affiliates.models import Program
    from affiliates.services import program_create
    from commissions.rules import rule_create

    program = Program.objects.filter(slug=slug).first()
    if program is None:
        program = program_create(slug=slug, name=name, website=f"https://{slug}.example", currency="USD")
        rule_create(program=program, event_name="sale", type="percent", rate_bp=2000)
    Program.objects.filter(pk=program.pk).update(minimum_payout_cents=minimum_payout_cents)
    return program


def _rule_id(program) -> int:
    from commissions.models import CommissionRule

    return CommissionRule.objects.filter(program=program).values_list("pk", flat=True).first()


def insert_affiliates(cursor, program_id: int, count: int, prefix: str) -> tuple[int, int]:
    """`count` active affiliates paid through Stripe (acct_<prefix><n>); returns (first id, last id)."""
    cursor.execute(
        """
        INSERT INTO affiliates_affiliate (public_id, email, email_hash, name, code, code_key, status,
            status_reason, website, promotion, payout_method, paypal_email, stripe_account_id,
            stripe_payouts_enabled, created_at, approved_at, group_id, program_id)
        SELECT 'aff_' || %(p)s || lpad(g::text, 8, '0'), %(p)s || g || '@bench.example',
            md5(%(p)s || g), 'Affiliate ' || %(p)s || ' ' || g, %(p)s || lpad(g::text, 6, '0'),
            lower(%(p)s || lpad(g::text, 6, '0')), 'active', '', '', '', 'stripe', '',
            'acct_' || %(p)s || g, true, now() - interval '800 days', now() - interval '800 days', NULL, %(prog)s
        FROM generate_series(1, %(n)s) g
        """,
        {"p": prefix, "n": count, "prog": program_id},
    )
    cursor.execute("SELECT min(id), max(id) FROM affiliates_affiliate WHERE program_id = %s", [program_id])
    return cursor.fetchone()


# Affiliate of row g: skewed (a few affiliates bring most traffic), the lowest id the busiest.
_SKEWED = "%(a0)s + floor(%(na)s * power(random(), 3))::bigint"


def click_batches(program_id: int, a0: int, na: int, total: int) -> list:
    """One job per million clicks, for `in_parallel`."""

    def batch(cursor, lo: int, hi: int) -> None:
        started = time.monotonic()
        cursor.execute(
            f"""
            INSERT INTO tracking_click (visitor_id, created_at, landing_url, referrer, utm_source,
                utm_medium, utm_campaign, utm_term, utm_content, sub_id, user_agent, country,
                ip_prefix, ip_hash, source, affiliate_id, program_id)
            SELECT 'sv' || lpad((g / 3)::text, 9, '0'), now() - interval '{DAYS} days' + (g::float8 / %(total)s) * interval '{DAYS} days',
                'https://scale.example/?ref=seed', '', '', '', '', '', '', '', 'Mozilla/5.0 (seed)', '',
                '', '', 'script', {_SKEWED}, %(prog)s
            FROM generate_series(%(lo)s, %(hi)s) g
            """,
            {"total": total, "lo": lo, "hi": hi, "prog": program_id, "a0": a0, "na": na},
        )
        log(f"  clicks {hi:,}/{total:,} ({time.monotonic() - started:.1f}s)")

    return [
        functools.partial(batch, lo=start + 1, hi=min(start + BATCH, total))
        for start in range(0, total, BATCH)
    ]


def in_parallel(jobs: list, *, workers: int = SEED_WORKERS) -> None:
    """Run each job(cursor) on a connection of its own, `workers` at a time.

    PostgreSQL runs a statement on one core: two loads at once keep both of the machine's busy.
    """
    from django.db import connection

    def run(job) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit = off")
                job(cursor)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(run, job) for job in jobs]:
            future.result()


def insert_events_and_commissions(
    cursor, program_id: int, rule_id: int, a0: int, na: int, total: int, prefix: str, *, skewed: bool = True
) -> None:
    """`total` attributed sales over the last DAYS days and one 20 % commission each.

    Commissions older than 60 days are mostly paid, the last 30 days pending, 2 % rejected, the
    rest approved.
    """
    affiliate = _SKEWED if skewed else "%(a0)s + (g %% %(na)s)"
    for start in range(0, total, BATCH):
        stop = min(start + BATCH, total)
        cursor.execute(
            f"""
            INSERT INTO tracking_event (public_id, livemode, name, order_id, customer_id, visitor_id,
                referral_code, amount_cents, currency, refunded_cents, customer_email_hash, ip_hash,
                metadata, occurred_at, received_at, source, attribution, response, affiliate_id,
                click_id, program_id, referral_id, disputed)
            SELECT 'evt_' || %(p)s || lpad(g::text, 10, '0'), true, 'sale', %(p)s || '-o' || g, '',
                'sv' || g, '', 9900, 'USD', 0, '', '', '{{}}'::jsonb, t, t, 'api', 'click', '{{}}'::jsonb,
                {affiliate}, NULL, %(prog)s, NULL, false
            FROM (SELECT g, now() - interval '{DAYS} days' + (g::float8 / %(total)s) * interval '{DAYS} days' AS t
                  FROM generate_series(%(lo)s, %(hi)s) g) s
            """,
            {
                "p": prefix,
                "total": total,
                "lo": start + 1,
                "hi": stop,
                "prog": program_id,
                "a0": a0,
                "na": na,
            },
        )
    cursor.execute(
        """
        INSERT INTO commissions_commission (public_id, livemode, kind, amount_cents, currency, status,
            hold_until, inputs, status_reason, created_at, approved_at, paid_at, affiliate_id, event_id,
            program_id, reverses_id, rule_id)
        SELECT 'com_' || substr(e.public_id, 5), true, 'commission', 1980, 'USD', st,
            e.occurred_at + interval '30 days', '{}'::jsonb, '', e.occurred_at,
            CASE WHEN st IN ('approved', 'paid') THEN e.occurred_at + interval '30 days' END,
            CASE WHEN st = 'paid' THEN e.occurred_at + interval '45 days' END,
            e.affiliate_id, e.id, e.program_id, NULL, %(rule)s
        FROM (SELECT ev.*, CASE
                WHEN ev.id %% 50 = 0 THEN 'rejected'
                WHEN ev.occurred_at > now() - interval '30 days' THEN 'pending'
                WHEN ev.occurred_at < now() - interval '60 days' AND ev.id %% 10 < 8 THEN 'paid'
                ELSE 'approved' END AS st
              FROM tracking_event ev WHERE ev.program_id = %(prog)s) e
        """,
        {"prog": program_id, "rule": rule_id},
    )


def _meta(cursor) -> dict:
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key text PRIMARY KEY, value jsonb NOT NULL)")
    cursor.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'seed'")
    row = cursor.fetchone()
    if row is None:
        return {}
    return row[0] if isinstance(row[0], dict) else json.loads(row[0])


def scale_counts(cursor) -> dict:
    cursor.execute(
        """
        SELECT
          (SELECT count(*) FROM affiliates_affiliate a JOIN affiliates_program p ON p.id = a.program_id WHERE p.slug = %(s)s),
          (SELECT count(*) FROM tracking_click c JOIN affiliates_program p ON p.id = c.program_id WHERE p.slug = %(s)s),
          (SELECT count(*) FROM tracking_event e JOIN affiliates_program p ON p.id = e.program_id WHERE p.slug = %(s)s),
          (SELECT count(*) FROM commissions_commission m JOIN affiliates_program p ON p.id = m.program_id WHERE p.slug = %(s)s),
          (SELECT count(*) FROM commissions_commission m JOIN affiliates_program p ON p.id = m.program_id WHERE p.slug = %(c)s)
        """,
        {"s": SCALE_SLUG, "c": CSV_SLUG},
    )
    affiliates, clicks, events, commissions, csv_rows = cursor.fetchone()
    return {
        "affiliates": affiliates,
        "clicks": clicks,
        "events": events,
        "commissions": commissions,
        "csv_rows": csv_rows,
    }


def seed_scale(*, affiliates: int, clicks: int, events: int, csv_rows: int, force: bool) -> dict:
    """Seed (or reuse) the scale database; returns counts, whether it was reused, and the time taken."""
    from django.db import connection
    from django.utils import timezone

    from commissions import rollups as conversion_rollups
    from tracking import partitions, rollups

    wanted = {
        "affiliates": affiliates,
        "clicks": clicks,
        "events": events,
        "commissions": events,
        "csv_rows": csv_rows,
    }
    with connection.cursor() as cursor:
        meta = _meta(cursor)
        if not force and meta.get("complete") and scale_counts(cursor) == wanted:
            log("scale database already seeded with these counts: reusing it")
            return {
                **wanted,
                "reused": True,
                "seed_seconds": meta.get("seconds"),
                "seeded_at": meta.get("at"),
            }
        if meta or scale_counts(cursor)["affiliates"]:
            raise SystemExit("the scale database holds other data: let run.py recreate it (--reseed)")
    started = time.monotonic()
    steps: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        steps[name] = round(time.monotonic() - t0, 1)
        log(f"{name}: {steps[name]}s")

    # Autocommit, one statement per transaction: Django's foreign keys are DEFERRABLE INITIALLY
    # DEFERRED, and an index cannot be built over rows with pending checks in the same transaction.
    # A seed that fails midway leaves no "complete" mark, so the next run starts over.
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SET synchronous_commit = off")
        t0 = time.monotonic()
        program = _program(SCALE_SLUG, "Scale")
        csv_program = _program(CSV_SLUG, "CSV export")
        a0, _ = insert_affiliates(cursor, program.pk, affiliates, "sc")
        c0, _ = insert_affiliates(cursor, csv_program.pk, 100, "cx")
        step("affiliates", t0)
        # PostgreSQL: the months of the seeded clicks exist first, or they would all land in the
        # default partition (tracking/partitions.py).
        today = timezone.now().date()
        partitions.ensure(first=today - timedelta(days=DAYS), last=today)
        with (
            RollupTriggersOff(cursor),
            IndexesOff(cursor, ["tracking_click", "tracking_event", "commissions_commission"]),
        ):
            t0 = time.monotonic()
            in_parallel(click_batches(program.pk, a0, affiliates, clicks))
            step("clicks", t0)
            t0 = time.monotonic()
            rules = _rule_id(program), _rule_id(csv_program)
            in_parallel(
                [
                    functools.partial(
                        insert_events_and_commissions,
                        program_id=program.pk, rule_id=rules[0], a0=a0, na=affiliates, total=events, prefix="sc",
                    ),
                    functools.partial(
                        insert_events_and_commissions,
                        program_id=csv_program.pk, rule_id=rules[1], a0=c0, na=100, total=csv_rows, prefix="cx",
                        skewed=False,
                    ),
                ]
            )  # fmt: skip
            step("events_and_commissions", t0)
            t0 = time.monotonic()
        step("indexes", t0)
    t0 = time.monotonic()
    rollups.rebuild()
    step("rollups_rebuild", t0)
    t0 = time.monotonic()
    conversion_rollups.rebuild()
    step("conversion_rollups_rebuild", t0)
    t0 = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    step("vacuum_analyze", t0)
    seconds = round(time.monotonic() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {META_TABLE} (key, value) VALUES ('seed', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [json.dumps({**wanted, "complete": True, "seconds": seconds, "steps": steps, "at": time.time()})],
        )
        counts = scale_counts(cursor)
    return {**counts, "reused": False, "seed_seconds": seconds, "steps": steps}


# --- sessions and query plans for the page probes ---------------------------------------------------


def sessions() -> dict:
    """A staff session (superuser) and a portal session of the top-earning affiliate of `scale`."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.db.models import Sum

    from affiliates.access import PORTAL_AFFILIATE, PORTAL_EMAIL
    from affiliates.models import Affiliate, Program
    from commissions.models import Commission
    from tracking.models import ClickDaily

    user = User.objects.filter(username=ADMIN_USERNAME).first()
    if user is None:
        user = User.objects.create_superuser(ADMIN_USERNAME, "admin@bench.example", None)
    staff = SessionStore()
    staff[SESSION_KEY] = str(user.pk)
    staff[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    staff[HASH_SESSION_KEY] = user.get_session_auth_hash()
    staff.create()

    program = Program.objects.get(slug=SCALE_SLUG)
    top = (
        Commission.objects.filter(program=program, livemode=True)
        .exclude(status=Commission.Status.REJECTED)
        .values("affiliate_id")
        .annotate(total=Sum("amount_cents"))
        .order_by("-total")
        .first()
    )
    affiliate = Affiliate.objects.get(pk=top["affiliate_id"])
    portal = SessionStore()
    portal[PORTAL_EMAIL] = affiliate.email
    portal[PORTAL_AFFILIATE] = affiliate.pk
    portal.create()
    return {
        "cookie": settings.SESSION_COOKIE_NAME,
        "staff": staff.session_key,
        "portal": portal.session_key,
        "top_affiliate": {
            "public_id": affiliate.public_id,
            "earnings_cents": top["total"],
            "clicks": ClickDaily.objects.filter(affiliate=affiliate).aggregate(n=Sum("clicks"))["n"] or 0,
        },
    }


def explain(paths: list[str], cookie: str, session_key: str) -> dict:
    """Request each page in-process, capture its queries, EXPLAIN (ANALYZE, BUFFERS) the slowest."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    out = {}
    for path in paths[:10]:
        client = Client()
        client.cookies[cookie] = session_key
        client.get(path)  # warm
        with CaptureQueriesContext(connection) as ctx:
            status = client.get(path).status_code
        queries = [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
        entry: dict = {"status": status, "queries": len(ctx.captured_queries)}
        if queries:
            slow = max(queries, key=lambda q: float(q["time"]))
            entry["slowest_ms"] = round(float(slow["time"]) * 1000, 1)
            entry["sql"] = slow["sql"][:4000]
            try:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slow["sql"])
                    entry["plan"] = [row[0] for row in cursor.fetchall()][:80]
            except Exception as exc:  # a query that cannot be re-run as text: keep the rest
                entry["plan_error"] = str(exc)[:300]
        out[path] = entry
    return out


# --- payouts ------------------------------------------------------------------------------------------


def payouts_seed(*, affiliates: int, per_affiliate: int) -> dict:
    """`affiliates` Stripe-paid affiliates, each with `per_affiliate` approved 20.00 commissions."""
    from django.db import connection, transaction

    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        program = _program(PAYOUT_SLUG, "Payouts", minimum_payout_cents=5000)
        a0, _ = insert_affiliates(cursor, program.pk, affiliates, "py")
        insert_events_and_commissions(
            cursor,
            program.pk,
            _rule_id(program),
            a0,
            affiliates,
            affiliates * per_affiliate,
            "py",
            skewed=False,
        )
        cursor.execute(
            "UPDATE commissions_commission SET status = 'approved', amount_cents = 2000,"
            " approved_at = now(), paid_at = NULL, created_at = now() - interval '40 days' WHERE program_id = %s",
            [program.pk],
        )
        cursor.execute(
            "SELECT stripe_account_id FROM affiliates_affiliate WHERE program_id = %s", [program.pk]
        )
        accounts = [row[0] for row in cursor.fetchall()]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {
        "program": PAYOUT_SLUG,
        "affiliates": affiliates,
        "commissions": affiliates * per_affiliate,
        "accounts": accounts,
        "seconds": round(time.monotonic() - started, 1),
    }


def payouts_run(*, timeout: float = 1800.0) -> dict:
    """payouts_create for the payout program here; a real Celery worker beside it sends them.

    payouts_create queues one payout_send task per Stripe payout after each batch commits, exactly
    as the monthly task does; the worker (started by bench/run.py, its production concurrency)
    takes them from Redis and calls the fake Stripe at STRIPE_API_BASE. This process waits until no
    payout is left processing. Times: create (this process), send (from the end of create until
    the last payout is paid), total.
    """
    from django.db.models import Count
    from django.utils import timezone

    from affiliates.models import Program
    from payouts import services
    from payouts.models import Payout

    program = Program.objects.get(slug=PAYOUT_SLUG)
    now = timezone.now()
    rss_start = peak_rss_mb()
    t0 = time.monotonic()
    created = services.payouts_create(program=program, now=now)
    create_s = time.monotonic() - t0
    rss_after_create = peak_rss_mb()
    processing = services.processing_payouts(program)
    left = processing.count()
    while left and time.monotonic() - t0 < timeout:
        time.sleep(0.25)
        left = processing.count()
    done = time.monotonic()
    statuses = dict(
        Payout.objects.filter(program=program)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {
        "payouts_created": len(created),
        "create_seconds": round(create_s, 1),
        "send_seconds": round(done - t0 - create_s, 1),
        "total_seconds": round(done - t0, 1),
        "timed_out": bool(left),
        "payout_statuses": statuses,
        "create_process_peak_rss_mb": rss_after_create,
        "create_process_rss_mb_at_start": rss_start,
    }


# --- the scale benchmark's events and retention (run.py --scale) ----------------------------------------


def load_seed(out_dir: Path) -> dict:
    """What bench.lua needs to send events to the `scale` program: a live key, its affiliates' codes
    and visitor ids clicked in the last 20 days (inside the cookie window, so events attribute)."""
    from affiliates.models import Affiliate, Program
    from affiliates.services import apikey_create
    from commissions.models import Commission
    from tracking.models import Click, Event

    program = Program.objects.get(slug=SCALE_SLUG)
    _key, secret = apikey_create(program=program, mode="live")
    out_dir.mkdir(parents=True, exist_ok=True)
    codes = list(
        Affiliate.objects.filter(program=program).order_by("pk").values_list("code", flat=True)[:1000]
    )
    from django.db import connection

    with connection.cursor() as cursor:
        # Visitors with no referral yet, as the load seed's: each event is a first conversion (it
        # creates the referral), not a repeat that reuses an open one. As many as bench.lua reads
        # (100,000) where the window holds them, so that a figure repeats few visitors.
        cursor.execute(
            "SELECT DISTINCT c.visitor_id FROM tracking_click c WHERE c.program_id = %s"
            " AND c.created_at >= now() - interval '20 days' AND length(c.visitor_id) >= 8"
            " AND NOT EXISTS (SELECT 1 FROM tracking_referral r"
            "                  WHERE r.program_id = c.program_id AND r.visitor_id = c.visitor_id)"
            " LIMIT %s",
            [program.pk, LOAD_VISITORS],
        )
        visitors = [row[0] for row in cursor.fetchall()]
    codes_file, visitors_file = out_dir / "codes.txt", out_dir / "visitors.txt"
    codes_file.write_text("".join(c + "\n" for c in codes))
    visitors_file.write_text("".join(v + "\n" for v in visitors))
    return {
        "program": SCALE_SLUG,
        "program_id": program.pk,
        "affiliates": len(codes),
        "clicks": len(visitors),
        "secret": secret,
        "codes_file": str(codes_file),
        "visitors_file": str(visitors_file),
        "tables": {
            "click": Click._meta.db_table,
            "event": Event._meta.db_table,
            "commission": Commission._meta.db_table,
        },
    }


# The conversion tables the load database's events figure starts from: empty. Everything that
# references them goes too (TRUNCATE … CASCADE: fraud flags, refunds, payout items, credits).
CONVERSION_TABLES = (
    "tracking_event",
    "commissions_commission",
    "tracking_referral",
    "commissions_conversiondelta",
)


def conversions_reset() -> dict:
    """Empty the scale database's conversion tables, so that its events figure starts where the
    load database's did (no events, commissions or referrals) and differs from it in the clicks
    only. With the seed's 300,000 events and commissions in place, each new event's rows land on a
    random leaf of a dozen large indexes (random public ids, 20,000 affiliates), which after the
    figure's CHECKPOINT costs PostgreSQL a full-page image per leaf: about 34 kB of WAL per event
    against 7-8 kB on empty tables (bench/LOG.md, 2026-12-07). That is the cost of a big
    conversion history, not of a big click table; run.py reports it apart
    (`scale.events.c16_with_history`). Marks the seed incomplete first: the next run reseeds."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {META_TABLE} SET value = value || '{{\"complete\": false}}'::jsonb WHERE key = 'seed'"
        )
        counts = {}
        for table in CONVERSION_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        cursor.execute(f"TRUNCATE {', '.join(CONVERSION_TABLES)} CASCADE")
    return {"emptied": counts}


def retention_run() -> dict:
    """The daily retention job with the `scale` program's retention set so that exactly its oldest
    month is past: the month is dropped. The blanking watermarks are set to yesterday's cut-offs
    first, as on an install where the job ran yesterday (its first run ever rewrites every old
    user agent; that one-off is not the daily figure). Marks the seed incomplete: the next run
    reseeds."""
    from django.db import connection
    from django.utils import timezone

    from affiliates.models import Program
    from tracking import partitions
    from tracking.models import RollupState
    from tracking.retention import cutoff, retention_apply

    now = timezone.now()
    program = Program.objects.get(slug=SCALE_SLUG)
    months = partitions.monthly()
    oldest = next(p for p in months if p.end.date() < now.date())
    days = (now.date() - oldest.end.date()).days
    Program.objects.filter(pk=program.pk).update(click_retention_days=days)
    yesterday = now - timedelta(days=1)
    for pid, agent_days, cookie_days, hold_days in Program.objects.values_list(
        "id", "user_agent_retention_days", "cookie_days", "hold_days"
    ):
        for name, keep in (
            (f"retention.user_agent.{pid}", agent_days),
            (f"retention.visitor.{pid}", cookie_days + hold_days),
        ):
            RollupState.objects.update_or_create(
                name=name, defaults={"last_id": int(cutoff(yesterday, keep).timestamp()), "updated_at": now}
            )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {oldest.name}")
        rows = cursor.fetchone()[0]
    started = time.monotonic()
    done = retention_apply(now=now)
    seconds = round(time.monotonic() - started, 2)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {META_TABLE} SET value = value || '{{\"complete\": false}}'::jsonb WHERE key = 'seed'"
        )
    return {
        "seconds": seconds,
        "month": oldest.name,
        "rows_in_month": rows,
        "click_retention_days": days,
        **done,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seed")
    p.add_argument("--affiliates", type=int, default=20_000)
    p.add_argument("--clicks", type=int, default=10_000_000)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--csv-rows", type=int, default=1_000_000)
    p.add_argument("--force", action="store_true")
    sub.add_parser("sessions")
    p = sub.add_parser("explain")
    p.add_argument("--cookie", required=True)
    p.add_argument("--session", required=True)
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("payouts-seed")
    p.add_argument("--affiliates", type=int, default=20_000)
    p.add_argument("--per-affiliate", type=int, default=3)
    sub.add_parser("payouts-run")
    p = sub.add_parser("load-seed")
    p.add_argument("--out-dir", type=Path, required=True)
    sub.add_parser("conversions-reset")
    sub.add_parser("retention")
    args = parser.parse_args(argv)

    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refapp.settings")
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench/scale.py needs PostgreSQL")
    if args.cmd == "seed":
        result = seed_scale(
            affiliates=args.affiliates,
            clicks=args.clicks,
            events=args.events,
            csv_rows=args.csv_rows,
            force=args.force,
        )
    elif args.cmd == "sessions":
        result = sessions()
    elif args.cmd == "explain":
        result = explain(args.paths, args.cookie, args.session)
    elif args.cmd == "load-seed":
        result = load_seed(args.out_dir)
    elif args.cmd == "conversions-reset":
        result = conversions_reset()
    elif args.cmd == "retention":
        result = retention_run()
    elif args.cmd == "payouts-seed":
        result = payouts_seed(affiliates=args.affiliates, per_affiliate=args.per_affiliate)
    else:
        result = payouts_run()
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
