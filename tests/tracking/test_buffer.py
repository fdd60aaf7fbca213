"""The Redis click buffer: accepted clicks land exactly once, across drainer crashes and Redis restarts."""

import json

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tracking import buffer
from tracking.models import Click

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs Redis (REDIS_URL)"),
]

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


def test_clicks_wait_in_redis_until_drained(buffered, post_clicks):
    post_clicks(7)
    assert Click.objects.count() == 0 and buffer.pending() == 7
    assert buffer.drain(batch=3) == 7
    assert buffer.pending() == 0
    rows = list(Click.objects.order_by("pk"))
    assert [c.visitor_id for c in rows] == [f"visitor-{i:04d}" for i in range(7)]
    assert rows[0].utm_source == "s" and rows[0].ip_hash and rows[0].created_at.tzinfo is not None


def test_a_drainer_that_died_before_trimming_stores_nothing_twice(buffered, post_clicks):
    post_clicks(5)
    items = buffered.lrange(buffer.LIST_KEY, 0, -1)
    assert buffer.drain() == 5
    buffered.rpush(buffer.LIST_KEY, *items)  # as if the trim after the commit never happened
    post_clicks(2, start=5)
    assert buffer.drain() == 2
    assert Click.objects.count() == 7 and buffer.pending() == 0


def test_a_redis_that_lost_its_data_starts_a_new_epoch(buffered, post_clicks):
    post_clicks(3)
    buffer.drain()
    buffered.delete(buffer.SEQ_KEY, buffer.EPOCH_KEY)  # a restarted Redis without persistence
    post_clicks(2, start=3)  # sequence numbers start at 1 again
    assert buffer.drain() == 2
    assert Click.objects.count() == 5


def test_go_links_are_buffered_too(buffered, client):
    client.get("/go/acme/JOHN", HTTP_USER_AGENT=UA)
    assert buffer.pending() == 1 and buffer.drain() == 1 and Click.objects.get().source == "link"


def test_buffered_go_links_respect_the_rate_limit(buffered, client, settings):
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "go": 2}
    assert [client.get("/go/acme/JOHN", HTTP_USER_AGENT=UA).status_code for _ in range(3)] == [302] * 3
    assert buffer.pending() == 2


def test_drain_task_is_a_no_op_when_off(settings, db):
    from tracking.tasks import drain_click_buffer

    settings.REFAPP_CLICK_BUFFER = False
    assert drain_click_buffer.apply().result == 0


def test_the_rate_limit_counts_in_the_same_round_trip_as_the_push(buffered, settings):
    """Valid and invalid requests share the sender's window; a click over the limit is not stored."""
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "click": 3}
    client = Client()

    def send(body, ip="203.0.113.9"):
        return client.post(
            "/api/v1/track/click",
            data=json.dumps(body),
            content_type="text/plain",
            HTTP_USER_AGENT=UA,
            REMOTE_ADDR=ip,
        ).status_code

    good = {"program": "acme", "ref": "JOHN", "visitor_id": "visitor-rl-1"}
    assert [send(good), send({"program": "acme"}), send(good), send(good), send({"ref": "x"})] == [
        202,
        400,
        202,
        429,
        429,
    ]
    assert send(good, ip="198.51.100.4") == 202  # another address has its own window
    assert buffer.pending() == 3
    assert buffer.drain() == 3 and Click.objects.count() == 3


def test_the_push_survives_a_flushed_script_cache_and_a_dropped_connection(buffered, post_clicks):
    """A restarted Redis forgets loaded scripts and closes every connection: the next click after
    either is stored once, on a new connection, without an error."""
    post_clicks(1)
    buffered.script_flush()
    post_clicks(1, start=1)
    buffered.client_kill_filter(_type="normal", skipme=True)  # every client but this one
    post_clicks(1, start=2)
    assert buffer.pending() == 3
    assert buffer.drain() == 3
    assert sorted(Click.objects.values_list("visitor_id", flat=True)) == [
        "visitor-0000",
        "visitor-0001",
        "visitor-0002",
    ]


def test_the_push_connection_follows_the_configured_redis(buffered, settings):
    first = buffer._push_connection()
    assert buffer._push_connection() is first
    base, _, db = settings.REDIS_URL.rpartition("/")
    settings.REDIS_URL = f"{base}/{14 if db == '15' else 15}"  # another database than the suite's own
    assert buffer._push_connection() is not first
