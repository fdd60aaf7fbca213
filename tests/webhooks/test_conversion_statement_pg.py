"""On PostgreSQL a conversion's webhook messages are written by the conversion's own statement.

commissions/ingest_pg.py lands a conversion in one INSERT statement; with an endpoint listening,
the messages are rows of that same statement (refapp.models.audit_rows), not a transaction with an
endpoint read and an INSERT per message around it. The statement writes a message only if its
endpoint is still active, whatever this process's cached answer (webhooks/watch.py) says.
"""

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commissions import ingest_pg
from webhooks import watch
from webhooks.models import WebhookEndpoint, WebhookMessage

from .helpers import make_endpoint

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the one-statement writer is PostgreSQL's",
    ),
]


@pytest.fixture
def sql_path(settings):
    settings.REFAPP_EVENT_SQL_PATH = True
    watch.forget_all()
    yield
    watch.forget_all()


def _sale(order_id):
    return {"event": "sale", "order_id": order_id, "referral_code": "JOHN", "amount_cents": 5000}


@pytest.fixture
def statements(monkeypatch):
    """Every statement the conversion runs: the ORM's and the libpq ones of ingest_pg."""
    direct = []
    run = ingest_pg._run

    def counted(db, sql, params):
        direct.append(sql)
        return run(db, sql, params)

    monkeypatch.setattr(ingest_pg, "_run", counted)
    return direct


def test_the_messages_are_written_by_the_conversions_statement(
    api_client,
    program,
    affiliate,
    sale_rule,
    receiver,
    sql_path,
    statements,
    django_capture_on_commit_callbacks,
):
    endpoint = make_endpoint(program, receiver.url, events=["conversion.created", "commission.created"])
    assert api_client.post("/api/v1/events", _sale("warm-up")).status_code == 201  # caches filled
    WebhookMessage.objects.all().delete()
    statements.clear()

    with django_capture_on_commit_callbacks() as queued, CaptureQueriesContext(connection) as orm:
        answer = api_client.post("/api/v1/events", _sale("O-1"))
    assert answer.status_code == 201
    body = answer.json()
    # The attribution read and the one write; no endpoint read or message INSERT of its own.
    assert len(statements) == 2 and "webhooks_webhookmessage" in statements[1]
    assert [q["sql"] for q in orm.captured_queries if "webhook" in q["sql"]] == []
    for callback in queued:
        callback()

    messages = {m.event_type: m for m in WebhookMessage.objects.filter(endpoint=endpoint)}
    assert sorted(messages) == ["commission.created", "conversion.created"]
    assert messages["conversion.created"].payload["data"] == body
    assert messages["conversion.created"].object_id == body["id"]
    commission = messages["commission.created"].payload
    assert (
        commission["data"]["id"] == body["commissions"][0]["id"] and commission["data"]["order_id"] == "O-1"
    )
    assert (
        commission["id"] == messages["commission.created"].public_id
        and commission["type"] == "commission.created"
    )
    # Both were queued once written: the receiver has each, with its message's id.
    got = sorted(headers["webhook-id"] for headers, _body in receiver.requests)
    assert got == sorted(m.public_id for m in messages.values())
    assert all(m.status == "delivered" for m in WebhookMessage.objects.all())


def test_a_new_referral_is_announced_from_the_same_statement(
    api_client, program, affiliate, sale_rule, sql_path, settings, statements
):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    make_endpoint(program, "http://127.0.0.1:9/r", events=["referral.created"])
    sale = _sale("O-1") | {"customer_id": "cus_1"}
    body = api_client.post("/api/v1/events", sale).json()
    (message,) = WebhookMessage.objects.all()
    assert message.event_type == "referral.created"
    data = message.payload["data"]
    assert data["id"] == body["referral"] and data["customer_id"] == "cus_1"
    assert data["affiliate"] == affiliate.public_id and data["livemode"] is True
    assert len(statements) == 2


@pytest.mark.parametrize("change", ["switched off", "deleted"])
def test_an_endpoint_gone_since_the_cached_answer_gets_nothing(
    api_client, program, affiliate, sale_rule, sql_path, settings, change
):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = make_endpoint(program, "http://127.0.0.1:9/gone", events=["commission.created"])
    assert api_client.post("/api/v1/events", _sale("warm-up")).status_code == 201
    assert WebhookMessage.objects.count() == 1
    # Another process changes the endpoint: this one's answer is still the cached one.
    if change == "deleted":
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    else:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    assert [e.id for e in watch.program_endpoints(program.pk)] == [endpoint.pk]

    answer = api_client.post("/api/v1/events", _sale("O-1"))
    assert answer.status_code == 201 and answer.json()["commissions"]
    assert WebhookMessage.objects.filter(object_id=answer.json()["commissions"][0]["id"]).count() == 0


def test_an_endpoint_of_the_other_mode_or_other_events_gets_nothing(
    api_client, program, affiliate, sale_rule, sql_path, settings
):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    live = make_endpoint(program, "http://127.0.0.1:9/live", events=["commission.created"])
    make_endpoint(program, "http://127.0.0.1:9/test", events=["commission.created"], livemode=False)
    make_endpoint(program, "http://127.0.0.1:9/other", events=["payout.paid"])
    assert api_client.post("/api/v1/events", _sale("O-1")).status_code == 201
    assert [(m.endpoint_id, m.event_type) for m in WebhookMessage.objects.all()] == [
        (live.pk, "commission.created")
    ]
