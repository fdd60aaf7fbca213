"""GET /api/v1/referrals, /api/v1/events and /api/v1/clicks: what each shows and filters on.
What every list shares (keys, modes, affiliate and date filters, pagination) is in
tests/refapp/test_api_lists.py."""

import pytest

from tests.factories import AffiliateFactory, ClickFactory, EventFactory, ReferralFactory

pytestmark = pytest.mark.django_db


def _ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


def test_clicks_show_their_campaign_but_no_address_or_its_hash(api_client, affiliate):
    click = ClickFactory(
        affiliate=affiliate,
        ip_prefix="203.0.113.0",
        ip_hash="f" * 64,
        utm_source="newsletter",
        utm_campaign="spring",
        sub_id="s1",
        landing_url="https://acme.example/pricing",
    )
    row = api_client.get("/api/v1/clicks").json()["data"][0]
    assert row["id"] == f"clk_{click.pk}" and row["affiliate"] == affiliate.public_id
    assert (row["utm_source"], row["utm_campaign"], row["sub_id"]) == ("newsletter", "spring", "s1")
    assert "ip_hash" not in row and "ip_prefix" not in row
    assert "203.0.113" not in str(row) and "f" * 64 not in str(row)


def test_clicks_filter_by_visitor_sub_id_and_campaign(api_client, affiliate):
    wanted = ClickFactory(affiliate=affiliate, visitor_id="v-2", sub_id="s2", utm_campaign="fall")
    ClickFactory(affiliate=affiliate)
    for query in ("visitor_id=v-2", "sub_id=s2", "utm_campaign=fall"):
        assert _ids(api_client.get(f"/api/v1/clicks?{query}")) == [f"clk_{wanted.pk}"]


def test_clicks_of_a_test_affiliate_are_read_by_test_keys(api_client, test_api_client, program, affiliate):
    """Clicks have no mode: a key reads the clicks of its own mode's affiliates."""
    live = ClickFactory(affiliate=affiliate)
    test = ClickFactory(affiliate=AffiliateFactory(program=program, livemode=False, code="TESTY"))
    assert _ids(api_client.get("/api/v1/clicks")) == [f"clk_{live.pk}"]
    assert _ids(test_api_client.get("/api/v1/clicks")) == [f"clk_{test.pk}"]


def test_events_list_reaches_django_while_post_stays_on_the_fast_path(api_client, program, affiliate):
    posted = api_client.post(
        "/api/v1/events", {"event": "sale", "order_id": "O-1", "referral_code": "JOHN", "amount_cents": 4200}
    )
    assert posted.status_code == 201 and "X-Frame-Options" not in posted
    listed = api_client.get("/api/v1/events")
    assert listed.status_code == 200 and "X-Frame-Options" in listed  # Django's middleware answered
    row = listed.json()["data"][0]
    assert row["id"] == posted.json()["id"] and row["order_id"] == "O-1"
    assert (row["event"], row["amount_cents"], row["affiliate"]) == ("sale", 4200, affiliate.public_id)
    assert row["attribution"] == "code" and row["referral"]


def test_events_filter_by_order_customer_name_and_attribution(api_client, program, affiliate):
    sale = EventFactory(affiliate=affiliate, order_id="O-9", customer_id="cus_9")
    signup = EventFactory(program=program, name="signup", customer_id="cus_8")
    assert _ids(api_client.get("/api/v1/events?order_id=O-9")) == [sale.public_id]
    assert _ids(api_client.get("/api/v1/events?customer_id=cus_8")) == [signup.public_id]
    assert _ids(api_client.get("/api/v1/events?event=signup")) == [signup.public_id]
    assert _ids(api_client.get("/api/v1/events?attributed=true")) == [sale.public_id]
    assert _ids(api_client.get("/api/v1/events?attributed=false")) == [signup.public_id]


def test_events_never_show_the_hashes(api_client, affiliate):
    EventFactory(affiliate=affiliate, ip_hash="a" * 64, customer_email_hash="b" * 64)
    row = api_client.get("/api/v1/events").json()["data"][0]
    assert "a" * 64 not in str(row) and "b" * 64 not in str(row)


def test_referrals_filter_by_customer(api_client, affiliate):
    mine = ReferralFactory(affiliate=affiliate, customer_id="cus_1")
    ReferralFactory(affiliate=affiliate, customer_id="cus_2")
    rows = api_client.get("/api/v1/referrals?customer_id=cus_1").json()["data"]
    assert [r["id"] for r in rows] == [mine.public_id] and rows[0]["affiliate"] == affiliate.public_id


def test_a_write_method_on_a_read_is_405(api_client):
    for path in ("/api/v1/referrals", "/api/v1/clicks", "/api/v1/payouts"):
        response = api_client.delete(path)
        assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
