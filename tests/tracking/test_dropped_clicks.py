"""Refused clicks are counted per program, day and reason, and the panel's dashboard says so."""

import json

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from affiliates.models import ProgramStaff
from tests.helpers import staff_client_with_role
from tracking import buffer, services
from tracking.models import Click, DroppedClickDaily

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
BODY = {"program": "acme", "ref": "JOHN", "visitor_id": "visitor-0001", "url": "https://acme.example/"}


def click(client, *, ua=UA, origin=None, ip="203.0.113.57", **extra):
    headers = {"HTTP_USER_AGENT": ua, "REMOTE_ADDR": ip, **({"HTTP_ORIGIN": origin} if origin else {})}
    data = json.dumps({**BODY, **extra})
    return client.post("/api/v1/track/click", data=data, content_type="text/plain", **headers)


def dropped() -> dict[str, int]:
    return {row.reason: row.count for row in DroppedClickDaily.objects.all()}


def refuse_some(client, program, settings):
    """Two bots, one disallowed origin and two clicks over the rate limit; one click accepted."""
    assert click(client, ua="curl/8.1").json()["attributed"] is False
    assert click(client, ua="Mozilla/5.0 HeadlessChrome/120").json()["attributed"] is False
    program.allowed_origins = ["https://acme.example"]
    program.save()
    assert click(client, origin="https://evil.example").status_code == 403
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "click": 4}
    statuses = [click(client, ip="198.51.100.9").status_code for _ in range(6)]
    assert statuses == [202] * 4 + [429, 429]


def test_refused_clicks_are_counted_by_reason(client, affiliate, program, settings):
    refuse_some(client, program, settings)
    assert dropped() == {"bot": 2, "origin": 1, "rate_limit": 2}
    row = DroppedClickDaily.objects.first()
    assert row.program == program and DroppedClickDaily.objects.count() == 3  # one row per reason and day
    assert Click.objects.count() == 4  # the accepted ones only


def test_unknown_codes_and_programs_are_not_dropped_clicks(client, affiliate):
    assert click(client, ref="NOPE").json()["attributed"] is False
    assert click(client, program="nope").status_code == 404
    assert dropped() == {}


def test_counting_a_drop_is_one_statement_and_an_accepted_click_pays_nothing(client, affiliate):
    with CaptureQueriesContext(connection) as accepted:
        assert click(client).json()["attributed"] is True
    assert not [q for q in accepted.captured_queries if "droppedclick" in q["sql"].lower()]
    click(client, ua="curl/8.1")
    with CaptureQueriesContext(connection) as refused:
        click(client, ua="curl/8.1")
    writes = [q for q in refused.captured_queries if "droppedclick" in q["sql"].lower()]
    assert len(writes) == 1 and "ON CONFLICT" in writes[0]["sql"]
    assert dropped() == {"bot": 2}


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
def test_buffered_mode_counts_in_redis_and_the_drain_folds_them_in(client, affiliate, program, settings):
    from tracking.tasks import drain_click_buffer

    settings.REFAPP_CLICK_BUFFER = True
    redis_conn = buffer.client()
    keys = (
        buffer.LIST_KEY,
        buffer.SEQ_KEY,
        buffer.EPOCH_KEY,
        services.DROPPED_KEY,
        services.DROPPED_FOLDING_KEY,
    )
    redis_conn.delete(*keys)
    try:
        refuse_some(client, program, settings)
        assert dropped() == {}  # waiting in Redis
        drain_click_buffer()
        assert dropped() == {"bot": 2, "origin": 1, "rate_limit": 2}
        click(client, ua="curl/8.1")
        drain_click_buffer()
        drain_click_buffer()  # nothing new: counts nothing twice
        assert dropped() == {"bot": 3, "origin": 1, "rate_limit": 2}
        assert Click.objects.count() == 4
    finally:
        redis_conn.delete(*keys)


def test_dashboard_shows_the_dropped_clicks_of_the_range(client, affiliate, program, settings, staff_client):
    assert "dropped in this range" not in staff_client.get("/panel/p/acme/").text
    refuse_some(client, program, settings)
    page = staff_client.get("/panel/p/acme/")
    assert "5 clicks dropped in this range: bots 2, rate limit 2, origin 1." in " ".join(page.text.split())
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    assert "5 clicks dropped" in viewer.get("/panel/p/acme/").text
    older = staff_client.get("/panel/p/acme/?range=custom&start=2020-01-01&end=2020-01-31")
    assert "dropped in this range" not in older.text
