"""A commission's explanation speaks to whoever reads it: the affiliate in the portal ("your
referral code"), the program's staff in the panel and the API ("the affiliate's referral code")."""

import pytest

from commissions.models import Commission

pytestmark = pytest.mark.django_db


@pytest.fixture
def by_code(api_client, affiliate, sale_rule):
    body = {"event": "sale", "order_id": "ORD-1", "referral_code": "JOHN", "amount_cents": 10000}
    assert api_client.post("/api/v1/events", body).status_code == 201
    return Commission.objects.get()


def test_the_panel_and_the_api_speak_of_the_affiliate(by_code, staff_client, api_client):
    page = staff_client.get(f"/panel/p/acme/commissions/{by_code.public_id}/").content.decode()
    assert "attributed through the affiliate&#x27;s referral code" in page
    assert "your referral code" not in page and "your link" not in page
    (item,) = api_client.get("/api/v1/commissions").json()["data"]
    assert item["explanation"] == (
        "20.00 USD = 20 % of 100.00 USD, rounded half up, for a sale attributed through the affiliate's referral code. "
        f"Unlocks on {by_code.hold_until:%Y-%m-%d}."
    )


def test_the_portal_speaks_to_the_affiliate(by_code, portal_client):
    page = portal_client.get("/portal/commissions/").content.decode()
    assert "attributed through your referral code" in page and "the affiliate" not in page
