"""POST /api/v1/referrers: customers enrolled as referrers, idempotent by customer (issue 16, item 4)."""

import threading

import pytest
from django.db import close_old_connections, connection

from affiliates.models import Affiliate
from affiliates.referrers import referrer_enrol
from refapp.models import Actor, AuditLog
from tests.factories import AffiliateFactory


@pytest.fixture
def friends_program(program):
    program.customer_referrals = True
    program.save()
    return program


def test_enrolling_the_same_customer_twice_answers_the_same_link_and_code(api_client, friends_program):
    body = {"email": "Ann@Customer.example", "customer_id": "cus_ann", "name": "Ann"}
    first = api_client.post("/api/v1/referrers", body)
    again = api_client.post("/api/v1/referrers", {**body, "name": "Someone else"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    data = first.json()
    assert data["kind"] == "customer" and data["customer_id"] == "cus_ann" and data["status"] == "active"
    assert data["email"] == "ann@customer.example"
    assert data["links"]["referral"] == f"https://acme.example?ref={data['code']}"
    assert data["links"]["go"].endswith(f"/go/acme/{data['code']}")
    referrer = Affiliate.objects.get(public_id=data["id"])
    assert referrer.kind == Affiliate.Kind.CUSTOMER and referrer.payout_method == ""
    assert Affiliate.objects.filter(program=friends_program).count() == 1
    assert AuditLog.objects.filter(action="affiliate.created", object_id=data["id"]).count() == 1


def test_the_go_link_of_a_customer_referrer_redirects_with_their_code(api_client, friends_program, client):
    data = api_client.post(
        "/api/v1/referrers", {"email": "ann@customer.example", "customer_id": "cus_ann"}
    ).json()
    response = client.get(f"/go/acme/{data['code']}")
    assert response.status_code == 302
    assert f"ref={data['code']}" in response["Location"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "cus_1"}, "email"),
        ({"email": "not-an-email", "customer_id": "cus_1"}, "email"),
        ({"email": "ann@customer.example"}, "customer_id"),
        ({"email": "ann@customer.example", "customer_id": "   "}, "customer_id"),
        ({"email": "ann@customer.example", "customer_id": 42}, "customer_id"),
    ],
)
def test_bad_input_answers_the_json_error_shape(api_client, friends_program, body, field):
    response = api_client.post("/api/v1/referrers", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in error["fields"]
    assert not Affiliate.objects.filter(kind=Affiliate.Kind.CUSTOMER).exists()


def test_an_unknown_key_answers_401_in_the_error_shape(friends_program, client):
    response = client.post(
        "/api/v1/referrers",
        {"email": "ann@customer.example", "customer_id": "cus_ann"},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sk_live_nobodyknowsthiskey",
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_malformed_json_answers_400(api_client, friends_program):
    response = api_client.post("/api/v1/referrers", b"{not json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"


def test_a_program_without_customer_referrals_refuses_with_409(api_client, program):
    response = api_client.post(
        "/api/v1/referrers", {"email": "ann@customer.example", "customer_id": "cus_ann"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "customer_referrals_off"
    assert not Affiliate.objects.exists()


def test_an_email_of_an_affiliate_is_a_conflict(api_client, friends_program, affiliate):
    response = api_client.post("/api/v1/referrers", {"email": affiliate.email, "customer_id": "cus_john"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "email_taken"


def test_test_keys_enrol_test_referrers_apart_from_live_ones(api_client, test_api_client, friends_program):
    live = api_client.post("/api/v1/referrers", {"email": "ann@customer.example", "customer_id": "cus_ann"})
    test = test_api_client.post(
        "/api/v1/referrers", {"email": "ann2@customer.example", "customer_id": "cus_ann"}
    )
    assert live.status_code == 201 and test.status_code == 201
    assert test.json()["livemode"] is False and test.json()["id"] != live.json()["id"]


@pytest.mark.postgres
def test_concurrent_enrolments_of_one_customer_make_one_referrer(transactional_db, friends_program):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are proven on PostgreSQL; set DATABASE_URL to run it")
    barrier = threading.Barrier(8)
    results, errors = [], []

    def enrol():
        try:
            barrier.wait()
            referrer, _created = referrer_enrol(
                program=friends_program,
                livemode=True,
                email="ann@customer.example",
                customer_id="cus_ann",
                actor=Actor("test"),
            )
            results.append(referrer.pk)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=enrol) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 8
    assert Affiliate.objects.filter(customer_id="cus_ann").count() == 1


def test_affiliates_list_marks_customer_referrers(api_client, friends_program):
    AffiliateFactory(program=friends_program, code="JOHN")
    api_client.post("/api/v1/referrers", {"email": "ann@customer.example", "customer_id": "cus_ann"})
    kinds = sorted(a["kind"] for a in api_client.get("/api/v1/affiliates").json()["data"])
    assert kinds == ["affiliate", "customer"]
