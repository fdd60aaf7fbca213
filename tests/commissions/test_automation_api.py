import pytest

from commissions.models import CommissionRule
from tests.factories import AffiliateFactory, PartnerGroupFactory, ProgramFactory

pytestmark = pytest.mark.django_db


def test_create_list_and_deactivate_rules(api_client, program, affiliate):
    percent = api_client.post(
        "/api/v1/commission-rules", {"event": "sale", "type": "percent", "rate_bp": 2000}
    )
    assert percent.status_code == 201 and percent.json()["id"].startswith("rule_")
    fixed = api_client.post(
        "/api/v1/commission-rules",
        {
            "event": "sale",
            "type": "fixed",
            "amount_cents": 500,
            "first_event_only": True,
            "affiliate": affiliate.public_id,
        },
    )
    assert fixed.status_code == 201 and fixed.json()["scope"] == "affiliate"
    listed = api_client.get("/api/v1/commission-rules").json()["data"]
    assert {r["id"] for r in listed} == {percent.json()["id"], fixed.json()["id"]}
    deleted = api_client.delete(f"/api/v1/commission-rules/{percent.json()['id']}")
    assert deleted.status_code == 200 and deleted.json()["active"] is False
    assert CommissionRule.objects.filter(public_id=percent.json()["id"]).exists()  # kept for its commissions
    assert api_client.get(f"/api/v1/commission-rules/{fixed.json()['id']}").json()["type"] == "fixed"


def test_tiered_group_rule(api_client, program):
    group = PartnerGroupFactory(program=program)
    response = api_client.post(
        "/api/v1/commission-rules",
        {
            "type": "percent",
            "rate_bp": 1000,
            "group": group.public_id,
            "tiers": [{"min_cents": 500000, "rate_bp": 2000}],
            "duration_months": 12,
            "max_events": 12,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert (
        body["scope"] == "group"
        and body["tiers"] == [{"min_cents": 500000, "rate_bp": 2000}]
        and body["max_events"] == 12
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "percent", "rate_bp": 12000}, "rate_bp"),
        ({"type": "percent"}, "rate_bp"),
        ({"type": "fixed"}, "amount_cents"),
        ({"type": "fixed", "amount_cents": 100, "currency": "EUR"}, "currency"),
        ({"type": "percent", "rate_bp": 10, "tiers": "many"}, "tiers"),
        ({"type": "percent", "rate_bp": 10, "tiers": [{"min_cents": 5}]}, "tiers"),
        ({"type": "percent", "rate_bp": "10"}, "rate_bp"),
        ({"rate_bp": 10}, "type"),
        ({"type": "percent", "rate_bp": 10, "event": "Big Sale"}, "event"),
        ({"type": "percent", "rate_bp": 10, "max_events": 0}, "max_events"),
    ],
)
def test_invalid_rules_are_explained(api_client, program, payload, field):
    response = api_client.post("/api/v1/commission-rules", payload)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert CommissionRule.objects.count() == 0


def test_rule_scoped_to_foreign_affiliate_is_403(api_client, program):
    stranger = AffiliateFactory(program=ProgramFactory(slug="other"))
    response = api_client.post(
        "/api/v1/commission-rules", {"type": "percent", "rate_bp": 10, "affiliate": stranger.public_id}
    )
    assert response.status_code == 403 and CommissionRule.objects.count() == 0


def test_foreign_rule_is_403(api_client, db):
    from tests.factories import CommissionRuleFactory

    foreign = CommissionRuleFactory(program=ProgramFactory(slug="other"))
    assert api_client.delete(f"/api/v1/commission-rules/{foreign.public_id}").status_code == 403
    foreign.refresh_from_db()
    assert foreign.is_active


def test_list_commissions_with_filters_and_explanation(api_client, program, affiliate, sale_rule):
    other = AffiliateFactory(program=program, code="OTHER")
    for order, code in (("A", "JOHN"), ("B", "JOHN"), ("C", "OTHER")):
        api_client.post(
            "/api/v1/events",
            {"event": "sale", "order_id": order, "referral_code": code, "amount_cents": 5000},
        )
    api_client.post("/api/v1/refunds", {"order_id": "B"})
    everything = api_client.get("/api/v1/commissions").json()["data"]
    assert len(everything) == 3
    pending_john = api_client.get(
        f"/api/v1/commissions?status=pending&affiliate={affiliate.public_id}"
    ).json()["data"]
    assert [c["order_id"] for c in pending_john] == ["A"]
    item = pending_john[0]
    assert set(item) >= {
        "id",
        "affiliate",
        "event",
        "order_id",
        "amount_cents",
        "currency",
        "status",
        "hold_until",
        "rule",
        "explanation",
    }
    assert "20 % of 50.00 USD" in item["explanation"] and "referral code" in item["explanation"]
    assert [c["affiliate"] for c in api_client.get("/api/v1/commissions?order_id=C").json()["data"]] == [
        other.public_id
    ]
    assert api_client.get("/api/v1/commissions?status=nope").status_code == 400
