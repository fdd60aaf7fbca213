"""Panel webhooks pages: writers change, viewers see, outsiders and anonymous users get nothing."""

import pytest
from django.urls import reverse

from affiliates.models import ProgramStaff
from refapp.models import AuditLog
from tests.helpers import staff_client_with_role
from tests.webhooks.helpers import make_endpoint
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(program, settings):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    return make_endpoint(program, "http://127.0.0.1:9/hook", events=["commission.created"])


@pytest.fixture
def delivery(endpoint):
    from webhooks.outbox import test_message_create

    message = test_message_create(endpoint=endpoint, now=endpoint.created_at)
    WebhookMessage.objects.filter(pk=message.pk).update(status="failed")
    return WebhookDelivery.objects.create(
        message=message,
        endpoint=endpoint,
        attempt=1,
        status="failed",
        response_code=502,
        duration_ms=12,
        response_body="<h1>Bad gateway</h1>",
        attempted_at=endpoint.created_at,
    )


@pytest.fixture
def viewer_client(program):
    return staff_client_with_role(program, ProgramStaff.Role.VIEWER)


def _url(name, program, *args):
    return reverse(f"panel:{name}", args=[program.slug, *args])


def test_the_list_and_the_delivery_log_show_to_staff_and_viewers(
    staff_client, viewer_client, program, endpoint, delivery
):
    for client in (staff_client, viewer_client):
        assert endpoint.url in client.get(_url("webhook-list", program)).content.decode()
        page = client.get(_url("webhook-detail", program, endpoint.public_id)).content.decode()
        assert "Bad gateway" in page and "502" in page and "12 ms" in page
        assert endpoint.secret not in page
    assert (
        "Send test event"
        in staff_client.get(_url("webhook-detail", program, endpoint.public_id)).content.decode()
    )
    assert (
        "Send test event"
        not in viewer_client.get(_url("webhook-detail", program, endpoint.public_id)).content.decode()
    )


def test_create_shows_the_secret_once_and_refuses_private_targets(staff_client, program, settings):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = False
    form = {"url": "http://169.254.169.254/", "events": ["payout.paid"], "livemode": "live"}
    refused = staff_client.post(_url("webhook-create", program), form)
    assert refused.status_code == 200 and "private" in refused.content.decode()
    assert not WebhookEndpoint.objects.exists()
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    created = staff_client.post(_url("webhook-create", program), {**form, "url": "http://127.0.0.1:9/x"})
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in created.content.decode() and endpoint.livemode
    assert (
        endpoint.secret
        not in staff_client.get(_url("webhook-detail", program, endpoint.public_id)).content.decode()
    )
    assert AuditLog.objects.filter(action="webhook_endpoint.created").count() == 1


def test_writers_edit_rotate_test_replay_and_delete(staff_client, program, endpoint, delivery):
    edit = staff_client.post(
        _url("webhook-edit", program, endpoint.public_id),
        {"url": "http://127.0.0.1:9/new", "events": ["payout.paid"], "description": "ERP"},
    )
    assert edit.status_code == 302
    endpoint.refresh_from_db()
    assert (
        endpoint.url == "http://127.0.0.1:9/new"
        and endpoint.events == ["payout.paid"]
        and not endpoint.is_active
    )
    old = endpoint.secret
    rotated = staff_client.post(_url("webhook-rotate", program, endpoint.public_id))
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in rotated.content.decode()
    assert staff_client.post(_url("webhook-test", program, endpoint.public_id)).status_code == 302
    assert WebhookMessage.objects.filter(event_type="webhook.test").count() == 2
    replay = staff_client.post(
        _url("webhook-replay-failed", program, endpoint.public_id), {"since": "2000-01-01T00:00"}
    )
    assert replay.status_code == 302
    assert WebhookMessage.objects.get(pk=delivery.message_id).status == "pending"
    bad = staff_client.post(
        _url("webhook-replay-failed", program, endpoint.public_id), {"since": "yesterday"}
    )
    assert bad.status_code == 400
    assert staff_client.post(_url("webhook-delete", program, endpoint.public_id)).status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_viewers_outsiders_and_anonymous_cannot_change_anything(
    viewer_client, other_staff_client, client, program, endpoint, delivery
):
    posts = [
        (
            _url("webhook-create", program),
            {"url": "http://127.0.0.1:9/x", "events": ["payout.paid"], "livemode": "live"},
        ),
        (
            _url("webhook-edit", program, endpoint.public_id),
            {"url": "http://127.0.0.1:9/y", "events": ["payout.paid"]},
        ),
        (_url("webhook-rotate", program, endpoint.public_id), {}),
        (_url("webhook-test", program, endpoint.public_id), {}),
        (_url("webhook-delivery-replay", program, endpoint.public_id, delivery.public_id), {}),
        (_url("webhook-replay-failed", program, endpoint.public_id), {"since": "2000-01-01T00:00"}),
        (_url("webhook-delete", program, endpoint.public_id), {}),
    ]
    secret, messages = endpoint.secret, WebhookMessage.objects.count()
    for url, body in posts:
        assert viewer_client.post(url, body).status_code == 404, url
        assert other_staff_client.post(url, body).status_code == 404, url
        assert client.post(url, body).status_code == 302, url  # to the login page
    for name, args in (("webhook-list", []), ("webhook-detail", [endpoint.public_id])):
        assert other_staff_client.get(_url(name, program, *args)).status_code == 404
    endpoint.refresh_from_db()
    assert endpoint.secret == secret and endpoint.url == "http://127.0.0.1:9/hook" and endpoint.is_active
    assert WebhookMessage.objects.count() == messages
    assert WebhookMessage.objects.get(pk=delivery.message_id).status == "failed"
