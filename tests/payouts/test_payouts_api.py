"""GET /api/v1/payouts and /api/v1/payouts/{id}. What every list shares (keys, modes, affiliate
and date filters, pagination) is in tests/refapp/test_api_lists.py."""

import pytest

from affiliates.services import apikey_create
from tests.conftest import ApiClient
from tests.factories import AffiliateFactory, PayoutFactory, ProgramFactory

pytestmark = pytest.mark.django_db


def test_read_one_payout(api_client, affiliate):
    payout = PayoutFactory(affiliate=affiliate, status="paid", reference="PP-1")
    response = api_client.get(f"/api/v1/payouts/{payout.public_id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["affiliate"], body["status"], body["amount_cents"]) == (
        payout.public_id,
        affiliate.public_id,
        "paid",
        5000,
    )
    assert body["reference"] == "PP-1" and body["method"] == "paypal"


def test_another_programs_payout_is_403_and_unknown_404(api_client, affiliate):
    theirs = PayoutFactory(affiliate=AffiliateFactory(program=ProgramFactory(slug="other")))
    assert api_client.get(f"/api/v1/payouts/{theirs.public_id}").status_code == 403
    assert api_client.get("/api/v1/payouts/po_nope").status_code == 404
    other_client = ApiClient(apikey_create(program=theirs.program, mode="live")[1])
    assert other_client.get(f"/api/v1/payouts/{theirs.public_id}").status_code == 200


def test_test_key_does_not_see_a_live_payout(test_api_client, affiliate):
    payout = PayoutFactory(affiliate=affiliate)
    assert test_api_client.get(f"/api/v1/payouts/{payout.public_id}").status_code == 404


def test_filter_by_status(api_client, affiliate):
    paid = PayoutFactory(affiliate=affiliate, status="paid", period="2026-01")
    PayoutFactory(affiliate=affiliate, status="pending", period="2026-02")
    rows = api_client.get("/api/v1/payouts?status=paid").json()["data"]
    assert [r["id"] for r in rows] == [paid.public_id]
