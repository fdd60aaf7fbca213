"""/api/v1/friend-rewards and the affiliate's promotion_code through the API (issue 16): clear
JSON errors for a percent over 100 %, a coupon currency that is not the program's, a promotion code
already taken in the program."""

import pytest

from affiliates.models import FriendReward, PromotionCode
from tests.factories import AffiliateFactory, PartnerGroupFactory

pytestmark = pytest.mark.django_db


def test_set_read_change_and_stop_the_programs_reward(api_client, program):
    created = api_client.post(
        "/api/v1/friend-rewards",
        {"type": "percent", "percent_bp": 2000, "duration": "repeating", "duration_months": 3},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("frw_") and body["group"] is None
    assert body["description"] == "20 % off your first 3 months" and body["active"] is True
    changed = api_client.post("/api/v1/friend-rewards", {"type": "amount", "amount_cents": 1500})
    assert changed.status_code == 200 and changed.json()["id"] == body["id"]
    assert (
        changed.json()["currency"] == "USD"
        and changed.json()["description"] == "15.00 USD off your first payment"
    )
    listed = api_client.get("/api/v1/friend-rewards").json()
    assert [r["id"] for r in listed["data"]] == [body["id"]]
    stopped = api_client.delete(f"/api/v1/friend-rewards/{body['id']}")
    assert stopped.status_code == 200 and stopped.json()["active"] is False


def test_a_group_reward(api_client, program):
    group = PartnerGroupFactory(program=program)
    response = api_client.post(
        "/api/v1/friend-rewards", {"type": "percent", "percent_bp": 3000, "group": group.public_id}
    )
    assert response.status_code == 201 and response.json()["group"] == group.public_id


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"type": "percent", "percent_bp": 10_001}, "percent_bp", "A percent discount is at most 100 %."),
        (
            {"type": "amount", "amount_cents": 500, "currency": "EUR"},
            "currency",
            "The coupon's currency must be the program's, USD.",
        ),
        ({"type": "percent", "percent_bp": 500, "duration": "repeating"}, "duration_months", None),
        ({"type": "gift"}, "type", None),
    ],
)
def test_bad_rewards_answer_the_json_error_shape(api_client, program, body, field, message):
    response = api_client.post("/api/v1/friend-rewards", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in error["fields"]
    if message:
        assert error["fields"][field] == [message]
    assert not FriendReward.objects.exists()


def test_a_test_key_reads_but_does_not_change_rewards(test_api_client, program):
    assert test_api_client.get("/api/v1/friend-rewards").status_code == 200
    response = test_api_client.post("/api/v1/friend-rewards", {"type": "percent", "percent_bp": 1000})
    assert response.status_code == 403 and response.json()["error"]["code"] == "live_key_required"


def test_promotion_code_through_the_affiliate_api(api_client, affiliate, program):
    assert api_client.get(f"/api/v1/affiliates/{affiliate.public_id}").json()["promotion_code"] == "JOHN"
    changed = api_client.patch(f"/api/v1/affiliates/{affiliate.public_id}", {"promotion_code": "JOHN-20"})
    assert changed.status_code == 200 and changed.json()["promotion_code"] == "JOHN-20"

    other = AffiliateFactory(program=program, code="ANN")
    taken = api_client.patch(f"/api/v1/affiliates/{other.public_id}", {"promotion_code": "john-20"})
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "promotion_code_taken"
    assert "already taken" in taken.json()["error"]["fields"]["promotion_code"][0]
    bad = api_client.patch(f"/api/v1/affiliates/{other.public_id}", {"promotion_code": "no spaces"})
    assert bad.status_code == 400 and "promotion_code" in bad.json()["error"]["fields"]
    assert not PromotionCode.objects.filter(affiliate=other).exists()
