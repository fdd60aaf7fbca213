"""The input gate (docs/architecture.md, "Security"; issue 15 finding 3): bad input answers 400, never 500.

NUL characters and unpaired surrogates in any JSON string or key, in a query string, a path or a
form; JSON nested 20,000 deep; numbers no column holds; impossible timestamps. API paths answer
the JSON error shape, through the fast path and through Django's views alike; pages answer a
plain 400. Every /api/v1/ answer here is also held to the OpenAPI document by the test client.
"""

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

NUL = "a\x00b"
SURROGATE = "a\ud800b"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


@pytest.fixture(params=["fast path", "django"])
def fast_path(request, settings):
    """The click and events endpoints, answered before Django and by Django's views."""
    settings.REFAPP_CLICK_FAST_PATH = settings.REFAPP_EVENTS_FAST_PATH = request.param == "fast path"
    return request.param


def _json_400(response, field=None):
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "invalid_request", error
    if field:
        assert field in error["fields"], error
    return error


def _bodies(value):
    """A JSON body per endpoint with `value` in a string field each endpoint stores or looks up."""
    return [
        ("post", "/api/v1/track/click", {"program": "acme", "ref": "JOHN", "url": value}, "url"),
        ("post", "/api/v1/events", {"event": "sale", "order_id": value, "amount_cents": 100}, "order_id"),
        ("post", "/api/v1/refunds", {"order_id": value}, "order_id"),
        ("post", "/api/v1/affiliates", {"email": "n@x.example", "name": value}, "name"),
        ("post", "/api/v1/commission-rules", {"event": value, "type": "fixed", "amount_cents": 1}, "event"),
    ]


@pytest.mark.parametrize("value", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
def test_nul_and_lone_surrogate_in_every_json_endpoint(api_client, affiliate, fast_path, value):
    for method, path, body, field in _bodies(value):
        response = getattr(api_client, method)(path, body, HTTP_USER_AGENT=UA)
        _json_400(response, field)
    response = api_client.patch(f"/api/v1/affiliates/{affiliate.public_id}", {"reason": value})
    _json_400(response, "reason")


@pytest.mark.parametrize("value", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
def test_nul_and_lone_surrogate_in_a_key(api_client, affiliate, fast_path, value):
    for method, path, body, _ in _bodies("fine"):
        _json_400(getattr(api_client, method)(path, {**body, value: 1}, HTTP_USER_AGENT=UA))
    sale = {"event": "sale", "order_id": "K-1", "metadata": {value: "x"}}
    _json_400(api_client.post("/api/v1/events", sale), "metadata")


def test_surrogate_encoded_as_utf8_bytes_is_malformed(api_client, affiliate, fast_path):
    raw = b'{"event": "sale", "order_id": "\xed\xa0\x80"}'
    response = api_client.post("/api/v1/events", raw)
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"


def test_a_paired_surrogate_escape_is_fine(api_client, affiliate, fast_path):
    body = {"event": "sale", "order_id": "EMOJI-\U0001f600", "amount_cents": 100}
    assert api_client.post("/api/v1/events", body).status_code == 201


@pytest.mark.parametrize("depth", [33, 20_000])
def test_deep_nesting_answers_400(api_client, affiliate, fast_path, depth):
    nested = "[" * depth + "]" * depth
    for method, path, body, _ in _bodies("x"):
        raw = json.dumps(body)[:-1] + ', "deep": ' + nested + "}"
        _json_400(getattr(api_client, method)(path, raw.encode(), HTTP_USER_AGENT=UA))


def test_nesting_within_the_limit_is_parsed(api_client, affiliate, fast_path):
    # 32 levels counting the body object itself: the endpoint's own validation answers.
    raw = '{"event": "sale", "order_id": "D-1", "metadata": ' + "[" * 30 + "]" * 30 + "}"
    _json_400(api_client.post("/api/v1/events", raw.encode()), "metadata")


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "fixed", "amount_cents": 9223372036854775808}',
        '{"type": "fixed", "amount_cents": 1, "tiers": [{"min_cents": -9223372036854775809, "rate_bp": 1}]}',
        '{"type": "percent", "rate_bp": 1e400}',
        '{"type": "percent", "rate_bp": NaN}',
    ],
    ids=["above-bigint", "below-bigint", "infinite", "nan"],
)
def test_numbers_no_column_holds_answer_400(api_client, raw):
    _json_400(api_client.post("/api/v1/commission-rules", raw.encode()))


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-02-30T10:00:00Z",
        "2026-01-01T10:99:00Z",
        "2026-01-01T25:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1999-12-31T23:59:59Z",
        "2026-01-01T10:00:00",
        "2026-01-01T10:00:00\x00Z",
    ],
    ids=["feb-30", "minute-99", "hour-25", "year-1-east", "year-9999-west", "year-1999", "naive", "nul"],
)
def test_impossible_or_out_of_range_occurred_at_is_a_field_error(
    api_client, affiliate, fast_path, occurred_at
):
    sale = {"event": "sale", "order_id": "T-1", "amount_cents": 100, "occurred_at": occurred_at}
    _json_400(api_client.post("/api/v1/events", sale), "occurred_at")


def test_a_real_occurred_at_in_another_zone_is_stored_in_utc(api_client, affiliate, fast_path):
    from commissions.models import Event

    sale = {
        "event": "sale",
        "order_id": "T-2",
        "amount_cents": 100,
        "occurred_at": "2026-01-01T09:00:00+14:00",
    }
    with_time = api_client.post("/api/v1/events", sale)
    assert with_time.status_code == 201
    assert Event.objects.get(order_id="T-2").occurred_at.isoformat() == "2025-12-31T19:00:00+00:00"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/commissions?order_id=%00",
        "/api/v1/commissions?affiliate=a%00",
        "/api/v1/affiliates?q=%00",
        "/api/v1/affiliates?%00=1",
        "/api/v1/commission-rules?cursor=%00",
        "/api/v1/affiliates/aff_%00",
        "/api/v1/commission-rules/rule_%00",
    ],
)
def test_nul_in_an_api_query_or_path_answers_json_400(api_client, path):
    _json_400(api_client.get(path))


def test_nul_in_the_query_of_the_fast_path_endpoints(api_client, affiliate, fast_path):
    sale = {"event": "sale", "order_id": "Q-1", "amount_cents": 100}
    _json_400(api_client.post("/api/v1/events?x=%00", sale))
    click = {"program": "acme", "ref": "JOHN"}
    _json_400(api_client.post("/api/v1/track/click?x=%00", click, HTTP_USER_AGENT=UA))


@pytest.mark.parametrize(
    "path",
    ["/go/acme/JOHN/%00", "/go/acme/JOHN/pricing%00x", "/go/acme/JOHN?utm_source=%00", "/go/acme/JOHN?%00=1"],
)
def test_nul_in_a_go_link_answers_a_plain_400(affiliate, path):
    response = Client().get(path, HTTP_USER_AGENT=UA)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


def test_a_go_link_still_redirects(affiliate):
    response = Client().get("/go/acme/JOHN/pricing?utm_source=news", HTTP_USER_AGENT=UA)
    assert response.status_code == 302


def test_nul_in_a_page_query_or_form_answers_a_plain_400(staff_user):
    client = Client()
    for response in (
        client.get("/panel/login/?next=%00"),
        client.post("/panel/login/", {"username": NUL, "password": "x"}),
        client.post("/panel/login/", {NUL: "x"}),
    ):
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/plain")
    assert client.get("/panel/login/").status_code == 200


def test_nul_in_a_webhook_query_answers_json(db):
    response = Client().post("/webhooks/stripe?x=%00", b"{}", content_type="application/json")
    _json_400(response)
