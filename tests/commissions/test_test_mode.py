"""Live and test are separate worlds: a sk_test_ key sees and changes only test-mode
affiliates and rules, a live key never sees test ones, and a test rule never pays a live sale."""

import pytest

from affiliates.models import Affiliate
from commissions.models import Commission, CommissionRule
from tests.factories import AffiliateFactory, ClickFactory, CommissionRuleFactory, PartnerGroupFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_write_path")]


def sale(**extra):
    return {"event": "sale", "order_id": "ORD-1", "amount_cents": 1000, "currency": "USD", **extra}


@pytest.fixture
def test_affiliate(program):
    return AffiliateFactory(program=program, code="TESTY", email="testy@partner.example", livemode=False)


@pytest.fixture
def test_rule(program):
    return CommissionRuleFactory(
        program=program, type="fixed", rate_bp=None, amount_cents=77700, livemode=False
    )


# --- affiliates API ------------------------------------------------------------------------------


def test_test_key_lists_only_test_affiliates_and_no_live_email(test_api_client, affiliate, test_affiliate):
    response = test_api_client.get("/api/v1/affiliates")
    assert response.status_code == 200
    assert [a["id"] for a in response.json()["data"]] == [test_affiliate.public_id]
    assert response.json()["data"][0]["livemode"] is False
    assert "john@partner.example" not in response.content.decode()
    searched = test_api_client.get("/api/v1/affiliates?q=john").json()["data"]
    assert searched == []


def test_live_key_lists_only_live_affiliates(api_client, affiliate, test_affiliate):
    listed = api_client.get("/api/v1/affiliates").json()["data"]
    assert [a["id"] for a in listed] == [affiliate.public_id]
    assert listed[0]["livemode"] is True
    assert api_client.get(f"/api/v1/affiliates/{test_affiliate.public_id}").status_code == 404


def test_test_key_cannot_read_or_suspend_a_live_affiliate(test_api_client, affiliate):
    read = test_api_client.get(f"/api/v1/affiliates/{affiliate.public_id}")
    assert read.status_code == 404 and read.json()["error"]["code"] == "not_found"
    assert "john" not in read.content.decode().lower()
    patched = test_api_client.patch(
        f"/api/v1/affiliates/{affiliate.public_id}", {"status": "suspended", "reason": "x"}
    )
    assert patched.status_code == 404
    affiliate.refresh_from_db()
    assert affiliate.status == "active"


def test_test_key_creates_and_changes_a_test_affiliate(test_api_client, program):
    created = test_api_client.post(
        "/api/v1/affiliates", {"email": "t@example.com", "name": "T", "code": "TT"}
    )
    assert created.status_code == 201 and created.json()["livemode"] is False
    row = Affiliate.objects.get(public_id=created.json()["id"])
    assert row.livemode is False
    patched = test_api_client.patch(f"/api/v1/affiliates/{row.public_id}", {"status": "suspended"})
    assert patched.status_code == 200 and patched.json()["status"] == "suspended"


def test_codes_and_emails_are_one_namespace_across_modes(
    test_api_client, api_client, affiliate, test_affiliate
):
    by_test = test_api_client.post(
        "/api/v1/affiliates", {"email": "new@example.com", "name": "N", "code": "john"}
    )
    assert by_test.status_code == 409
    by_live = api_client.post("/api/v1/affiliates", {"email": "new@example.com", "name": "N", "code": "john"})
    assert by_test.json() == by_live.json()  # a test key learns no more than a live key would
    assert (
        api_client.post(
            "/api/v1/affiliates", {"email": "x@example.com", "name": "X", "code": "testy"}
        ).status_code
        == 409
    )
    assert Affiliate.objects.count() == 2


# --- commission rules API ------------------------------------------------------------------------


def test_test_key_cannot_list_read_or_delete_live_rules(test_api_client, sale_rule):
    assert test_api_client.get("/api/v1/commission-rules").json()["data"] == []
    assert test_api_client.get(f"/api/v1/commission-rules/{sale_rule.public_id}").status_code == 404
    assert test_api_client.delete(f"/api/v1/commission-rules/{sale_rule.public_id}").status_code == 404
    sale_rule.refresh_from_db()
    assert sale_rule.is_active


def test_live_key_never_sees_test_rules(api_client, sale_rule, test_rule):
    listed = api_client.get("/api/v1/commission-rules").json()["data"]
    assert [r["id"] for r in listed] == [sale_rule.public_id] and listed[0]["livemode"] is True
    assert api_client.get(f"/api/v1/commission-rules/{test_rule.public_id}").status_code == 404
    assert api_client.delete(f"/api/v1/commission-rules/{test_rule.public_id}").status_code == 404


def test_test_key_creates_test_rules_scoped_to_test_affiliates_only(
    test_api_client, affiliate, test_affiliate
):
    created = test_api_client.post("/api/v1/commission-rules", {"type": "fixed", "amount_cents": 77700})
    assert created.status_code == 201 and created.json()["livemode"] is False
    assert CommissionRule.objects.get(public_id=created.json()["id"]).livemode is False
    scoped = test_api_client.post(
        "/api/v1/commission-rules",
        {"type": "percent", "rate_bp": 1000, "affiliate": test_affiliate.public_id},
    )
    assert scoped.status_code == 201
    live_scoped = test_api_client.post(
        "/api/v1/commission-rules", {"type": "percent", "rate_bp": 1000, "affiliate": affiliate.public_id}
    )
    assert live_scoped.status_code == 404
    listed = {r["id"] for r in test_api_client.get("/api/v1/commission-rules").json()["data"]}
    assert listed == {created.json()["id"], scoped.json()["id"]}


# --- conversions ---------------------------------------------------------------------------------


def test_a_test_rule_never_pays_a_live_sale(api_client, test_api_client, affiliate, sale_rule):
    """The finding: a 777.00 fixed rule made with a test key was added to a live 10.00 sale."""
    made = test_api_client.post("/api/v1/commission-rules", {"type": "fixed", "amount_cents": 77700})
    assert made.status_code == 201
    body = api_client.post("/api/v1/events", sale(referral_code="JOHN")).json()
    assert [c["amount_cents"] for c in body["commissions"]] == [200]  # the live 20 % rule only
    assert Commission.objects.filter(rule__livemode=False).count() == 0


def test_a_test_event_is_paid_by_test_rules_to_test_affiliates(
    api_client, test_api_client, affiliate, sale_rule, test_affiliate, test_rule
):
    body = test_api_client.post("/api/v1/events", sale(referral_code="testy")).json()
    assert body["attributed"] and body["affiliate"]["id"] == test_affiliate.public_id
    assert [c["amount_cents"] for c in body["commissions"]] == [77700]
    row = Commission.objects.get(public_id=body["commissions"][0]["id"])
    assert row.livemode is False and row.rule == test_rule
    # A live affiliate's code in a test event is not attributed; a test code in a live event neither.
    live_code = test_api_client.post("/api/v1/events", sale(order_id="ORD-2", referral_code="JOHN")).json()
    assert live_code["attributed"] is False and live_code["commissions"] == []
    test_code = api_client.post("/api/v1/events", sale(order_id="ORD-3", referral_code="TESTY")).json()
    assert test_code["attributed"] is False and test_code["commissions"] == []


def test_a_test_event_follows_only_test_affiliates_clicks(
    test_api_client, program, affiliate, test_affiliate, test_rule
):
    ClickFactory(program=program, affiliate=test_affiliate, visitor_id="visitor-mode-1")
    ClickFactory(program=program, affiliate=affiliate, visitor_id="visitor-mode-1")  # the later click
    body = test_api_client.post("/api/v1/events", sale(visitor_id="visitor-mode-1")).json()
    assert body["affiliate"]["id"] == test_affiliate.public_id
    assert [c["amount_cents"] for c in body["commissions"]] == [77700]


def test_the_commissions_list_keeps_modes_apart(
    api_client, test_api_client, affiliate, sale_rule, test_affiliate, test_rule
):
    live = api_client.post("/api/v1/events", sale(referral_code="JOHN")).json()
    test = test_api_client.post("/api/v1/events", sale(referral_code="TESTY")).json()
    assert [c["id"] for c in api_client.get("/api/v1/commissions").json()["data"]] == [
        live["commissions"][0]["id"]
    ]
    assert [c["id"] for c in test_api_client.get("/api/v1/commissions").json()["data"]] == [
        test["commissions"][0]["id"]
    ]


def test_groups_are_shared_but_a_test_rule_of_a_group_pays_only_test_events(
    api_client, test_api_client, program, affiliate
):
    group = PartnerGroupFactory(program=program)
    affiliate.group = group
    affiliate.save()
    CommissionRuleFactory(program=program, rate_bp=2000)
    made = test_api_client.post(
        "/api/v1/commission-rules", {"type": "fixed", "amount_cents": 77700, "group": group.public_id}
    )
    assert made.status_code == 201
    body = api_client.post("/api/v1/events", sale(referral_code="JOHN")).json()
    assert [c["amount_cents"] for c in body["commissions"]] == [200]
