"""The daily retention job: old clicks go (a whole month dropped on PostgreSQL), their days' totals
stay, user agents and unconverted visitor ids are blanked."""

import os
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection

from tests.factories import AffiliateFactory, ProgramFactory
from tracking import partitions, rollups
from tracking.models import Click, ClickDaily, Event, ProgramClickDaily
from tracking.retention import retention_apply

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 6, 3, 20, tzinfo=UTC)
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


def click(affiliate, at, **fields):
    fields.setdefault("visitor_id", "v1")
    return Click.objects.create(program=affiliate.program, affiliate=affiliate, created_at=at, **fields)


@pytest.fixture
def ann(program):
    program.click_retention_days = 100
    program.user_agent_retention_days = 30
    program.save()
    if ON_POSTGRES:
        partitions.ensure(first=date(2026, 7, 1), last=date(2026, 12, 1))
    return AffiliateFactory(program=program, code="ANN")


def totals(day):
    return (
        list(ClickDaily.objects.filter(day=day).values_list("clicks", "visitors")),
        list(ProgramClickDaily.objects.filter(day=day).values_list("clicks", "visitors")),
    )


def test_old_clicks_go_and_their_day_keeps_its_totals(ann):
    old = click(ann, datetime(2026, 7, 10, 12, tzinfo=UTC))
    click(ann, datetime(2026, 7, 10, 13, tzinfo=UTC), visitor_id="v2")
    kept = click(ann, datetime(2026, 11, 20, tzinfo=UTC))
    rollups.refresh()
    before = totals(date(2026, 7, 10))
    assert before == ([(2, 2)], [(2, 2)])

    done = retention_apply(now=NOW)

    assert not Click.objects.filter(pk=old.pk).exists()
    assert Click.objects.filter(pk=kept.pk).exists()
    assert totals(date(2026, 7, 10)) == before
    if ON_POSTGRES:
        # The month was dropped as a table, not emptied row by row.
        assert done["dropped_partitions"] == ["tracking_click_p202607"]
        assert done["deleted_clicks"] == 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('tracking_click_p202607')")
            assert cursor.fetchone()[0] is None
    else:
        assert done["deleted_clicks"] == 2


def test_rollups_fold_unrolled_clicks_before_they_go(ann):
    click(ann, datetime(2026, 7, 10, 12, tzinfo=UTC))
    retention_apply(now=NOW)  # no refresh beforehand: the job folds first
    assert totals(date(2026, 7, 10)) == ([(1, 1)], [(1, 1)])
    assert not Click.objects.filter(created_at__lt=datetime(2026, 8, 1, tzinfo=UTC)).exists()


def test_a_month_shared_with_a_longer_retention_is_deleted_by_rows(ann):
    other = ProgramFactory(slug="other", click_retention_days=3000)
    bob = AffiliateFactory(program=other, code="BOB")
    gone = click(ann, datetime(2026, 7, 10, tzinfo=UTC))
    stays = click(bob, datetime(2026, 7, 11, tzinfo=UTC))

    done = retention_apply(now=NOW)

    assert done["dropped_partitions"] == [] and done["deleted_clicks"] == 1
    assert not Click.objects.filter(pk=gone.pk).exists() and Click.objects.filter(pk=stays.pk).exists()


def test_a_dropped_click_leaves_its_event_without_a_dangling_reference(ann, program):
    old = click(ann, datetime(2026, 7, 10, tzinfo=UTC))
    event = Event.objects.create(
        program=program, name="sale", click=old, occurred_at=old.created_at, received_at=old.created_at
    )
    retention_apply(now=NOW)
    event.refresh_from_db()
    assert event.click_id is None


def test_user_agents_and_unconverted_visitors_are_blanked(ann, program):
    recent = click(ann, datetime(2026, 12, 1, tzinfo=UTC), user_agent="Firefox")
    older = click(ann, datetime(2026, 10, 1, tzinfo=UTC), user_agent="Firefox")
    converted = click(ann, datetime(2026, 10, 2, tzinfo=UTC), visitor_id="v9")
    Event.objects.create(
        program=program, name="sale", click=converted, occurred_at=NOW, received_at=NOW, visitor_id="v9"
    )

    done = retention_apply(now=NOW)

    recent.refresh_from_db()
    older.refresh_from_db()
    converted.refresh_from_db()
    assert recent.user_agent == "Firefox" and recent.visitor_id == "v1"
    assert older.user_agent == "" and older.visitor_id == ""  # 30 days cookie + 30 days hold are over
    assert converted.visitor_id == "v9"
    assert done["blanked_user_agents"] == 1 and done["forgotten_visitors"] == 1
    # The next day reads only what newly passed the cut-offs.
    assert retention_apply(now=NOW.replace(day=7))["blanked_user_agents"] == 0
    # Three days later: the clicks of the days between the two cut-offs (their ends included on the
    # later side only), and only those.
    edge = click(ann, datetime(2026, 11, 7, 3, 20, tzinfo=UTC), user_agent="Safari")  # the last cut-off
    inside = click(ann, datetime(2026, 11, 9, 12, tzinfo=UTC), user_agent="Safari")
    after = click(ann, datetime(2026, 11, 10, 3, 20, tzinfo=UTC), user_agent="Safari")  # the new cut-off
    assert retention_apply(now=NOW.replace(day=10))["blanked_user_agents"] == 2
    assert [Click.objects.get(pk=c.pk).user_agent for c in (edge, inside, after)] == ["", "", "Safari"]


@time_machine.travel(NOW, tick=False)
def test_a_straggler_click_does_not_recount_a_day_past_retention(ann):
    click(ann, datetime(2026, 7, 10, tzinfo=UTC))
    retention_apply(now=NOW)
    click(ann, datetime(2026, 7, 10, 5, tzinfo=UTC))
    rollups.refresh()
    assert totals(date(2026, 7, 10)) == ([(1, 1)], [(1, 1)])


def test_a_rebuild_after_retention_keeps_the_totals_of_deleted_days(ann):
    """The dropped month (PostgreSQL) or deleted rows (SQLite) leave only the rollups: a rebuild
    recounts the days still whole and leaves the others as they were."""
    click(ann, datetime(2026, 7, 10, 12, tzinfo=UTC))
    click(ann, datetime(2026, 7, 10, 13, tzinfo=UTC), visitor_id="v2")
    click(ann, datetime(2026, 11, 20, tzinfo=UTC))
    retention_apply(now=NOW)
    old, recent = totals(date(2026, 7, 10)), totals(date(2026, 11, 20))
    assert old == ([(2, 2)], [(2, 2)]) and recent == ([(1, 1)], [(1, 1)])
    # A day still whole is recounted: a click imported straight into the table shows up.
    Click.objects.create(
        program=ann.program, affiliate=ann, created_at=datetime(2026, 11, 20, 8, tzinfo=UTC), visitor_id="v3"
    )

    rollups.rebuild()

    assert totals(date(2026, 7, 10)) == old
    assert totals(date(2026, 11, 20)) == ([(2, 2)], [(2, 2)])


def test_a_rebuild_keeps_deleted_days_after_the_retention_is_lengthened(ann, program):
    click(ann, datetime(2026, 8, 1, 9, tzinfo=UTC))
    retention_apply(now=NOW)  # 100 days: 2026-08-28 and before go
    program.click_retention_days = 3000
    program.save()
    retention_apply(now=NOW)  # nothing comes back, and the recorded cut-off does not move back

    rollups.rebuild()

    assert totals(date(2026, 8, 1)) == ([(1, 1)], [(1, 1)])


def test_a_rebuild_recounts_every_day_of_a_program_retention_never_touched(ann):
    other = ProgramFactory(slug="other", click_retention_days=3000)
    bob = AffiliateFactory(program=other, code="BOB")
    click(ann, datetime(2026, 7, 10, tzinfo=UTC))
    retention_apply(now=NOW)
    ProgramClickDaily.objects.filter(program=other).delete()
    click(bob, datetime(2026, 7, 10, tzinfo=UTC))  # another program's click of a day ann lost

    rollups.rebuild()

    assert list(ProgramClickDaily.objects.filter(program=other).values_list("day", "clicks")) == [
        (date(2026, 7, 10), 1)
    ]
    assert list(ProgramClickDaily.objects.filter(program=ann.program).values_list("day", "clicks")) == [
        (date(2026, 7, 10), 1)
    ]
