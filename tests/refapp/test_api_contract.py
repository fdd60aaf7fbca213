"""The OpenAPI document is valid, and every operation in it answers what it says.

Every /api/v1/ response of the whole suite is checked against the document by the test clients
(tests/contract.py, hooked in tests/conftest.py). This module makes sure every operation is
exercised at least once whatever tests are selected: it calls each one with a valid and an invalid
input, and fails if the document lists an operation it did not reach.
"""

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from affiliates.models import Program
from tests import contract
from tests.factories import CommissionRuleFactory, PayoutFactory

pytestmark = pytest.mark.django_db


def _schemas(doc):
    """Every JSON schema in the document, with where it is."""
    for name, schema in doc["components"]["schemas"].items():
        yield f"components/{name}", schema
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                yield f"{method} {path} ?{param['name']}", param["schema"]
            for media in op.get("requestBody", {}).get("content", {}).values():
                yield f"{method} {path} request", media["schema"]
            for status, response in op["responses"].items():
                for media in response.get("content", {}).values():
                    yield f"{method} {path} {status}", media["schema"]


def test_document_is_an_openapi_3_1_document_of_valid_schemas():
    doc = contract.document()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] and doc["paths"]
    for where, schema in _schemas(doc):
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:  # name the schema that is wrong
            raise AssertionError(f"{where}: {exc}") from exc
    # Every $ref resolves inside the document.
    registry = Registry().with_resource(contract.DOC_URI, Resource(contents=doc, specification=DRAFT202012))
    resolver = registry.resolver(base_uri=contract.DOC_URI)
    for where, schema in _schemas(doc):
        for ref in _refs(schema):
            assert resolver.lookup(ref).contents, f"{where}: {ref} does not resolve"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert method in {"get", "post", "patch", "put", "delete", "options"}, (path, method)
            assert op["responses"] and "500" in op["responses"], (path, method)
            for status, response in op["responses"].items():
                assert response["description"], (path, method, status)
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def _refs(schema):
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"]
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


def _request_schema(path, method):
    return contract.document()["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def _valid(path, method, body):
    """A valid input is valid by the document too: the request schemas cannot drift either."""
    Draft202012Validator(_request_schema(path, method)).validate(body)
    return body


def test_every_operation_answers_its_contract(api_client, program, affiliate, sale_rule):
    seen_before = set(contract.SEEN)
    contract.SEEN.clear()
    try:
        _exercise_every_operation(api_client, affiliate)
        reached = {(path, method) for path, method, _ in contract.SEEN}
    finally:
        contract.SEEN.update(seen_before)
    missing = contract.operations() - reached
    assert not missing, f"operations no test reached: {sorted(missing)}"


def _exercise_every_operation(api, affiliate):
    click = "/api/v1/track/click"
    ok = api.post(
        click, _valid(click, "post", {"program": "acme", "ref": "JOHN", "visitor_id": "visitor-0001"})
    )
    assert ok.status_code == 202
    assert api.post(click, {"ref": "JOHN"}).status_code == 400
    assert api.options(click, HTTP_ORIGIN="https://acme.example").status_code == 204

    events = "/api/v1/events"
    sale = _valid(
        events, "post", {"event": "sale", "order_id": "C-1", "referral_code": "JOHN", "amount_cents": 5000}
    )
    assert api.post(events, sale).status_code == 201
    replay = api.post(events, sale)
    assert replay.status_code == 200
    assert "X-Frame-Options" not in replay  # answered by the fast path, before Django's middleware
    assert api.post(events, {"event": "Not A Name"}).status_code == 400

    refunds = "/api/v1/refunds"
    refund = _valid(refunds, "post", {"order_id": "C-1", "refund_id": "re_1", "amount_cents": 1000})
    assert api.post(refunds, refund).status_code == 201
    assert api.post(refunds, refund).status_code == 200
    assert api.post(refunds, {"order_id": "NOPE"}).status_code == 404

    affiliates = "/api/v1/affiliates"
    assert api.get(affiliates).status_code == 200
    assert api.get(affiliates + "?status=nope").status_code == 400
    new = _valid(affiliates, "post", {"email": "ann@partner.example", "name": "Ann", "code": "ANN"})
    created = api.post(affiliates, new)
    assert created.status_code == 201
    assert api.post(affiliates, new).status_code == 409
    detail = f"{affiliates}/{created.json()['id']}"
    assert api.get(detail).status_code == 200
    assert api.get(f"{affiliates}/aff_nope").status_code == 404
    change = _valid("/api/v1/affiliates/{id}", "patch", {"status": "suspended", "reason": "test"})
    assert api.patch(detail, change).status_code == 200
    assert api.patch(detail, {"status": "exploded"}).status_code == 400

    referrers = "/api/v1/referrers"
    customer = _valid(
        referrers, "post", {"email": "cus@customer.example", "customer_id": "cus_1", "name": "Cus"}
    )
    assert api.post(referrers, customer).status_code == 409  # the program does not enrol customers yet
    Program.objects.filter(pk=affiliate.program_id).update(customer_referrals=True)
    assert api.post(referrers, customer).status_code == 201
    assert api.post(referrers, customer).status_code == 200
    assert api.post(referrers, {"customer_id": "cus_2"}).status_code == 400
    rewards = "/api/v1/friend-rewards"
    reward = api.post(rewards, _valid(rewards, "post", {"type": "percent", "percent_bp": 2000}))
    assert reward.status_code == 201
    assert api.post(rewards, {"type": "percent", "percent_bp": 20_000}).status_code == 400
    assert api.get(rewards).status_code == 200
    assert api.get(f"{rewards}/{reward.json()['id']}").status_code == 200
    assert api.get(f"{rewards}/frw_nope").status_code == 404
    assert api.delete(f"{rewards}/{reward.json()['id']}").status_code == 200

    rules = "/api/v1/commission-rules"
    assert api.get(rules).status_code == 200
    assert api.get(rules + "?limit=0").status_code == 400
    rule = _valid(rules, "post", {"event": "signup", "type": "fixed", "amount_cents": 500})
    rule_created = api.post(rules, rule)
    assert rule_created.status_code == 201
    assert api.post(rules, {"type": "fixed", "amount_cents": 500, "group": "grp_nope"}).status_code in (
        400,
        404,
    )
    assert api.post(rules, {"type": "bogus"}).status_code == 400
    rule_url = f"{rules}/{rule_created.json()['id']}"
    assert api.get(rule_url).status_code == 200
    assert api.get(f"{rules}/rule_nope").status_code == 404
    assert api.delete(rule_url).status_code == 200
    assert api.delete(f"{rules}/rule_nope").status_code == 404
    other = CommissionRuleFactory(program__slug="globex", event_name="sale", type="percent", rate_bp=1000)
    assert api.get(f"{rules}/{other.public_id}").status_code == 403

    assert api.get("/api/v1/commissions").status_code == 200
    assert api.get("/api/v1/commissions?status=nope").status_code == 400

    for read in ("/api/v1/referrals", "/api/v1/events", "/api/v1/clicks", "/api/v1/payouts"):
        assert api.get(f"{read}?affiliate=JOHN&from=2026-01-01").status_code == 200
        assert api.get(f"{read}?affiliate=NOBODY").status_code == 400
    payout = PayoutFactory(affiliate=affiliate)
    assert api.get(f"/api/v1/payouts/{payout.public_id}").status_code == 200
    assert api.get("/api/v1/payouts/po_nope").status_code == 404
    other_payout = PayoutFactory(affiliate__program__slug="initech")
    assert api.get(f"/api/v1/payouts/{other_payout.public_id}").status_code == 403
    report = "/api/v1/reports/summary?from=2026-01-01&to=2026-01-31"
    for group_by in ("day", "affiliate", "campaign", "sub_id", "source"):
        assert api.get(f"{report}&group_by={group_by}").status_code == 200
    assert api.get("/api/v1/reports/summary?from=2026-01-01").status_code == 400

    privacy = "/api/v1/privacy"
    assert api.get(f"{privacy}/export?affiliate={affiliate.public_id}").status_code == 200
    assert api.get(f"{privacy}/export?customer_id=cus_1").status_code == 200
    assert api.get(f"{privacy}/export").status_code == 400
    assert api.get(f"{privacy}/export?affiliate=aff_nope").status_code == 404
    assert (
        api.post(f"{privacy}/erase", _valid(f"{privacy}/erase", "post", {"email": "c@x.example"})).status_code
        == 200
    )
    assert api.post(f"{privacy}/erase", {"affiliate": "aff_nope"}).status_code == 404
    assert api.post(f"{privacy}/erase", {}).status_code == 400
    assert api.get("/api/v1/openapi.json").status_code == 200
    assert api.get("/api/v1/docs").status_code == 200
    _exercise_webhooks(api)


def _exercise_webhooks(api):
    from django.utils import timezone

    from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

    endpoints = "/api/v1/webhook-endpoints"
    body = _valid(endpoints, "post", {"url": "https://93.184.215.14/hook", "events": ["commission.created"]})
    created = api.post(endpoints, body)
    assert created.status_code == 201
    assert (
        api.post(endpoints, {"url": "http://127.0.0.1/hook", "events": ["commission.created"]}).status_code
        == 400
    )
    assert api.get(endpoints).status_code == 200
    assert api.get(endpoints + "?limit=0").status_code == 400
    one = f"{endpoints}/{created.json()['id']}"
    assert api.get(one).status_code == 200
    assert api.get(f"{endpoints}/we_nope").status_code == 404
    assert (
        api.patch(one, _valid("/api/v1/webhook-endpoints/{id}", "patch", {"description": "CRM"})).status_code
        == 200
    )
    assert api.patch(one, {"events": []}).status_code == 400
    assert api.post(f"{one}/rotate-secret").status_code == 200
    assert api.post(f"{endpoints}/we_nope/rotate-secret").status_code == 404
    deliveries = "/api/v1/webhook-deliveries"
    assert api.get(deliveries).status_code == 200
    assert api.get(deliveries + "?status=nope").status_code == 400
    message = WebhookMessage.objects.create(
        endpoint=WebhookEndpoint.objects.get(),
        event_type="webhook.test",
        object_id="x",
        payload={},
        created_at=timezone.now(),
    )
    attempt = WebhookDelivery.objects.create(
        message=message, endpoint=message.endpoint, attempt=1, status="failed", attempted_at=timezone.now()
    )
    assert api.post(f"{deliveries}/{attempt.public_id}/retry").status_code == 202
    assert api.post(f"{deliveries}/whd_nope/retry").status_code == 404
    assert api.delete(one).status_code == 200
    assert api.delete(one).status_code == 404


def test_an_answer_the_document_does_not_list_fails_the_check():
    with pytest.raises(AssertionError, match="status 418 not in the document"):
        contract.check("get", "/api/v1/commissions", 418, "application/json", b"{}")
    with pytest.raises(AssertionError, match="path not in"):
        contract.check("get", "/api/v1/nowhere", 200, "application/json", b"{}")
    with pytest.raises(AssertionError, match="method not in the document"):
        contract.check("put", "/api/v1/commissions", 200, "application/json", b"{}")
    with pytest.raises(AssertionError, match="does not match"):
        contract.check("get", "/api/v1/commissions", 200, "application/json", b'{"data": [{"id": 1}]}')
    with pytest.raises(AssertionError, match="does not match"):
        contract.check("post", "/api/v1/events", 500, "application/json", b'{"detail": "oops"}')
