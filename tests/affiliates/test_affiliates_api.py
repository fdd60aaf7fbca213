import pytest

from affiliates.models import Affiliate
from affiliates.services import apikey_create
from refapp.models import AuditLog
from tests.conftest import ApiClient
from tests.factories import AffiliateFactory, PartnerGroupFactory, ProgramFactory

pytestmark = pytest.mark.django_db


def test_create_affiliate_returns_links(api_client, program, settings):
    response = api_client.post(
        "/api/v1/affiliates", {"email": "Ann@Example.com", "name": "Ann", "code": "ANN"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("aff_") and body["email"] == "ann@example.com" and body["status"] == "active"
    assert body["links"] == {
        "referral": "https://acme.example?ref=ANN",
        "go": f"{settings.BASE_URL}/go/acme/ANN",
    }
    assert AuditLog.objects.filter(action="affiliate.created", object_id=body["id"]).exists()


def test_create_generates_a_code_when_absent(api_client, program):
    body = api_client.post(
        "/api/v1/affiliates", {"email": "bo@example.com", "name": "Bo Diddley", "status": "pending"}
    ).json()
    assert body["code"] and body["status"] == "pending"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"email": "x@example.com", "name": "X", "code": "john"}, "code_taken"),
        ({"email": "JOHN@partner.example", "name": "X"}, "email_taken"),
    ],
)
def test_taken_code_or_email_is_409(api_client, affiliate, payload, code):
    response = api_client.post("/api/v1/affiliates", payload)
    assert response.status_code == 409 and response.json()["error"]["code"] == code
    assert Affiliate.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "X"}, "email"),
        ({"email": "not-an-email", "name": "X"}, "email"),
        ({"email": "a@b.co"}, "name"),
        ({"email": "a@b.co", "name": "X", "code": "has space"}, "code"),
        ({"email": "a@b.co", "name": "X", "status": "suspended"}, "status"),
    ],
)
def test_create_validation(api_client, program, payload, field):
    response = api_client.post("/api/v1/affiliates", payload)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert Affiliate.objects.count() == 0


def test_list_filters_search_and_paginates(api_client, program):
    for i in range(5):
        AffiliateFactory(program=program, name=f"Alpha {i}", status="active")
    AffiliateFactory(program=program, name="Beta", status="pending")
    AffiliateFactory(program=ProgramFactory(slug="other"), name="Alpha elsewhere")
    page1 = api_client.get("/api/v1/affiliates?status=active&limit=3").json()
    assert len(page1["data"]) == 3 and page1["next_cursor"]
    page2 = api_client.get(f"/api/v1/affiliates?status=active&limit=3&cursor={page1['next_cursor']}").json()
    assert len(page2["data"]) == 2 and page2["next_cursor"] is None
    ids = [a["id"] for a in page1["data"] + page2["data"]]
    assert len(set(ids)) == 5
    assert [a["name"] for a in api_client.get("/api/v1/affiliates?q=beta").json()["data"]] == ["Beta"]
    assert api_client.get("/api/v1/affiliates?limit=500").status_code == 400
    assert api_client.get("/api/v1/affiliates?cursor=%%%").status_code == 400
    assert api_client.get("/api/v1/affiliates?status=bogus").status_code == 400


def test_patch_status_with_reason_and_group(api_client, program, affiliate):
    group = PartnerGroupFactory(program=program)
    response = api_client.patch(
        f"/api/v1/affiliates/{affiliate.public_id}",
        {"status": "suspended", "reason": "spam", "group": group.public_id},
    )
    assert response.status_code == 200
    body = response.json()
    assert (
        body["status"] == "suspended" and body["status_reason"] == "spam" and body["group"] == group.public_id
    )
    assert AuditLog.objects.filter(action="affiliate.suspended", data__reason="spam").exists()
    assert (
        api_client.patch(f"/api/v1/affiliates/{affiliate.public_id}", {"group": None}).json()["group"] is None
    )


def test_patch_invalid_transition_is_409(api_client, program):
    pending = AffiliateFactory(program=program, status="pending")
    response = api_client.patch(f"/api/v1/affiliates/{pending.public_id}", {"status": "suspended"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_transition"


def test_patch_rejects_unknown_fields(api_client, affiliate):
    response = api_client.patch(f"/api/v1/affiliates/{affiliate.public_id}", {"email": "new@example.com"})
    assert response.status_code == 400 and "email" in response.json()["error"]["fields"]


def test_other_programs_affiliate_is_403_and_unknown_404(api_client, db):
    stranger = AffiliateFactory(program=ProgramFactory(slug="other"))
    assert api_client.get(f"/api/v1/affiliates/{stranger.public_id}").status_code == 403
    response = api_client.patch(f"/api/v1/affiliates/{stranger.public_id}", {"status": "suspended"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "wrong_program"
    stranger.refresh_from_db()
    assert stranger.status == "active"
    assert api_client.get("/api/v1/affiliates/aff_nope").status_code == 404


def test_group_of_other_program_is_refused(api_client, affiliate):
    foreign = PartnerGroupFactory(program=ProgramFactory(slug="other"))
    assert (
        api_client.patch(
            f"/api/v1/affiliates/{affiliate.public_id}", {"group": foreign.public_id}
        ).status_code
        == 403
    )


def test_key_of_other_program_sees_only_its_own(program, affiliate):
    other = ProgramFactory(slug="other")
    other_client = ApiClient(apikey_create(program=other)[1])
    assert other_client.get("/api/v1/affiliates").json()["data"] == []


def test_a_key_over_its_rate_limit_gets_429_in_the_error_shape(api_client, settings):
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "api": 5}
    statuses = [api_client.get("/api/v1/affiliates").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    body = api_client.get("/api/v1/affiliates").json()
    assert body["error"]["code"] == "rate_limited"


# --- issue 17 part B: change code and PayPal email, look up by code or email ------------------


def test_patch_code_and_paypal_email_are_audited(api_client, affiliate):
    response = api_client.patch(
        f"/api/v1/affiliates/{affiliate.public_id}", {"code": "johnny", "paypal_email": "Pay@John.example"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "johnny" and body["links"]["go"].endswith("/johnny")
    assert body["paypal_email"] == "pay@john.example" and body["payout_method"] == "paypal"
    actions = set(AuditLog.objects.filter(object_id=affiliate.public_id).values_list("action", flat=True))
    assert {"affiliate.code_changed", "affiliate.payout_method_changed"} <= actions
    cleared = api_client.patch(f"/api/v1/affiliates/{affiliate.public_id}", {"paypal_email": None})
    assert cleared.json()["paypal_email"] == "" and cleared.json()["payout_method"] == ""


def test_patch_taken_code_is_409_and_changes_nothing(api_client, program, affiliate):
    AffiliateFactory(program=program, code="TAKEN")
    response = api_client.patch(
        f"/api/v1/affiliates/{affiliate.public_id}", {"code": "taken", "paypal_email": "pay@john.example"}
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "code_taken"
    affiliate.refresh_from_db()
    assert affiliate.code == "JOHN" and affiliate.paypal_email == ""


def test_patch_refused_transition_undoes_the_other_changes(api_client, program):
    pending = AffiliateFactory(program=program, status="pending", code="PEND")
    response = api_client.patch(
        f"/api/v1/affiliates/{pending.public_id}", {"code": "pend2", "status": "suspended"}
    )
    assert response.status_code == 409
    pending.refresh_from_db()
    assert pending.code == "PEND"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"code": "no spaces"}, "code"),
        ({"code": ""}, "code"),
        ({"code": 7}, "code"),
        ({"paypal_email": "not-an-email"}, "paypal_email"),
        ({"paypal_email": "=1+1@csv.example"}, "paypal_email"),
        ({"group": 5}, "group"),
    ],
)
def test_patch_validation_errors_name_the_field(api_client, affiliate, payload, field):
    response = api_client.patch(f"/api/v1/affiliates/{affiliate.public_id}", payload)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    affiliate.refresh_from_db()
    assert affiliate.code == "JOHN" and affiliate.paypal_email == ""


def test_test_key_cannot_patch_a_live_affiliate(test_api_client, affiliate):
    response = test_api_client.patch(f"/api/v1/affiliates/{affiliate.public_id}", {"code": "stolen"})
    assert response.status_code == 404
    affiliate.refresh_from_db()
    assert affiliate.code == "JOHN"


def test_look_up_by_code_or_email_any_case(api_client, program, affiliate):
    AffiliateFactory(program=program, code="JOHNNY", email="johnny@partner.example")
    by_code = api_client.get("/api/v1/affiliates?code=john").json()["data"]
    by_email = api_client.get("/api/v1/affiliates?email=JOHN@Partner.example").json()["data"]
    assert [a["id"] for a in by_code] == [a["id"] for a in by_email] == [affiliate.public_id]
    assert api_client.get("/api/v1/affiliates?code=nobody").json()["data"] == []


def test_read_one_by_code(api_client, test_api_client, affiliate):
    response = api_client.get("/api/v1/affiliates/john")
    assert response.status_code == 200 and response.json()["id"] == affiliate.public_id
    assert test_api_client.get("/api/v1/affiliates/JOHN").status_code == 404
