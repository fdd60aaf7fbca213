"""Payout pages: the portal's history and Stripe Connect onboarding, the panel's runs and actions."""

import csv
import io
from urllib.parse import urlsplit

import pytest
import requests
from django.core import mail
from django.test import Client
from django.utils import timezone

from affiliates.models import Affiliate
from commissions.models import Commission
from payouts.models import Payout
from payouts.services import payouts_create
from tests.factories import AffiliateFactory, PayoutFactory

pytestmark = pytest.mark.django_db


# --- portal ------------------------------------------------------------------------------------


def test_connect_with_stripe_creates_express_account_and_onboards(portal_client, affiliate, fake_stripe):
    response = portal_client.post("/portal/settings/payout/stripe/")
    assert response.status_code == 302
    affiliate.refresh_from_db()
    assert affiliate.stripe_account_id.startswith("acct_") and affiliate.payout_method == "stripe"
    account = fake_stripe.accounts[affiliate.stripe_account_id]
    assert account["type"] == "express" and account["email"] == "john@partner.example"
    onboarding = urlsplit(response["Location"])
    assert onboarding.path == f"/_fake/onboard/{affiliate.stripe_account_id}"
    # the affiliate completes onboarding at Stripe, which sends them back to our return URL
    at_stripe = requests.get(response["Location"], allow_redirects=False, timeout=10)
    assert at_stripe.status_code == 302 and at_stripe.headers["Location"].endswith(
        "/portal/settings/payout/stripe/return/"
    )
    back = portal_client.get("/portal/settings/payout/stripe/return/")
    assert back["Location"] == "/portal/settings/payout/"
    affiliate.refresh_from_db()
    assert affiliate.stripe_payouts_enabled
    assert b"Connected" in portal_client.get("/portal/settings/payout/").content
    # connecting again reuses the account
    portal_client.post("/portal/settings/payout/stripe/")
    assert len(fake_stripe.accounts) == 1


def test_refresh_hands_out_a_new_link(portal_client, affiliate, fake_stripe):
    portal_client.post("/portal/settings/payout/stripe/")
    response = portal_client.get("/portal/settings/payout/stripe/refresh/")
    assert "/_fake/onboard/" in response["Location"]


def test_pending_affiliate_cannot_connect(program, fake_stripe):
    from tests.conftest import portal_login

    pending = AffiliateFactory(program=program, status="pending", email="p@example.com")
    client = portal_login(Client(), pending)
    client.post("/portal/settings/payout/stripe/")
    pending.refresh_from_db()
    assert pending.stripe_account_id == "" and fake_stripe.accounts == {}


def test_portal_payouts_history_shows_only_own(
    program, connected, approved, fake_stripe, other_portal_client, django_capture_on_commit_callbacks
):
    from tests.conftest import portal_login

    approved(connected, 6000)
    with django_capture_on_commit_callbacks(execute=True):
        [payout] = payouts_create(program=program, now=timezone.now())
    payout.refresh_from_db()
    page = portal_login(Client(), connected).get("/portal/payouts/").content.decode()
    assert payout.public_id in page and payout.transfer_id in page and "Paid" in page
    assert payout.public_id not in other_portal_client.get("/portal/payouts/").content.decode()
    assert Client().get("/portal/payouts/").status_code == 302


# --- panel ---------------------------------------------------------------------------------------


@pytest.fixture
def paypal_payout(program, approved, fake_stripe):
    paypal = AffiliateFactory(
        program=program, code="PP", name="Pat Pal", payout_method="paypal", paypal_email="pp@example.com"
    )
    approved(paypal, 7000)
    [payout] = payouts_create(program=program, now=timezone.now())
    return payout


def test_panel_payouts_page_previews_next_run(staff_client, program, connected, approved, fake_stripe):
    approved(connected, 6000)
    poor = AffiliateFactory(
        program=program, code="POOR", name="Poor", payout_method="paypal", paypal_email="poor@example.com"
    )
    approved(poor, 1000)
    page = staff_client.get("/panel/p/acme/payouts/").content.decode()
    assert "60.00 USD" in page and "John" in page
    assert "below the minimum" in page and "Poor" in page


def test_panel_mark_manual_payout_paid(staff_client, paypal_payout, django_capture_on_commit_callbacks):
    url = f"/panel/p/acme/payouts/{paypal_payout.public_id}/"
    assert staff_client.get(url).status_code == 200
    bad = staff_client.post(url + "mark-paid/", {"reference": ""})
    assert bad.status_code == 200 and "This field is required" in bad.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url + "mark-paid/", {"reference": "PAYPAL-TX-1"})
    assert response.status_code == 302
    paypal_payout.refresh_from_db()
    assert paypal_payout.status == "paid" and paypal_payout.reference == "PAYPAL-TX-1"
    assert set(Commission.objects.values_list("status", flat=True)) == {"paid"}
    assert mail.outbox[-1].to == [paypal_payout.affiliate.email] and "PAYPAL-TX-1" in mail.outbox[-1].body


def test_panel_retry_failed_payout(
    staff_client, program, connected, approved, fake_stripe, django_capture_on_commit_callbacks
):
    approved(connected, 6000)
    fake_stripe.set_account("acct_john", payouts_enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        [payout] = payouts_create(program=program, now=timezone.now())
    fake_stripe.set_account("acct_john", payouts_enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/panel/p/acme/payouts/{payout.public_id}/retry/")
    assert response.status_code == 302
    payout.refresh_from_db()
    assert payout.status == "paid" and len(fake_stripe.transfers) == 1


def test_panel_run_now_creates_payouts(
    staff_client, program, connected, approved, fake_stripe, django_capture_on_commit_callbacks
):
    approved(connected, 6000)
    confirm = staff_client.get("/panel/p/acme/payouts/run/")
    assert "Pay 1 affiliate 60.00 USD?" in confirm.text
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/panel/p/acme/payouts/run/", {"expected_count": 1, "expected_total_cents": 6000}
        )
    assert response.status_code == 302
    assert Payout.objects.get().status == "paid"


def test_paypal_bulk_csv(staff_client, paypal_payout):
    response = staff_client.get("/panel/p/acme/payouts/export.csv?status=pending")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        [
            "pp@example.com",
            "70.00",
            "USD",
            paypal_payout.public_id,
            f"Acme affiliate payout {paypal_payout.period}",
            "PAYPAL",
        ]
    ]


@pytest.mark.parametrize("path", ["", "export.csv", "{po}/"])
def test_panel_payout_pages_for_owner_outsider_and_anonymous(
    staff_client, other_staff_client, client, paypal_payout, path
):
    url = "/panel/p/acme/payouts/" + path.format(po=paypal_payout.public_id)
    assert staff_client.get(url).status_code == 200
    assert other_staff_client.get(url).status_code == 404
    assert client.get(url)["Location"].startswith("/panel/login/")


def test_outsider_cannot_mark_paid_retry_or_run(other_staff_client, paypal_payout):
    base = f"/panel/p/acme/payouts/{paypal_payout.public_id}/"
    assert other_staff_client.post(base + "mark-paid/", {"reference": "x"}).status_code == 404
    assert other_staff_client.post(base + "retry/").status_code == 404
    assert other_staff_client.post("/panel/p/acme/payouts/run/").status_code == 404
    paypal_payout.refresh_from_db()
    assert paypal_payout.status == "pending"


def test_payout_of_another_program_is_404(staff_client, db):
    from tests.factories import ProgramFactory

    other = ProgramFactory(slug="globex2")
    stranger = AffiliateFactory(program=other)
    payout = PayoutFactory(
        affiliate=stranger, period="2026-11", method="paypal", destination="x@example.com", amount_cents=100
    )
    assert staff_client.get(f"/panel/p/acme/payouts/{payout.public_id}/").status_code == 404
    assert Affiliate.objects.filter(pk=stranger.pk).exists()
