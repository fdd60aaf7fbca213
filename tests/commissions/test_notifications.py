from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from commissions.models import Commission
from commissions.notifications import approval_digests
from commissions.services import approve_due_commissions
from tests.factories import AffiliateFactory

pytestmark = pytest.mark.django_db


def test_one_digest_per_affiliate_per_day(
    api_client, program, affiliate, sale_rule, django_capture_on_commit_callbacks
):
    other = AffiliateFactory(program=program, code="MARY", email="mary@partner.example")
    for order, code in (("A", "JOHN"), ("B", "JOHN"), ("C", "MARY")):
        api_client.post(
            "/api/v1/events",
            {"event": "sale", "order_id": order, "referral_code": code, "amount_cents": 10000},
        )
    approve_at = Commission.objects.order_by("-hold_until").first().hold_until
    approve_due_commissions(now=approve_at)
    # Two runs on one UTC day, within 24 hours of the approvals, whatever the time of day now.
    midnight = (approve_at + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first = approve_at if midnight - approve_at > timedelta(hours=3) else midnight
    first += timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert approval_digests(now=first) == 2
        assert approval_digests(now=first + timedelta(hours=1)) == 0  # same day: not again
    by_recipient = {m.to[0]: m for m in mail.outbox}
    assert set(by_recipient) == {affiliate.email, other.email}
    assert by_recipient[affiliate.email].subject == "Acme: 2 commissions approved, 40.00 USD"
    assert by_recipient[affiliate.email].alternatives


def test_the_digest_is_pluralised_and_speaks_to_its_affiliate(
    api_client, program, affiliate, sale_rule, django_capture_on_commit_callbacks
):
    mary = AffiliateFactory(program=program, code="MARY", email="mary@partner.example")
    for order, code in (("A", "JOHN"), ("B", "JOHN"), ("C", "MARY")):
        api_client.post(
            "/api/v1/events",
            {"event": "sale", "order_id": order, "referral_code": code, "amount_cents": 10000},
        )
    approve_at = Commission.objects.order_by("-hold_until").first().hold_until
    approve_due_commissions(now=approve_at)
    with django_capture_on_commit_callbacks(execute=True):
        approval_digests(now=approve_at + timedelta(minutes=1))
    by_recipient = {m.to[0]: m for m in mail.outbox}
    one, two = by_recipient[mary.email], by_recipient[affiliate.email]
    assert one.subject == "Acme: 1 commission approved, 20.00 USD"
    assert (
        "A commission you earned with Acme passed the refund window and was approved today: 20.00 USD."
        in one.body
    )
    assert (
        "2 commissions you earned with Acme passed the refund window and were approved today, 40.00 USD in total."
        in two.body
    )
    html_one, html_two = one.alternatives[0][0], two.alternatives[0][0]
    assert (
        "A commission you earned with <strong>Acme</strong>" in html_one and "was approved today" in html_one
    )
    assert (
        "2 commissions you earned with <strong>Acme</strong>" in html_two
        and "were approved today" in html_two
    )
    for message in (one, two):
        assert "1 of your" not in message.body and "commission(s)" not in message.body
        assert "on behalf of the Acme partner program" in message.alternatives[0][0]


def test_no_digest_without_approvals(db):
    assert approval_digests(now=timezone.now()) == 0


def test_a_digest_already_in_the_ledger_is_not_sent_again(
    program, affiliate, sale_rule, django_capture_on_commit_callbacks
):
    from commissions.models import SentDigest

    now = _approved_for(affiliate, program, sale_rule)
    SentDigest.objects.create(affiliate=affiliate, day=now.date(), created_at=now)  # another worker's
    with django_capture_on_commit_callbacks(execute=True):
        assert approval_digests(now=now) == 0
    assert mail.outbox == [] and SentDigest.objects.count() == 1


def _approved_for(affiliate, program, rule):
    """An approved commission of the affiliate, approved an hour before the returned moment."""
    from tracking.models import Event

    now = timezone.now()
    event = Event.objects.create(
        program=program,
        name="sale",
        order_id=f"D-{Event.objects.count()}",
        amount_cents=10000,
        currency="USD",
        occurred_at=now - timedelta(days=40),
        received_at=now,
        affiliate=affiliate,
        source="api",
    )
    Commission.objects.create(
        program=program,
        affiliate=affiliate,
        event=event,
        rule=rule,
        amount_cents=2000,
        currency="USD",
        status="approved",
        hold_until=now - timedelta(days=10),
        approved_at=now - timedelta(hours=1),
        created_at=now - timedelta(days=40),
    )
    return now


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twin_digest_runs_at_the_same_moment_send_once(program, affiliate, sale_rule):
    import threading

    from django.db import connection

    from commissions.models import SentDigest

    if connection.vendor != "postgresql":
        pytest.skip("concurrent runs are proven on PostgreSQL")
    now = _approved_for(affiliate, program, sale_rule)
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def run():
        try:
            barrier.wait(10)
            counts.append(approval_digests(now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(counts) == [0, 1]
    assert SentDigest.objects.filter(affiliate=affiliate).count() == 1
    assert len(mail.outbox) == 1  # eager tasks: the email of the committed run only


def test_the_upgrade_carries_recent_digests_from_the_audit_log_into_the_ledger(affiliate):
    import importlib

    from django.apps import apps

    from commissions.models import SentDigest
    from refapp.models import AuditLog

    migration = importlib.import_module("commissions.migrations.0007_sent_digest")
    day = timezone.now().date().isoformat()
    AuditLog.objects.create(
        actor_label="system",
        action="digest.sent",
        object_type="affiliates.digest",
        object_id=f"{affiliate.public_id}:{day}",
        data={"count": 2},
    )
    migration.copy_recent_digests(apps, None)
    migration.copy_recent_digests(apps, None)  # twice: the unique index keeps one
    [row] = SentDigest.objects.all()
    assert (row.affiliate_id, row.day.isoformat(), row.commissions) == (affiliate.pk, day, 2)
