"""Clicks partitioned by month on PostgreSQL: every read of clicks touches only the months it asks
for (the plans name the partitions they scan)."""

import os
import re
from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from affiliates.models import Program
from commissions import ingest_pg
from refapp.panel import log_selectors
from tests.factories import AffiliateFactory
from tracking import partitions
from tracking.attribution import attribute
from tracking.models import Click

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="partitions are PostgreSQL only"
    ),
]


def scanned(plan: str) -> set[str]:
    return set(re.findall(r"\b(tracking_click_(?:p\d{6}|default))\b", plan))


@pytest.fixture
def months(program):
    partitions.ensure(first=date(2026, 8, 1), last=date(2026, 12, 1))
    affiliate = AffiliateFactory(program=program, code="ANN")
    for month in (8, 9, 10, 11):
        Click.objects.create(
            program=program,
            affiliate=affiliate,
            visitor_id="v1",
            created_at=datetime(2026, month, 15, tzinfo=UTC),
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tracking_click")
    return affiliate


def test_the_table_is_partitioned_with_a_default():
    assert partitions.enabled()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('tracking_click_default') IS NOT NULL")
        assert cursor.fetchone()[0]


def test_clicks_land_in_their_month(months):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_click_p202610")
        assert cursor.fetchone()[0] == 1


def test_orm_attribution_reads_only_the_cookie_window(months, program):
    program.cookie_days = 20
    with CaptureQueriesContext(connection) as queries:
        found = attribute(
            program=program,
            livemode=True,
            customer_id="",
            referral_code="",
            visitor_id="v1",
            occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
            received_at=datetime(2026, 11, 20, tzinfo=UTC),
        )
    assert found.click is not None and found.click.created_at.month == 11
    sql = next(q["sql"] for q in queries.captured_queries if "tracking_click" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert scanned(plan) == {"tracking_click_p202610", "tracking_click_p202611"}, plan


@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
def test_sql_attribution_prunes_at_plan_or_at_start(months, program, plan_mode):
    """The prepared statement of the SQL path: a custom plan prunes when planned, a generic plan when
    the executor starts (runtime pruning); either way only the window's months are read."""
    sql, names = ingest_pg._pick(Program.Attribution.LAST_CLICK, False, False, True)
    values = {
        "program": program.pk,
        "livemode": True,
        "visitor": "v1",
        "window_start": datetime(2026, 10, 20, tzinfo=UTC),
        "window_end": datetime(2026, 11, 20, tzinfo=UTC),
        "ip": "",
        "name": "sale",
        "customer": "",
        "code": "",
    }
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL plan_cache_mode = {plan_mode}")
        cursor.execute(f"PREPARE pick_plan AS {sql}")
        try:
            cursor.execute(
                "EXPLAIN EXECUTE pick_plan(" + ", ".join(["%s"] * len(names)) + ")",
                [values[name] for name in names],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE pick_plan")
    assert scanned(plan) == {"tracking_click_p202610", "tracking_click_p202611"}, plan


def test_clicks_page_and_export_read_only_the_chosen_days(months, program):
    clicks = log_selectors.clicks_for_program(program, date_from=date(2026, 9, 1), date_to=date(2026, 9, 30))
    assert scanned(clicks.explain()) == {"tracking_click_p202609"}


def test_rollup_recount_of_a_day_reads_one_month(months, program):
    from tracking import rollups

    with CaptureQueriesContext(connection) as queries:
        rollups.refresh()
    recounts = [q["sql"] for q in queries.captured_queries if "COUNT(DISTINCT" in q["sql"]]
    assert recounts
    with connection.cursor() as cursor:
        for sql in recounts:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert len(scanned(plan)) == 1, plan


def test_partitions_ahead_and_rows_moved_out_of_the_default(program):
    affiliate = AffiliateFactory(program=program, code="BOB")
    far = datetime(2031, 5, 3, tzinfo=UTC)
    Click.objects.create(program=program, affiliate=affiliate, visitor_id="v", created_at=far)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_click_default")
        assert cursor.fetchone()[0] == 1
    created = partitions.ensure_ahead(now=datetime(2031, 4, 10, tzinfo=UTC))
    assert created == [f"tracking_click_p2031{m:02d}" for m in (4, 5, 6, 7)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_click_default")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM tracking_click_p203105")
        assert cursor.fetchone()[0] == 1
    assert partitions.ensure_ahead(now=datetime(2031, 4, 11, tzinfo=UTC)) == []


@pytest.fixture
def legacy(program):
    """An install partitioned by migration 0011 with clicks already there: the old table is one
    partition up to the first monthly one (here 2026-09-01)."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {partitions.LEGACY} (LIKE tracking_click INCLUDING DEFAULTS)")
        cursor.execute(
            f"ALTER TABLE tracking_click ATTACH PARTITION {partitions.LEGACY} "
            "FOR VALUES FROM (MINVALUE) TO ('2026-09-01 00:00:00+00')"
        )
    return AffiliateFactory(program=program, code="OLD")


def test_the_legacy_partition_holds_the_months_before_its_bound(legacy, program):
    found = partitions.legacy()
    assert found is not None and found.end == datetime(2026, 9, 1, tzinfo=UTC)
    assert partitions.ensure(first=date(2026, 6, 1), last=date(2026, 10, 1)) == [
        "tracking_click_p202609",
        "tracking_click_p202610",
    ]
    old = Click.objects.create(
        program=program, affiliate=legacy, visitor_id="v", created_at=datetime(2026, 7, 2, tzinfo=UTC)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM tracking_click WHERE id = %s", [old.pk])
        assert cursor.fetchone()[0] == partitions.LEGACY
    clicks = log_selectors.clicks_for_program(
        program, date_from=date(2026, 10, 1), date_to=date(2026, 10, 30)
    )
    assert scanned(clicks.explain()) == {"tracking_click_p202610"}  # pruned away like a month


def test_retention_drops_the_legacy_partition_once_all_of_it_is_past(legacy, program):
    from tracking import rollups
    from tracking.models import ProgramClickDaily
    from tracking.retention import retention_apply

    partitions.ensure(first=date(2026, 9, 1), last=date(2026, 12, 1))
    Click.objects.create(
        program=program, affiliate=legacy, visitor_id="v", created_at=datetime(2026, 7, 2, tzinfo=UTC)
    )
    kept = Click.objects.create(
        program=program, affiliate=legacy, visitor_id="v", created_at=datetime(2026, 11, 2, tzinfo=UTC)
    )
    program.click_retention_days = 60
    program.save()

    done = retention_apply(now=datetime(2026, 12, 6, 3, 20, tzinfo=UTC))

    assert done["dropped_partitions"] == [partitions.LEGACY, "tracking_click_p202609"]
    assert partitions.legacy() is None and list(Click.objects.values_list("pk", flat=True)) == [kept.pk]
    rollups.rebuild()
    assert ProgramClickDaily.objects.get(program=program, day=date(2026, 7, 2)).clicks == 1
