import json

import pytest
from django.test import override_settings

from tests.factories import AffiliateFactory
from tracking.models import Click

pytestmark = pytest.mark.django_db

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
)


def click(client, body, origin=None, ua=BROWSER_UA, ip="203.0.113.57", content_type="text/plain"):
    headers = {"HTTP_USER_AGENT": ua, "REMOTE_ADDR": ip}
    if origin:
        headers["HTTP_ORIGIN"] = origin
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/v1/track/click", data=data, content_type=content_type, **headers)


def body(**extra):
    return {
        "program": "acme",
        "ref": "JOHN",
        "visitor_id": "visitor-0001",
        "url": "https://acme.example/pricing?ref=JOHN&utm_source=news&utm_campaign=launch&sub_id=s7",
        "referrer": "https://blog.example/post",
        **extra,
    }


def test_click_is_recorded_with_its_details(client, affiliate):
    response = click(client, body(), origin="https://acme.example")
    assert response.status_code == 202
    assert response.json() == {"visitor_id": "visitor-0001", "attributed": True}
    assert response["Access-Control-Allow-Origin"] == "https://acme.example"
    row = Click.objects.get()
    assert row.affiliate == affiliate and row.visitor_id == "visitor-0001"
    assert (row.utm_source, row.utm_campaign, row.sub_id) == ("news", "launch", "s7")
    assert row.referrer == "https://blog.example/post" and row.user_agent == BROWSER_UA


def test_ip_is_stored_only_truncated_and_hashed(client, affiliate):
    click(client, body())
    row = Click.objects.get()
    assert row.ip_prefix == "203.0.113.0/24"
    assert len(row.ip_hash) == 64 and "203.0.113.57" not in json.dumps(
        list(Click.objects.values()), default=str
    )


def test_ipv6_is_truncated_to_48(client, affiliate):
    click(client, body(), ip="2001:db8:abcd:12:1:2:3:4")
    assert Click.objects.get().ip_prefix == "2001:db8:abcd::/48"


def test_missing_visitor_id_gets_a_new_one(client, affiliate):
    response = click(client, body(visitor_id=None))
    visitor = response.json()["visitor_id"]
    assert len(visitor) >= 16 and Click.objects.get().visitor_id == visitor


def test_code_is_case_insensitive(client, affiliate):
    assert click(client, body(ref="john")).json()["attributed"] is True


def test_unknown_or_inactive_code_records_nothing(client, affiliate, program):
    AffiliateFactory(program=program, code="SLEEPY", status="suspended")
    for code in ("NOBODY", "SLEEPY"):
        response = click(client, body(ref=code))
        assert response.status_code == 202 and response.json()["attributed"] is False
    assert Click.objects.count() == 0


@pytest.mark.parametrize(
    "ua",
    ["Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.1", "", "Mozilla/5.0 HeadlessChrome/120"],
)
def test_bots_are_not_counted(client, affiliate, ua):
    response = click(client, body(), ua=ua)
    assert response.status_code == 202 and response.json()["attributed"] is False
    assert Click.objects.count() == 0


def test_unknown_program_is_404(client, affiliate):
    response = click(client, body(program="nope"))
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_program"


def test_cors_limited_to_configured_origins(client, affiliate, program):
    program.allowed_origins = ["https://acme.example"]
    program.save()
    denied = click(client, body(), origin="https://evil.example")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" in denied  # so the browser can read why
    allowed = click(client, body(), origin="https://acme.example")
    assert allowed.status_code == 202
    assert Click.objects.count() == 1


def test_preflight_answers_cors(client, program):
    response = client.options("/api/v1/track/click", HTTP_ORIGIN="https://acme.example")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://acme.example"
    assert "POST" in response["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ref": "JOHN"}, "program"),
        ({"program": "acme"}, "ref"),
        (body(visitor_id="no spaces!"), "visitor_id"),
        (body(program=5), "program"),
    ],
)
def test_invalid_click_is_400(client, affiliate, payload, field):
    response = click(client, payload)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert Click.objects.count() == 0


def test_malformed_and_oversized_clicks(client, affiliate):
    assert click(client, "{oops").json()["error"]["code"] == "malformed_json"
    response = click(client, body(url="x" * 70_000))
    assert response.status_code == 413
    assert Click.objects.count() == 0


def test_get_is_405(client):
    assert client.get("/api/v1/track/click").status_code == 405


def test_rate_limited_per_ip(client, affiliate, settings):
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "click": 3}
    statuses = [click(client, body()).status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    assert click(client, body(), ip="198.51.100.1").status_code == 202  # another address is unaffected
    assert Click.objects.count() == 4


@override_settings(REFAPP_TRUST_X_FORWARDED_FOR=True)
def test_forwarded_for_used_only_when_trusted(client, affiliate):
    client.post(
        "/api/v1/track/click",
        data=json.dumps(body()),
        content_type="text/plain",
        HTTP_USER_AGENT=BROWSER_UA,
        HTTP_X_FORWARDED_FOR="198.51.100.7, 10.0.0.1",
    )
    assert Click.objects.get().ip_prefix == "198.51.100.0/24"
