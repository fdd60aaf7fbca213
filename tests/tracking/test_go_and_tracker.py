import gzip
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import AffiliateFactory
from tracking.models import Click

pytestmark = pytest.mark.django_db

UA = {"HTTP_USER_AGENT": "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15"}


def test_go_records_click_and_redirects_with_visitor(client, affiliate):
    response = client.get("/go/acme/JOHN/pricing/annual?utm_source=yt&sub_id=v1", **UA)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "acme.example", "/pricing/annual")
    query = parse_qs(location.query)
    assert query["ref"] == ["JOHN"] and query["utm_source"] == ["yt"]
    row = Click.objects.get()
    assert row.visitor_id == query["refapp_vid"][0] and row.source == "link" and row.sub_id == "v1"
    assert response["Cache-Control"] == "no-store"


def test_go_without_path_lands_on_website(client, affiliate):
    response = client.get("/go/acme/john", **UA)
    assert response["Location"].startswith("https://acme.example/?")


def test_go_unknown_code_still_lands_without_click(client, program):
    AffiliateFactory(program=program, code="GONE", status="rejected")
    for code in ("NOPE", "GONE"):
        response = client.get(f"/go/acme/{code}", **UA)
        assert response.status_code == 302 and "ref=" not in response["Location"]
    assert Click.objects.count() == 0


def test_go_unknown_program_is_404(client, db):
    assert client.get("/go/nope/JOHN", **UA).status_code == 404


def test_go_over_the_rate_limit_redirects_without_click(client, affiliate, settings):
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "go": 2}
    assert [client.get("/go/acme/JOHN", **UA).status_code for _ in range(3)] == [302, 302, 302]
    assert Click.objects.count() == 2


def test_go_bot_redirects_without_click(client, affiliate):
    assert client.get("/go/acme/JOHN", HTTP_USER_AGENT="Twitterbot/1.0").status_code == 302
    assert Click.objects.count() == 0


def test_tracker_is_small_minified_and_cacheable(client, db):
    from refapp.tracker import tracker_bundle, tracker_url

    response = client.get("/t.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "max-age=3600" in response["Cache-Control"]
    body = response.content
    assert len(gzip.compress(body)) < 2048
    assert b"refapp_vid" in body and b"/api/v1/track/click" in body
    digest = tracker_bundle()[1]
    versioned = client.get(f"/t.js?v={digest}")
    assert "immutable" in versioned["Cache-Control"]
    assert tracker_url().endswith(f"/t.js?v={digest}")
    assert client.get("/t.js", HTTP_IF_NONE_MATCH=f'"{digest}"').status_code == 304
