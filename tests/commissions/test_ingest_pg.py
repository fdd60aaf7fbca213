"""The PostgreSQL write path decides every conversion exactly as the ORM path does.

Each scenario is ingested twice from the same database state, once per path (the first run rolled
back), and the answers and rows are compared field by field, public ids aside.
"""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from affiliates.models import PortalSession, Program
from commissions import ingest_pg
from commissions.models import Commission, FraudFlag
from commissions.services import EventInput, event_ingest
from refapp import pgdirect
from refapp.hashing import email_hash
from refapp.models import Actor, AuditLog
from tests.factories import (
    AffiliateFactory,
    ClickFactory,
    CommissionRuleFactory,
    PartnerGroupFactory,
    ProgramFactory,
    ReferralFactory,
)
from tracking.models import Click, Event, Referral

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the SQL write path of conversions runs on PostgreSQL only")


class Rollback(Exception):
    pass


def outcome(program, data: EventInput, *, sql: bool, settings, now, livemode: bool = True) -> dict:
    """Ingest one event through one path and describe what it answered and wrote."""
    settings.REFAPP_EVENT_SQL_PATH = sql
    result = {}
    try:
        with transaction.atomic():
            before = set(Commission.objects.values_list("pk", flat=True))
            referrals_before = Referral.objects.count()
            body, created = event_ingest(
                program=program, livemode=livemode, data=data, actor=Actor("api:test"), now=now
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


def same_both_ways(program, settings, *, livemode: bool = True, **fields) -> dict:
    data = EventInput(**{"name": "sale", "amount_cents": 10000, "currency": "USD", **fields})
    now = timezone.now()
    via_sql = outcome(program, data, sql=True, settings=settings, now=now, livemode=livemode)
    via_orm = outcome(program, data, sql=False, settings=settings, now=now, livemode=livemode)
    assert via_sql == via_orm
    return via_sql


@pytest.fixture
def program():
    return ProgramFactory(slug="acme", hold_days=14)


def click(program, affiliate, visitor, ago):
    return ClickFactory(
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
    ReferralFactory(affiliate=john, visitor_id="visitor-0002", click=c, created_at=c.created_at)
    got = same_both_ways(program, settings, order_id="O-3", visitor_id="visitor-0002")
    assert got["event"][0] == john.pk and got["event"][4] and got["referrals_created"] == 0
    ReferralFactory(affiliate=jane, customer_id="cus_9", method="code")
    got = same_both_ways(
        program,
        settings,
        order_id="O-4",
        customer_id="cus_9",
        referral_code="JOHN",
        visitor_id="visitor-0002",
    )
    assert got["event"][0] == jane.pk and got["event"][2] == "customer"


@pytest.mark.parametrize("attribution", [Program.Attribution.LAST_CLICK, Program.Attribution.FIRST_CLICK])
@pytest.mark.parametrize(
    "inputs",
    [
        {},
        {"customer_id": "cus_7"},
        {"referral_code": "CODE"},
        {"visitor_id": "visitor-0007"},
        {"customer_id": "cus_7", "referral_code": "CODE"},
        {"customer_id": "cus_7", "visitor_id": "visitor-0007"},
        {"referral_code": "CODE", "visitor_id": "visitor-0007"},
        {"customer_id": "cus_7", "referral_code": "CODE", "visitor_id": "visitor-0007"},
        {"customer_id": "cus_unknown", "referral_code": "NOPE", "visitor_id": "visitor-none"},
    ],
    ids=lambda inputs: "+".join(inputs) or "none",
)
def test_every_shape_of_read_decides_as_the_orm_path(program, settings, attribution, inputs):
    """The read holds only the candidates an event's inputs allow; each shape, with every candidate
    present in the database, picks what the ORM path picks (customer, then code, then click)."""
    program.attribution_model = attribution
    program.save()
    by_customer, by_code = AffiliateFactory(program=program), AffiliateFactory(program=program, code="CODE")
    first, last = AffiliateFactory(program=program), AffiliateFactory(program=program)
    CommissionRuleFactory(program=program, rate_bp=1000)
    click(program, first, "visitor-0007", timedelta(days=2))
    click(program, last, "visitor-0007", timedelta(hours=1))
    ReferralFactory(affiliate=by_customer, customer_id="cus_7", method="code")
    got = same_both_ways(program, settings, order_id="O-shape", **inputs)
    expected = (
        by_customer
        if inputs.get("customer_id") == "cus_7"
        else by_code
        if inputs.get("referral_code") == "CODE"
        else (first if attribution == Program.Attribution.FIRST_CLICK else last)
        if inputs.get("visitor_id") == "visitor-0007"
        else None
    )
    assert got["event"][0] == (expected.pk if expected else None)


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
    ReferralFactory(affiliate=suspended, customer_id="cus_old", method="code")
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


def _prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'refapp_%%'")
        return {name for (name,) in cursor.fetchall()}


def test_statements_run_through_libpq_load_with_the_connections_loaders():
    row = pgdirect.run(
        connection,
        "SELECT now(), $1::json, $1::jsonb, $2::bigint, $3::boolean, $4::text",
        [Jsonb({"a": [1]}), 7, True, None],
    )
    assert row[0].tzinfo is not None and abs(row[0] - timezone.now()) < timedelta(minutes=1)
    # json is decoded by psycopg; Django registers jsonb as text for JSONField to decode itself.
    assert row[1:] == ({"a": [1]}, '{"a": [1]}', 7, True, None)
    assert pgdirect.run(connection, "SELECT 1 WHERE $1::int = 0", [1]) is None


def test_a_failed_statement_raises_djangos_error_of_its_class():
    from django.db import DataError
    from django.db import IntegrityError as DjangoIntegrityError

    with pytest.raises(DataError, match="division by zero"), transaction.atomic():
        pgdirect.run(connection, "SELECT 1 / $1::int", [0])
    with pytest.raises(DjangoIntegrityError, match="unique"), transaction.atomic():
        pgdirect.run(connection, "CREATE TEMP TABLE t_unique (id int PRIMARY KEY)", [])
        pgdirect.run(connection, "INSERT INTO t_unique VALUES ($1::int), ($1::int)", [1])


@pytest.fixture
def ingest_john(program):
    """Ingest a 50.00 sale by the code JOHN (an affiliate paid 20 %) through the SQL path."""
    AffiliateFactory(program=program, code="JOHN")
    CommissionRuleFactory(program=program)

    def ingest(order_id):
        data = EventInput(name="sale", order_id=order_id, referral_code="JOHN", amount_cents=5000)
        return ingest_pg.event_ingest_pg(
            program=program, livemode=True, data=data, actor=Actor("api:test"), now=timezone.now()
        )

    return ingest


@pytest.mark.django_db(transaction=True)
def test_without_prepared_statements_nothing_is_prepared(ingest_john, monkeypatch):
    connection.close()  # a new connection: nothing prepared on it yet
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    assert ingest_john("K-2")["commissions"][0]["amount_cents"] == 1000
    assert _prepared_names() == set()


@pytest.mark.django_db(transaction=True)
def test_statements_the_server_forgot_are_prepared_again(ingest_john):
    ingest = ingest_john

    assert ingest("K-3")["attributed"] is True
    assert len(_prepared_names()) == 2  # the read and the write
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's DISCARD ALL does between clients
    assert ingest("K-4")["attributed"] is True
    assert len(_prepared_names()) == 2
    assert Event.objects.filter(order_id__in=["K-3", "K-4"]).count() == 2
    assert Commission.objects.count() == 2

    # Inside a transaction the error is raised (it aborted the transaction); the next use prepares.
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(DatabaseError, match="does not exist"), transaction.atomic():
        assert Event.objects.count() == 2  # the transaction is open
        ingest("K-5")
    assert ingest("K-5")["attributed"] is True
    assert Event.objects.filter(order_id="K-5").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("opened", [False, True], ids=["first-statement", "transaction-open"])
def test_inside_an_atomic_block_the_conversion_is_part_of_its_transaction(ingest_john, opened):
    with pytest.raises(Rollback), transaction.atomic():
        if opened:
            assert Event.objects.count() == 0
        body = ingest_john("K-6")
        assert Event.objects.get(order_id="K-6").response == body
        raise Rollback
    assert not Event.objects.exists() and not Commission.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="commission").exists()


@pytest.mark.django_db(transaction=True)
def test_a_first_statement_inside_an_atomic_block_opens_its_transaction():
    from psycopg import pq

    with transaction.atomic():
        assert pgdirect.run(connection, "SELECT $1::int", [1]) == (1,)
        assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.INTRANS
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_atomic_block_keeps_the_prepared_statements(ingest_john):
    """psycopg sends DEALLOCATE ALL after a rollback when it holds prepared statements of its own;
    the path never lets it prepare, so its own statements survive for the next transaction."""
    ingest = ingest_john
    ingest("K-7")
    with pytest.raises(Rollback), transaction.atomic():
        ingest("K-8")  # the first statement of its transaction: psycopg opens it
        raise Rollback
    with transaction.atomic():
        assert Event.objects.count() == 1
        assert ingest("K-9")["attributed"] is True
    assert sorted(Event.objects.values_list("order_id", flat=True)) == ["K-7", "K-9"]
    assert len(_prepared_names()) == 2


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_fails_one_conversion_and_is_replaced(ingest_john):
    import psycopg
    from django.db import OperationalError, close_old_connections

    assert ingest_john("K-10")["attributed"] is True
    pid = connection.connection.info.backend_pid
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(OperationalError):
        ingest_john("K-11")
    close_old_connections()  # what the fast path does after every answer
    assert ingest_john("K-11")["attributed"] is True
    assert connection.connection.info.backend_pid != pid
    assert sorted(Event.objects.values_list("order_id", flat=True)) == ["K-10", "K-11"]


@pytest.mark.parametrize("livemode", [True, False], ids=["live", "test"])
@pytest.mark.parametrize(
    "inputs",
    [
        {"referral_code": "LIVE"},
        {"referral_code": "TEST"},
        {"visitor_id": "visitor-mode"},
        {"customer_id": "cus_mode", "visitor_id": "visitor-mode"},
    ],
    ids=lambda inputs: "+".join(inputs),
)
def test_live_and_test_events_are_attributed_and_paid_in_their_own_mode(program, settings, livemode, inputs):
    """A code or a click attributes an event only to an affiliate of its mode, and only the rules of
    its mode pay: the 777.00 test rule never reaches a live sale, the live 15 % never a test one."""
    live = AffiliateFactory(program=program, code="LIVE")
    test = AffiliateFactory(program=program, code="TEST", livemode=False)
    CommissionRuleFactory(program=program, rate_bp=1500)
    CommissionRuleFactory(program=program, type="fixed", rate_bp=None, amount_cents=77700, livemode=False)
    click(program, test, "visitor-mode", timedelta(days=2))
    click(program, live, "visitor-mode", timedelta(days=1))
    got = same_both_ways(program, settings, livemode=livemode, order_id="O-mode", **inputs)
    own = live if livemode else test
    code = inputs.get("referral_code")
    if code and code != own.code:
        assert got["event"][0] is None and got["amounts"] == []
    else:
        assert got["event"][0] == own.pk
        assert got["amounts"] == ([1500] if livemode else [77700])
