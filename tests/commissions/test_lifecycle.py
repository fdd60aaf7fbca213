from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from commissions.models import Commission, FraudFlag
from commissions.services import (
    InvalidCommissionAction,
    approve_due_commissions,
    balances,
    commission_set_status,
    fraud_flag_resolve,
)
from refapp.models import Actor, AuditLog

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_write_path")]


@pytest.fixture
def sale(api_client, affiliate, sale_rule):
    def make(order_id, **extra):
        body = {
            "event": "sale",
            "order_id": order_id,
            "referral_code": "JOHN",
            "amount_cents": 10000,
            **extra,
        }
        return Commission.objects.get(
            public_id=api_client.post("/api/v1/events", body).json()["commissions"][0]["id"]
        )

    return make


def test_commission_is_approved_only_after_hold(sale):
    with time_machine.travel("2026-11-01T10:00:00Z", tick=False):
        commission = sale("A")
    assert approve_due_commissions(now=commission.hold_until - timedelta(seconds=1)) == 0
    assert approve_due_commissions(now=commission.hold_until) == 1
    commission.refresh_from_db()
    assert commission.status == "approved" and commission.approved_at == commission.hold_until
    assert approve_due_commissions(now=commission.hold_until + timedelta(days=1)) == 0  # idempotent
    assert AuditLog.objects.filter(action="commission.approved", object_id=commission.public_id).count() == 1


def test_refunded_order_is_never_approved(sale, api_client):
    commission = sale("A")
    api_client.post("/api/v1/refunds", {"order_id": "A"})
    approve_due_commissions(now=commission.hold_until + timedelta(days=1))
    commission.refresh_from_db()
    assert commission.status == "rejected"


def test_approval_in_batches(sale):
    rows = [sale(f"O{i}") for i in range(5)]
    assert approve_due_commissions(now=rows[-1].hold_until, batch_size=2) == 5
    assert set(Commission.objects.values_list("status", flat=True)) == {"approved"}


def test_approve_command_with_now(sale, capsys):
    commission = sale("A")
    call_command("approve_commissions", "--now", (commission.hold_until + timedelta(hours=1)).isoformat())
    assert "Approved 1" in capsys.readouterr().out


def test_balances_are_derived_from_rows(sale, affiliate, api_client):
    sale("A")
    second = sale("B")
    approve_due_commissions(now=second.hold_until)
    sale("C")
    api_client.post("/api/v1/refunds", {"order_id": "C", "refund_id": "r1", "amount_cents": 5000})
    assert balances(affiliate_id=affiliate.pk) == {"pending": 1000, "approved": 4000, "paid": 0}


def test_manual_reject_and_paid_is_frozen(sale):
    commission = sale("A")
    actor = Actor("user:1")
    rejected = commission_set_status(
        commission=commission, status="rejected", reason="duplicate order", actor=actor, now=timezone.now()
    )
    assert rejected.status == "rejected" and rejected.status_reason == "duplicate order"
    assert AuditLog.objects.filter(action="commission.rejected", actor_label="user:1").exists()
    paid = sale("B")
    Commission.objects.filter(pk=paid.pk).update(status="paid")
    with pytest.raises(InvalidCommissionAction):
        commission_set_status(commission=paid, status="rejected", reason="x", actor=actor, now=timezone.now())


def test_dismissing_a_self_referral_flag_releases_the_commission(sale):
    commission = sale("A", customer_email="john@partner.example")
    assert commission.status == "rejected"
    flag = FraudFlag.objects.get()
    fraud_flag_resolve(flag=flag, release=True, actor=Actor("user:1"), now=timezone.now())
    commission.refresh_from_db()
    flag.refresh_from_db()
    assert commission.status == "pending" and flag.status == "dismissed" and flag.resolved_by == "user:1"


def test_confirming_a_flag_keeps_it_rejected(sale):
    commission = sale("A", customer_email="john@partner.example")
    fraud_flag_resolve(flag=FraudFlag.objects.get(), release=False, actor=Actor("user:1"), now=timezone.now())
    commission.refresh_from_db()
    assert commission.status == "rejected" and FraudFlag.objects.get().status == "confirmed"
