"""The PostgreSQL write path decides every conversion exactly as the ORM path does.

Each scenario is ingested twice from the same database state, once per path (the first run rolled
back), and the answers and rows are compared field by field, public ids aside.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from affiliates.models import PortalSession, Program
from commissions import ingest_pg
from commissions.models import Commission, FraudFlag
from commissions.services import EventInput, event_ingest
from refapp.hashing import email_hash
from refapp.models import Actor, AuditLog
from tests.factories import AffiliateFactory, CommissionRuleFactory, PartnerGroupFactory, ProgramFactory
from tracking.models import Click, Event, Referral

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the SQL write path of conversions runs on PostgreSQL only")


class Rollback(Exception):
    pass


def outcome(program, data: EventInput, *, sql: bool, settings, now) -> dict:
    """Ingest one event through one path and describe what it answered and wrote."""
    settings.REFAPP_EVENT_SQL_PATH = sql
    result = {}
    try:
        with transaction.atomic():
            before = set(Commission.objects.values_list("pk", flat=True))
            referrals_before = Referral.objects.count()
            body, created = event_ingest(
                program=program, livemode=True, data=data, actor=Actor("api:test"), now=now
            )
            event = Event.objects.get(public_id=body["id"])
            commissions = Commission.objects.exclude(pk__in=before).order_by("rule_id")
            result = {
                "created": created,
                "body": {k: v for k, v in body.items() if k not in ("id", "commissions", "referral")},
                "has_referral": body["referral"] is not None,
                "amounts": [c["amount_cents"] for c in body["commissions"]],
                "event": (
                    event.affiliate_id,
                    event.click_id,
                    event.attribution,
                    event.response == body,
                    body["referral"] == (event.referral.public_id if event.referral else None),
                ),
                "referral": (
                    (event.referral.affiliate_id, event.referral.customer_id, event.referral.visitor_id)
                    if event.referral
                    else None
                ),
                "commissions": [
                    (
                        c.affiliate_id,
                        c.rule_id,
                        c.amount_cents,
                        c.status,
                        c.status_reason,
                        c.hold_until,
                        {k: v for k, v in c.inputs.items() if k != "rule"},
                    )
                    for c in commissions
                ],
                "referrals_created": Referral.objects.count() - referrals_before,
                "flags": list(FraudFlag.objects.filter(event=event).values_list("reason", flat=True)),
                "audit": list(
                    AuditLog.objects.filter(object_id=event.public_id).values_list("action", "actor_label")
                ),
            }
            raise Rollback
    except Rollback:
        pass
    return result


def same_both_ways(program, settings, **fields) -> dict:
    data = EventInput(**{"name": "sale", "amount_cents": 10000, "currency": "USD", **fields})
    now = timezone.now()
    via_sql = outcome(program, data, sql=True, settings=settings, now=now)
    via_orm = outcome(program, data, sql=False, settings=settings, now=now)
    assert via_sql == via_orm
    return via_sql


@pytest.fixture
def program():
    return ProgramFactory(slug="acme", hold_days=14)


def click(program, affiliate, visitor, ago):
    return Click.objects.create(
        program=program, affiliate=affiliate, visitor_id=visitor, created_at=timezone.now() - ago
    )


def test_click_attribution_last_and_first_click(program, settings):
    first, last = AffiliateFactory(program=program), AffiliateFactory(program=program)
    CommissionRuleFactory(program=program, rate_bp=1500)
    click(program, first, "visitor-0001", timedelta(days=3))
    click(program, last, "visitor-0001", timedelta(days=1))
    click(program, first, "visitor-0001", timedelta(days=45))  # outside the cookie window
    got = same_both_ways(program, settings, order_id="O-1", visitor_id="visitor-0001")
    assert got["event"][0] == last.pk and got["amounts"] == [1500]
    program.attribution_model = Program.Attribution.FIRST_CLICK
    program.save()
    got = same_both_ways(program, settings, order_id="O-2", visitor_id="visitor-0001")
    assert got["event"][0] == first.pk


def test_open_visitor_referral_is_reused_and_customer_referral_wins(program, settings):
    john, jane = AffiliateFactory(program=program, code="JOHN"), AffiliateFactory(program=program)
    CommissionRuleFactory(program=program, rate_bp=1000)
    c = click(program, john, "visitor-0002", timedelta(hours=2))
    Referral.objects.create(
        program=program,
        affiliate=john,
        visitor_id="visitor-0002",
        click=c,
        method="click",
        created_at=c.created_at,
    )
    got = same_both_ways(program, settings, order_id="O-3", visitor_id="visitor-0002")
    assert got["event"][0] == john.pk and got["event"][4] and got["referrals_created"] == 0
    Referral.objects.create(
        program=program, affiliate=jane, customer_id="cus_9", method="code", created_at=timezone.now()
    )
    got = same_both_ways(
        program,
        settings,
        order_id="O-4",
        customer_id="cus_9",
        referral_code="JOHN",
        visitor_id="visitor-0002",
    )
    assert got["event"][0] == jane.pk and got["event"][2] == "customer"


def test_code_attribution_creates_the_customer_referral(program, settings):
    AffiliateFactory(program=program, code="Mixed")
    CommissionRuleFactory(program=program, type="fixed", rate_bp=None, amount_cents=700)
    got = same_both_ways(program, settings, order_id="O-5", referral_code="mixed", customer_id="cus_new")
    assert got["referral"][1] == "cus_new" and got["amounts"] == [700]


def test_unattributed_and_suspended(program, settings):
    suspended = AffiliateFactory(program=program, code="GONE", status="suspended")
    CommissionRuleFactory(program=program)
    got = same_both_ways(program, settings, order_id="O-6", referral_code="GONE", visitor_id="visitor-0404")
    assert got["body"]["attributed"] is False and got["commissions"] == []
    Referral.objects.create(
        program=program, affiliate=suspended, customer_id="cus_old", method="code", created_at=timezone.now()
    )
    got = same_both_ways(program, settings, order_id="O-7", customer_id="cus_old")
    assert got["body"]["attributed"] is True and got["commissions"] == []


def test_self_referral_by_email_and_by_portal_ip(program, settings):
    affiliate = AffiliateFactory(program=program, code="SELF", email="me@partner.example")
    CommissionRuleFactory(program=program)
    got = same_both_ways(
        program,
        settings,
        order_id="O-8",
        referral_code="SELF",
        customer_email_hash=email_hash("me@partner.example"),
    )
    assert got["flags"] == ["self_referral_email"] and got["commissions"][0][3] == "rejected"
    PortalSession.objects.create(affiliate=affiliate, ip_hash="iphash-1", created_at=timezone.now())
    c = click(program, affiliate, "visitor-0003", timedelta(minutes=5))
    Click.objects.filter(pk=c.pk).update(ip_hash="iphash-1")
    got = same_both_ways(program, settings, order_id="O-9", visitor_id="visitor-0003")
    assert got["flags"] == ["self_referral_ip"]


def test_rule_scopes_limits_and_tiers(program, settings):
    group = PartnerGroupFactory(program=program)
    AffiliateFactory(program=program, code="GRP", group=group)
    special = AffiliateFactory(program=program, code="SPC")
    CommissionRuleFactory(program=program, rate_bp=1000)
    CommissionRuleFactory(
        program=program, group=group, rate_bp=3000, tiers=[{"min_cents": 15000, "rate_bp": 4000}]
    )
    CommissionRuleFactory(
        program=program,
        affiliate=special,
        type="fixed",
        rate_bp=None,
        amount_cents=900,
        first_event_only=True,
    )
    CommissionRuleFactory(program=program, affiliate=special, rate_bp=500, max_events=2)
    for i in range(3):
        got = same_both_ways(program, settings, order_id=f"G-{i}", referral_code="GRP", customer_id="cus_g")
        Event.objects.filter(order_id=f"G-{i}").delete()
        # Commit the sale for real so the next one sees the month's revenue.
        settings.REFAPP_EVENT_SQL_PATH = i % 2 == 0
        event_ingest(
            program=program,
            livemode=True,
            data=EventInput(
                name="sale", order_id=f"G-{i}", referral_code="GRP", customer_id="cus_g", amount_cents=10000
            ),
            actor=Actor("api:test"),
            now=timezone.now(),
        )
    assert got["amounts"] == [4000]  # 30,000 this month with this sale: the 15,000 tier
    for i in range(4):
        got = same_both_ways(program, settings, order_id=f"S-{i}", referral_code="SPC", customer_id="cus_s")
        settings.REFAPP_EVENT_SQL_PATH = i % 2 == 1
        event_ingest(
            program=program,
            livemode=True,
            data=EventInput(
                name="sale", order_id=f"S-{i}", referral_code="SPC", customer_id="cus_s", amount_cents=10000
            ),
            actor=Actor("api:test"),
            now=timezone.now(),
        )
    skipped = {s["reason"] for c in got["commissions"] for s in c[6]["skipped"]}
    assert got["amounts"] == [] and skipped == set()  # both rules exhausted: nothing computed
    group.is_active = False
    group.save()
    got = same_both_ways(program, settings, order_id="G-off", referral_code="GRP", customer_id="cus_g")
    assert got["amounts"] == [1000]  # a deactivated group's rules no longer apply


def test_the_sql_path_answers_without_the_orm_and_refuses_a_known_order(program):
    AffiliateFactory(program=program, code="JOHN")
    CommissionRuleFactory(program=program)
    data = EventInput(name="sale", order_id="K-1", referral_code="JOHN", amount_cents=5000)
    now = timezone.now()
    body = ingest_pg.event_ingest_pg(
        program=program, livemode=True, data=data, actor=Actor("api:test"), now=now
    )
    assert body["commissions"][0]["amount_cents"] == 1000
    assert Event.objects.get(order_id="K-1").response == body
    assert (
        ingest_pg.event_ingest_pg(program=program, livemode=True, data=data, actor=Actor("api:test"), now=now)
        is None
    )
    assert Event.objects.count() == 1 and Commission.objects.count() == 1
