"""The whole money path in one test: click, sale, hold, approval, payout, transfer, portal shows it paid."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from commissions.models import Commission
from commissions.tasks import approve_due_commissions
from payouts.models import Payout
from payouts.tasks import run_due_payouts
from tests.conftest import portal_login

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


def test_click_to_paid_commission(
    program, connected, api_client, fake_stripe, django_capture_on_commit_callbacks
):
    from commissions.models import CommissionRule

    CommissionRule.objects.create(program=program, event_name="sale", type="percent", rate_bp=2500)
    start = timezone.now().replace(year=2026, month=10, day=10, hour=9, minute=0, second=0, microsecond=0)

    with time_machine.travel(start, tick=False):
        click = Client().post(
            "/api/v1/track/click",
            data=json.dumps({"program": "acme", "ref": "JOHN", "url": "https://acme.example/?ref=JOHN"}),
            content_type="text/plain",
            HTTP_USER_AGENT=UA,
            HTTP_ORIGIN="https://acme.example",
        )
        visitor = click.json()["visitor_id"]
        sale = api_client.post(
            "/api/v1/events",
            {"event": "sale", "order_id": "ORD-LIFE", "visitor_id": visitor, "amount": "400.00"},
        )
        assert sale.status_code == 201
        [pending] = sale.json()["commissions"]
        assert pending["amount_cents"] == 10000 and pending["status"] == "pending"

    with time_machine.travel(start + timedelta(days=29), tick=False):
        approve_due_commissions.apply()
        assert Commission.objects.get().status == "pending"  # still inside the 30-day refund window

    with time_machine.travel(start + timedelta(days=30, hours=1), tick=False):
        approve_due_commissions.apply()
        assert Commission.objects.get().status == "approved"

    payout_day = (start + timedelta(days=31)).replace(day=1, hour=6)  # 2026-11-01 06:00 UTC
    with time_machine.travel(payout_day, tick=False), django_capture_on_commit_callbacks(execute=True):
        run_due_payouts.apply()

    payout = Payout.objects.get()
    assert (payout.status, payout.amount_cents, payout.period) == ("paid", 10000, "2026-11")
    [transfer] = fake_stripe.transfers
    assert (
        transfer["id"] == payout.transfer_id
        and transfer["destination"] == "acct_john"
        and transfer["amount"] == 10000
    )
    assert Commission.objects.get().status == "paid"

    portal = portal_login(Client(), connected)
    payouts_page = portal.get("/portal/payouts/").content.decode()
    assert payout.transfer_id in payouts_page and "100.00 USD" in payouts_page
    commissions_page = portal.get("/portal/commissions/").content.decode()
    assert "Paid" in commissions_page or "paid" in commissions_page
