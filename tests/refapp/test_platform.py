import re

import pytest
from django.core.management import call_command
from django.urls import get_resolver

from affiliates.models import ApiKey, Program
from affiliates.services import hash_secret
from refapp import money


def _routes(patterns, prefix=""):
    """Every route of the URLconf as its full pattern text, included URLconfs walked too."""
    for pattern in patterns:
        text = prefix + str(pattern.pattern)
        if hasattr(pattern, "url_patterns"):
            yield from _routes(pattern.url_patterns, text)
        else:
            yield text


def test_openapi_describes_every_api_route(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    routes = set()
    for text in _routes(get_resolver().url_patterns):
        if text.startswith("api/v1/"):
            routes.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", "{id}", text))
    assert routes and routes <= set(doc["paths"]), routes - set(doc["paths"])
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"/api/v1/events" in docs.content


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    redis = {"redis": "ok"} if settings.REDIS_URL else {}  # reported when there is a Redis to reach
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", **redis}


@pytest.mark.django_db
def test_createprogram_prints_keys_once_and_stores_hashes(capsys):
    call_command(
        "createprogram",
        "--name",
        "Acme",
        "--slug",
        "acme",
        "--website",
        "https://acme.example",
        "--currency",
        "eur",
        "--hold-days",
        "14",
    )
    out = capsys.readouterr().out
    live = re.search(r"live: (sk_live_\S+)", out).group(1)
    test = re.search(r"test: (sk_test_\S+)", out).group(1)
    program = Program.objects.get(slug="acme")
    assert (program.currency, program.hold_days, program.cookie_days) == ("EUR", 14, 30)
    assert set(ApiKey.objects.values_list("key_hash", flat=True)) == {hash_secret(live), hash_secret(test)}
    assert not ApiKey.objects.filter(key_hash__in=[live, test]).exists()
    assert 'data-program="acme"' in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"), [(["--currency", "ZZZ"], "currency"), (["--website", "not a url"], "website")]
)
def test_createprogram_rejects_bad_input(args, message):
    from django.core.management.base import CommandError

    base = {"--name": "Acme", "--slug": "acme", "--website": "https://acme.example"}
    argv = [x for k, v in base.items() if k not in args for x in (k, v)] + args
    with pytest.raises(CommandError, match=message):
        call_command("createprogram", *argv)
    assert not Program.objects.exists()


@pytest.mark.django_db
def test_createprogram_duplicate_slug():
    from django.core.management.base import CommandError

    call_command("createprogram", "--name", "A", "--slug", "acme", "--website", "https://acme.example")
    with pytest.raises(CommandError, match="already exists"):
        call_command("createprogram", "--name", "B", "--slug", "acme", "--website", "https://b.example")


def test_money_parsing_and_formatting():
    assert money.parse_amount("99.00", "USD") == 9900
    assert money.parse_amount("1500", "JPY") == 1500
    assert money.parse_amount("1.234", "KWD") == 1234
    with pytest.raises(money.MoneyError):
        money.parse_amount("1.5", "JPY")
    with pytest.raises(money.MoneyError):
        money.parse_amount("1e5", "USD")
    assert money.format_amount(123456, "USD") == "1,234.56 USD"
    assert money.format_amount(-500, "EUR") == "-5.00 EUR"
    assert not money.is_currency("XXZ")


def test_security_headers_on_pages(client, db):
    response = client.get("/api/v1/docs")
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_beat_schedule_lives_in_code():
    from refapp.celery import app

    schedule = app.conf.beat_schedule
    assert {
        "approve-due-commissions",
        "run-due-payouts",
        "refresh-click-rollups",
        "resume-processing-payouts",
        "approval-digests",
        "fold-conversion-rollups",
    } <= set(schedule)
    app.loader.import_default_modules()
    assert all(entry["task"] in app.tasks for entry in schedule.values())
    assert str(schedule["run-due-payouts"]["schedule"]) == "<crontab: 0 6 * * * (m/h/dM/MY/d)>"
