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
    assert "2 commissions approved: 40.00 USD" in by_recipient[affiliate.email].subject
    assert by_recipient[affiliate.email].alternatives


def test_no_digest_without_approvals(db):
    assert approval_digests(now=timezone.now()) == 0


def test_the_sent_digest_check_reads_the_audit_index(db):
    from django.db import connection

    from commissions.notifications import digest_sent

    if connection.vendor != "postgresql":
        pytest.skip("plans are checked on PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned anyway
    plan = digest_sent("aff_x:2026-11-30").explain()
    # Both columns bound: without the type, PostgreSQL can only walk the whole index.
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "object_type" in index_cond and "object_id" in index_cond, plan
