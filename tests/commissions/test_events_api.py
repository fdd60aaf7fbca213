import json
from datetime import timedelta

import pytest
from django.utils import timezone

from commissions.models import Commission, FraudFlag
from tests.factories import AffiliateFactory, ClickFactory, CommissionRuleFactory, ProgramFactory
from tracking.models import Event, Referral

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_write_path")]


def sale(**extra):
    return {"event": "sale", "order_id": "ORD-1", "amount_cents": 9900, "currency": "USD", **extra}


def test_sale_by_referral_code_creates_pending_commission(api_client, affiliate, sale_rule, program):
    response = api_client.post("/api/v1/events", sale(referral_code="john"))
    assert response.status_code == 201
    body = response.json()
    assert body["attributed"] is True
    assert body["affiliate"] == {"id": affiliate.public_id, "code": "JOHN"}
    assert body["referral"].startswith("ref_")
    [commission] = body["commissions"]
    assert commission["amount_cents"] == 1980 and commission["currency"] == "USD"
    assert commission["status"] == "pending"
    row = Commission.objects.get(public_id=commission["id"])
    event = Event.objects.get(public_id=body["id"])
    assert row.hold_until == event.occurred_at + timedelta(days=program.hold_days)
    assert row.inputs["rate_bp"] == 2000 and row.inputs["attribution"] == "code"
    assert row.rule == sale_rule


def test_replayed_order_returns_identical_body_and_one_commission(api_client, affiliate, sale_rule):
    first = api_client.post("/api/v1/events", sale(referral_code="JOHN"))
    again = api_client.post("/api/v1/events", sale(referral_code="JOHN", amount_cents=1))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert Event.objects.filter(order_id="ORD-1").count() == 1
    assert Commission.objects.count() == 1


def test_amount_as_decimal_string(api_client, affiliate, sale_rule):
    clean = {"event": "sale", "order_id": "ORD-2", "amount": "99.95", "referral_code": "JOHN"}
    response = api_client.post("/api/v1/events", clean)
    assert response.status_code == 201
    assert response.json()["commissions"][0]["amount_cents"] == 1999  # 20 % of 9995 = 1999.0


def test_visitor_click_attribution_last_click_wins(api_client, program, sale_rule):
    first = AffiliateFactory(program=program, code="FIRST")
    last = AffiliateFactory(program=program, code="LAST")
    ClickFactory(affiliate=first, created_at=timezone.now() - timedelta(days=3))
    ClickFactory(affiliate=last, created_at=timezone.now() - timedelta(days=1))
    body = api_client.post("/api/v1/events", sale(visitor_id="visitor-0001")).json()
    assert body["affiliate"]["code"] == "LAST"


def test_first_click_model(api_client, program, sale_rule):
    program.attribution_model = "first_click"
    program.save()
    first = AffiliateFactory(program=program, code="FIRST")
    last = AffiliateFactory(program=program, code="LAST")
    ClickFactory(affiliate=first, created_at=timezone.now() - timedelta(days=3))
    ClickFactory(affiliate=last, created_at=timezone.now() - timedelta(days=1))
    body = api_client.post("/api/v1/events", sale(visitor_id="visitor-0001")).json()
    assert body["affiliate"]["code"] == "FIRST"


def test_click_outside_cookie_window_does_not_attribute(api_client, affiliate, sale_rule, program):
    ClickFactory(affiliate=affiliate, created_at=timezone.now() - timedelta(days=program.cookie_days + 1))
    body = api_client.post("/api/v1/events", sale(visitor_id="visitor-0001")).json()
    assert body["attributed"] is False and body["commissions"] == []
    assert Event.objects.get(public_id=body["id"]).attribution == "none"


def test_click_of_suspended_affiliate_does_not_attribute(api_client, affiliate, sale_rule):
    ClickFactory(affiliate=affiliate)
    affiliate.status = "suspended"
    affiliate.save()
    body = api_client.post("/api/v1/events", sale(visitor_id="visitor-0001")).json()
    assert body["attributed"] is False


def test_code_wins_over_click_and_customer_wins_over_code(api_client, program, sale_rule):
    clicker = AffiliateFactory(program=program, code="CLICKER")
    coder = AffiliateFactory(program=program, code="CODER")
    ClickFactory(affiliate=clicker)
    body = api_client.post(
        "/api/v1/events", sale(visitor_id="visitor-0001", referral_code="CODER", customer_id="cus_1")
    ).json()
    assert body["affiliate"]["code"] == "CODER"
    # the renewal names another code, but the customer already belongs to CODER
    renewal = api_client.post(
        "/api/v1/events",
        sale(order_id="ORD-2", event="renewal", customer_id="cus_1", referral_code="CLICKER"),
    ).json()
    assert renewal["affiliate"]["id"] == coder.public_id
    assert renewal["referral"] == body["referral"]


def test_renewal_without_visitor_pays_through_customer_referral(api_client, affiliate, program):
    CommissionRuleFactory(program=program, event_name="sale", rate_bp=3000)
    api_client.post("/api/v1/events", sale(referral_code="JOHN", customer_id="cus_9"))
    renewal = api_client.post(
        "/api/v1/events", sale(order_id="ORD-2", customer_id="cus_9", amount_cents=1000)
    ).json()
    assert renewal["attributed"] is True
    assert renewal["commissions"][0]["amount_cents"] == 300
    assert Referral.objects.filter(customer_id="cus_9").count() == 1


def test_referred_customer_of_suspended_affiliate_earns_nothing_new(api_client, affiliate, sale_rule):
    api_client.post("/api/v1/events", sale(referral_code="JOHN", customer_id="cus_9"))
    affiliate.status = "suspended"
    affiliate.save()
    body = api_client.post("/api/v1/events", sale(order_id="ORD-2", customer_id="cus_9")).json()
    assert body["attributed"] is True and body["commissions"] == []


def test_unattributed_event_is_stored(api_client, program, sale_rule):
    response = api_client.post("/api/v1/events", sale())
    assert response.status_code == 201
    assert response.json() == {
        "id": response.json()["id"],
        "livemode": True,
        "attributed": False,
        "affiliate": None,
        "referral": None,
        "commissions": [],
    }
    assert Event.objects.count() == 1


def test_self_referral_by_email_is_not_payable_and_flags(api_client, affiliate, sale_rule):
    body = api_client.post(
        "/api/v1/events", sale(referral_code="JOHN", customer_email=" John@Partner.example ")
    ).json()
    [commission] = body["commissions"]
    assert commission["status"] == "rejected"
    flag = FraudFlag.objects.get()
    assert flag.affiliate == affiliate and flag.reason == "self_referral_email" and flag.status == "open"
    event = Event.objects.get(public_id=body["id"])
    assert event.customer_email_hash and "john" not in event.customer_email_hash


def test_test_mode_keys_keep_data_apart(api_client, test_api_client, program, affiliate, sale_rule):
    # A test event is attributed to test affiliates only and paid by test rules only.
    AffiliateFactory(program=program, code="TESTY", livemode=False)
    CommissionRuleFactory(program=program, rate_bp=1000, livemode=False)
    live = api_client.post("/api/v1/events", sale(referral_code="JOHN")).json()
    test = test_api_client.post("/api/v1/events", sale(referral_code="TESTY")).json()
    assert live["id"] != test["id"]  # the same order id is a different order in each mode
    assert live["livemode"] is True and test["livemode"] is False
    assert not Commission.objects.get(public_id=test["commissions"][0]["id"]).livemode
    listed = test_api_client.get("/api/v1/commissions").json()["data"]
    assert [c["id"] for c in listed] == [test["commissions"][0]["id"]]


def test_program_in_body_must_match_key(api_client, affiliate, sale_rule):
    ProgramFactory(slug="other")
    response = api_client.post("/api/v1/events", sale(program="other"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "wrong_program"
    assert Event.objects.count() == 0


def test_occurred_at_sets_hold_and_window(api_client, affiliate, sale_rule, program):
    at = timezone.now() - timedelta(days=2)
    body = api_client.post("/api/v1/events", sale(referral_code="JOHN", occurred_at=at.isoformat())).json()
    commission = Commission.objects.get(public_id=body["commissions"][0]["id"])
    assert abs(commission.hold_until - (at + timedelta(days=30))) < timedelta(seconds=1)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 400, "malformed_json", None),
        (b"[1, 2]", 400, "invalid_request", None),
        (b"", 400, "invalid_request", None),
        ({"order_id": "X"}, 400, "invalid_request", "event"),
        ({"event": "Sale!"}, 400, "invalid_request", "event"),
        ({"event": "sale", "amount_cents": "99"}, 400, "invalid_request", "amount_cents"),
        ({"event": "sale", "amount_cents": 12.5}, 400, "invalid_request", "amount_cents"),
        ({"event": "sale", "amount_cents": True}, 400, "invalid_request", "amount_cents"),
        ({"event": "sale", "amount_cents": -100}, 400, "invalid_request", "amount_cents"),
        ({"event": "sale", "amount_cents": 10**15}, 400, "invalid_request", "amount_cents"),
        ({"event": "sale", "amount": "-5.00"}, 400, "invalid_request", "amount"),
        ({"event": "sale", "amount": "1.234"}, 400, "invalid_request", "amount"),
        ({"event": "sale", "amount": 99}, 400, "invalid_request", "amount"),
        ({"event": "sale", "amount": "1", "amount_cents": 100}, 400, "invalid_request", "amount"),
        ({"event": "sale", "amount_cents": 100, "currency": "XXZ"}, 400, "invalid_request", "currency"),
        ({"event": "sale", "amount_cents": 100, "currency": "EUR"}, 400, "invalid_request", "currency"),
        ({"event": "sale", "visitor_id": "bad id!"}, 400, "invalid_request", "visitor_id"),
        ({"event": "sale", "metadata": [1]}, 400, "invalid_request", "metadata"),
        ({"event": "sale", "metadata": {str(i): i for i in range(51)}}, 400, "invalid_request", "metadata"),
        ({"event": "sale", "occurred_at": "yesterday"}, 400, "invalid_request", "occurred_at"),
        ({"event": "sale", "occurred_at": "2026-01-01T10:00:00"}, 400, "invalid_request", "occurred_at"),
        ({"event": "sale", "occurred_at": "2999-01-01T10:00:00Z"}, 400, "invalid_request", "occurred_at"),
        ({"event": "sale", "order_id": 5}, 400, "invalid_request", "order_id"),
        ({"event": "sale", "customer_email": "nope"}, 400, "invalid_request", "customer_email"),
    ],
)
def test_bad_input_gets_documented_error_and_writes_nothing(
    api_client, affiliate, sale_rule, body, status, code, field
):
    response = api_client.post("/api/v1/events", body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    if field:
        assert field in error["fields"]
    assert Event.objects.count() == 0 and Commission.objects.count() == 0


def test_oversized_body_is_413(api_client, program):
    response = api_client.post(
        "/api/v1/events", json.dumps({"event": "sale", "metadata": {"a": "x" * 70_000}})
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("Bearer", "missing_api_key"),
        ("Bearer sk_live_nope", "invalid_api_key"),
        ("Basic abc", "missing_api_key"),
        ("Bearer pk_x", "invalid_api_key"),
    ],
)
def test_missing_or_wrong_key_is_401(client, program, header, code):
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(
        "/api/v1/events", data=json.dumps(sale()), content_type="application/json", **kwargs
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert Event.objects.count() == 0


def test_revoked_key_is_401(api_client, program):
    from affiliates.models import ApiKey
    from affiliates.services import apikey_revoke

    for key in ApiKey.objects.all():
        apikey_revoke(key=key)
    assert api_client.post("/api/v1/events", sale()).status_code == 401


def test_delete_is_405_json(api_client):
    """GET lists the events (tests/tracking/test_reads_api.py); other methods are refused as JSON."""
    response = api_client.delete("/api/v1/events")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, POST"


def test_self_referral_by_portal_ip_is_flagged(api_client, affiliate, sale_rule):
    from affiliates.models import PortalSession
    from refapp.hashing import ip_prefix_and_hash

    _, ip_hash = ip_prefix_and_hash("198.51.100.23")
    PortalSession.objects.create(affiliate=affiliate, ip_hash=ip_hash, created_at=timezone.now())
    ClickFactory(affiliate=affiliate, ip_hash=ip_hash)
    body = api_client.post("/api/v1/events", sale(visitor_id="visitor-0001")).json()
    assert body["commissions"][0]["status"] == "rejected"
    assert FraudFlag.objects.get().reason == "self_referral_ip"


def test_click_from_another_ip_is_not_flagged(api_client, affiliate, sale_rule):
    from affiliates.models import PortalSession

    PortalSession.objects.create(affiliate=affiliate, ip_hash="a" * 64, created_at=timezone.now())
    ClickFactory(affiliate=affiliate)
    body = api_client.post("/api/v1/events", sale(visitor_id="visitor-0001")).json()
    assert body["commissions"][0]["status"] == "pending" and not FraudFlag.objects.exists()


def test_key_lookups_are_cached_briefly_per_process(api_client, program, settings, django_assert_num_queries):
    from affiliates import auth
    from affiliates.models import ApiKey
    from affiliates.services import apikey_revoke

    settings.REFAPP_API_KEY_CACHE_SECONDS = 10
    auth._keys.clear()
    assert api_client.get("/api/v1/commissions").status_code == 200
    apikey_revoke(key=ApiKey.objects.get(program=program, mode="live"))
    assert api_client.get("/api/v1/commissions").status_code == 200  # within the cache window
    auth._keys.clear()  # the window ends
    assert api_client.get("/api/v1/commissions").status_code == 401


def test_last_used_is_written_at_most_once_a_minute(api_client, program, settings, django_assert_num_queries):
    from affiliates import auth

    settings.REFAPP_API_KEY_CACHE_SECONDS = 10
    auth._keys.clear()
    api_client.get("/api/v1/commissions")  # first use: looks the key up and stamps last_used_at
    with django_assert_num_queries(1):  # the list query only: no key lookup, no last_used_at write
        api_client.get("/api/v1/commissions")
