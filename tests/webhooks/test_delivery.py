"""Delivery: nothing for a rolled-back change, at least once after a killed worker, in order per
object, growing retries then giving up (and disabling a dead endpoint), rotation signatures."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from affiliates.models import ProgramStaff
from affiliates.services import affiliate_create, affiliate_set_status
from refapp.models import Actor
from webhooks import delivery, queued
from webhooks.models import WebhookDelivery, WebhookMessage
from webhooks.services import endpoint_rotate_secret
from webhooks.tasks import deliver_message, sweep_due_messages

from .helpers import make_endpoint

pytestmark = pytest.mark.django_db


def _new_affiliate(program, email="ann@partner.example", status="pending"):
    return affiliate_create(
        program=program, email=email, name="Ann", code=None, status=status, group=None, actor=None
    )


def test_a_rolled_back_change_writes_no_message_and_sends_nothing(
    program, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(program, receiver.url)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _new_affiliate(program)
        assert WebhookMessage.objects.count() == 1  # written with the change ...
        raise RuntimeError("the change fails after the service")
    assert WebhookMessage.objects.count() == 0  # ... and rolled back with it
    assert receiver.requests == []


def test_affiliate_events_are_written_in_the_transaction_and_sent_after_commit(
    program, receiver, django_capture_on_commit_callbacks
):
    make_endpoint(
        program, receiver.url, events=["affiliate.created", "affiliate.approved", "affiliate.status_changed"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        ann = _new_affiliate(program)
    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=ann, status="active")
    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=ann, status="suspended", reason="spam")
    types = [WebhookMessage.objects.get(public_id=h["webhook-id"]).event_type for h, _ in receiver.requests]
    assert types == [
        "affiliate.created",
        "affiliate.approved",
        "affiliate.status_changed",
        "affiliate.status_changed",
    ]
    assert (
        WebhookMessage.objects.filter(event_type="affiliate.approved").get().payload["data"]["status"]
        == "active"
    )


def test_a_worker_killed_mid_delivery_is_followed_by_exactly_one_successful_delivery(program, receiver):
    """The worker claims the message (step 1) and dies before recording (step 3): the sweep leaves
    it alone while the lease holds, then sends it once. (A real worker would also have POSTed, so
    the receiver may see the webhook-id twice: at least once, deduped by the id.)"""
    endpoint = make_endpoint(program, receiver.url)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        _new_affiliate(program)  # no on_commit here: the queued task is lost as well
        message = WebhookMessage.objects.get(endpoint=endpoint)
        assert delivery.claim(now=timezone.now(), ids=[message.pk])  # ... and dies
        sweep_due_messages()
        assert receiver.requests == []  # the lease still holds
        clock.shift(delivery.LEASE + timedelta(seconds=1))
        sweep_due_messages()
        sweep_due_messages()
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 1
    message.refresh_from_db()
    assert message.status == "delivered"


def test_messages_of_one_object_go_out_in_order(program, receiver):
    endpoint = make_endpoint(program, receiver.url, events=["affiliate.created", "affiliate.status_changed"])
    receiver.answers = [500]
    with time_machine.travel(timezone.now(), tick=False) as clock:
        ann = _new_affiliate(program)
        affiliate_set_status(affiliate=ann, status="active")
        first, second = WebhookMessage.objects.filter(endpoint=endpoint).order_by("pk")
        deliver_message(first.pk)  # answered 500: retried in 5 s
        deliver_message(second.pk)  # must wait for the first
        assert len(receiver.requests) == 1
        clock.shift(timedelta(seconds=6))
        sweep_due_messages()  # the first goes, then the second behind it
    sent = [h["webhook-id"] for h, _ in receiver.requests]
    assert sent == [first.public_id, first.public_id, second.public_id]


def test_retries_grow_for_about_three_days_then_the_endpoint_is_disabled_and_admins_told(
    program, receiver, staff_user, django_capture_on_commit_callbacks
):
    assert ProgramStaff.objects.filter(user=staff_user, role="admin").exists()
    endpoint = make_endpoint(program, receiver.url)
    receiver.answers = [503] * 100
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        _new_affiliate(program)
        message = WebhookMessage.objects.get()
        waits = []
        for _ in range(delivery.MAX_ATTEMPTS):
            with django_capture_on_commit_callbacks(execute=True):
                deliver_message(message.pk)
            message.refresh_from_db()
            if message.next_attempt_at:
                waits.append(message.next_attempt_at - timezone.now())
                clock.move_to(message.next_attempt_at)
    assert waits == delivery.RETRY_DELAYS
    assert timedelta(days=2.5) < sum(waits, timedelta()) < timedelta(days=3.5)
    assert message.status == "failed" and len(receiver.requests) == delivery.MAX_ATTEMPTS
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "three days" in endpoint.disabled_reason
    assert [m.to for m in mail.outbox] == [[staff_user.email]]
    assert endpoint.url in mail.outbox[0].body


def test_after_a_rotation_both_secrets_sign_for_a_day(program, receiver):
    endpoint = make_endpoint(program, receiver.url)
    old = endpoint.secret
    now = timezone.now()
    endpoint = endpoint_rotate_secret(endpoint=endpoint, actor=Actor.system(), now=now)
    headers = delivery.signed_headers(endpoint=endpoint, message_id="msg_1", body="{}", now=now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    with time_machine.travel(now, tick=False):
        assert Webhook(old).verify("{}", headers) == {}
        assert Webhook(endpoint.secret).verify("{}", headers) == {}
    later = delivery.signed_headers(
        endpoint=endpoint, message_id="msg_1", body="{}", now=now + timedelta(hours=25)
    )
    assert len(later["webhook-signature"].split(" ")) == 1


def test_a_url_that_turned_private_is_refused_at_delivery(program, receiver, settings):
    endpoint = make_endpoint(program, receiver.url)
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = False  # as if the name now resolved to a private address
    _new_affiliate(program)
    deliver_message(WebhookMessage.objects.get(endpoint=endpoint).pk)
    attempt = WebhookDelivery.objects.get()
    assert attempt.status == "failed" and attempt.response_code is None and "private" in attempt.error
    assert receiver.requests == []


def test_a_program_without_endpoints_is_checked_once_from_the_cache(program, django_assert_num_queries):
    from webhooks.watch import program_watched

    assert program_watched(program.pk) is False
    with django_assert_num_queries(0):
        assert program_watched(program.pk) is False


# --- batches -------------------------------------------------------------------------------------


def _message(endpoint, object_id, now, event_type="affiliate.status_changed"):
    """A pending, due message written directly (no delivery queued on commit)."""
    return WebhookMessage.objects.create(
        endpoint=endpoint,
        event_type=event_type,
        object_id=object_id,
        payload={"type": event_type, "data": {"id": object_id}},
        next_attempt_at=now,
        created_at=now,
    )


def test_a_batch_claims_only_the_first_pending_message_of_each_object_and_holds_it_for_the_lease(
    program, receiver
):
    endpoint = make_endpoint(program, receiver.url)
    now = timezone.now()
    a1, b1, a2, a3, b2 = (
        _message(endpoint, obj, now) for obj in ("aff_a", "aff_b", "aff_a", "aff_a", "aff_b")
    )
    first = delivery.claim(now=now, limit=10)
    assert [c.pk for c in first] == [a1.pk, b1.pk]  # a2, a3, b2 wait behind an earlier message
    assert [c.attempts for c in first] == [1, 1]
    assert delivery.claim(now=now, limit=10) == []  # leased, and the others still wait
    assert delivery.claim(now=now + delivery.LEASE - timedelta(seconds=1), limit=10) == []

    done = delivery.record(delivery.send([first[0]], clock=lambda: now))  # a1 delivered; b1 "dies"
    assert done == ([a1.pk], True)  # a2 waits behind a1: the deliver_due loop goes on
    second = delivery.claim(now=now, limit=10)
    assert [c.pk for c in second] == [a2.pk]  # b1's lease still holds, so b2 still waits
    later = now + delivery.LEASE + timedelta(seconds=1)
    third = delivery.claim(now=later, limit=10)
    assert [(c.pk, c.attempts) for c in third] == [(b1.pk, 2), (a2.pk, 2)]  # both leases ended
    assert all(c.claimed_until == later + delivery.LEASE for c in third)


def test_a_batch_with_one_failing_endpoint_records_each_outcome(program, keep_alive_receiver, receiver):
    good = make_endpoint(program, keep_alive_receiver.url)
    bad = make_endpoint(program, receiver.url)
    receiver.answers = [500, 503, 200]
    now = timezone.now()
    messages = [_message(endpoint, f"aff_{i}", now) for i in range(3) for endpoint in (good, bad)]
    with time_machine.travel(now, tick=False):
        assert delivery.deliver_batch(now=now).claimed == 6
    by_pk = {m.pk: m for m in WebhookMessage.objects.all()}
    good_ones = [by_pk[m.pk] for m in messages if m.endpoint_id == good.pk]
    bad_ones = [by_pk[m.pk] for m in messages if m.endpoint_id == bad.pk]
    assert [(m.status, m.attempts, m.claimed_until) for m in good_ones] == [("delivered", 1, None)] * 3
    assert all(m.delivered_at == now and m.next_attempt_at is None for m in good_ones)
    assert [(m.status, m.next_attempt_at) for m in bad_ones] == [
        ("pending", now + delivery.RETRY_DELAYS[0]),
        ("pending", now + delivery.RETRY_DELAYS[0]),
        ("delivered", None),
    ]
    assert all(m.claimed_until is None and m.attempts == 1 for m in bad_ones)
    rows = {
        (d.message_id, d.endpoint_id, d.attempt, d.status, d.response_code)
        for d in WebhookDelivery.objects.all()
    }
    assert rows == {(m.pk, good.pk, 1, "succeeded", 200) for m in good_ones} | {
        (bad_ones[0].pk, bad.pk, 1, "failed", 500),
        (bad_ones[1].pk, bad.pk, 1, "failed", 503),
        (bad_ones[2].pk, bad.pk, 1, "succeeded", 200),
    }
    failed = WebhookDelivery.objects.get(message_id=bad_ones[0].pk)
    assert failed.next_retry_at == now + delivery.RETRY_DELAYS[0] and failed.response_body.startswith("boom")
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.failing_since is None
    assert bad.failing_since is None  # its last answer in the batch was a success
    assert len(keep_alive_receiver.requests) == 3 and len(receiver.requests) == 3
    assert len(keep_alive_receiver.connections) == 1  # one kept-alive connection for the batch


def test_an_endpoint_that_fails_last_in_a_batch_is_failing_since_its_first_failure_after_a_success(
    program, receiver
):
    endpoint = make_endpoint(program, receiver.url)
    receiver.answers = [200, 500, 500]
    now = timezone.now()
    for i in range(3):
        _message(endpoint, f"aff_{i}", now)
    times = iter([now, now + timedelta(seconds=1), now + timedelta(seconds=2)])
    delivery.record(delivery.send(delivery.claim(now=now), clock=lambda: next(times)))
    endpoint.refresh_from_db()
    assert endpoint.failing_since == now + timedelta(seconds=1)


def test_an_unreachable_endpoint_costs_one_attempt_per_batch_and_its_other_messages_wait(program, receiver):
    reachable = make_endpoint(program, receiver.url)
    receiver.close()
    gone = make_endpoint(program, receiver.url)  # nothing listens there any more
    live = type(receiver)()  # a fresh receiver for the reachable endpoint
    try:
        reachable.url = live.url
        reachable.save(update_fields=["url"])
        now = timezone.now()
        dead = [_message(gone, f"aff_{i}", now) for i in range(3)]
        fine = _message(reachable, "aff_x", now)
        with time_machine.travel(now, tick=False):
            assert delivery.deliver_batch(now=now).claimed == 4
    finally:
        live.close()
    states = {m.pk: m for m in WebhookMessage.objects.all()}
    retry = now + delivery.RETRY_DELAYS[0]
    assert (states[dead[0].pk].attempts, states[dead[0].pk].next_attempt_at) == (1, retry)
    for waiting in dead[1:]:  # not tried: no attempt counted, no delivery row, back at the retry
        m = states[waiting.pk]
        assert (m.status, m.attempts, m.next_attempt_at, m.claimed_until) == ("pending", 0, retry, None)
    assert states[fine.pk].status == "delivered"
    assert list(WebhookDelivery.objects.filter(endpoint=gone).values_list("message_id", "response_code")) == [
        (dead[0].pk, None)
    ]
    assert "ConnectionRefused" in WebhookDelivery.objects.get(endpoint=gone).error


def test_an_attempt_recorded_after_the_lease_was_taken_over_leaves_the_message_to_its_new_holder(
    program, receiver
):
    endpoint = make_endpoint(program, receiver.url)
    now = timezone.now()
    message = _message(endpoint, "aff_a", now)
    stale = delivery.claim(now=now)
    later = now + delivery.LEASE + timedelta(seconds=1)
    fresh = delivery.claim(now=later)  # the first worker looked dead: another took the message
    assert [c.attempts for c in fresh] == [2]
    assert delivery.record(delivery.send(stale, clock=lambda: now)).finished == []
    message.refresh_from_db()
    assert (message.status, message.attempts, message.claimed_until) == ("pending", 2, fresh[0].claimed_until)
    assert WebhookDelivery.objects.filter(message=message, attempt=1).count() == 1  # the attempt is logged
    assert delivery.record(delivery.send(fresh, clock=lambda: later)) == ([message.pk], False)
    message.refresh_from_db()
    assert message.status == "delivered" and message.claimed_until is None


def test_no_post_starts_after_the_batch_time_so_every_post_ends_inside_the_lease(
    program, receiver, monkeypatch
):
    endpoint = make_endpoint(program, receiver.url)
    now = timezone.now()
    for i in range(3):
        _message(endpoint, f"aff_{i}", now)
    monkeypatch.setattr(delivery, "BATCH_SECONDS", 0.0)  # as if the first POST had taken the whole time
    with time_machine.travel(now, tick=False):
        assert delivery.deliver_batch(now=now) == (3, True)  # two left over: claim again at once
    assert len(receiver.requests) == 1
    left = WebhookMessage.objects.filter(status="pending").order_by("pk")
    assert [(m.attempts, m.next_attempt_at, m.claimed_until) for m in left] == [(0, now, None)] * 2
    with time_machine.travel(now, tick=False):
        assert delivery.deliver_batch(now=now) == (2, True)  # released at once: the next batch takes them
    assert WebhookMessage.objects.filter(status="delivered").count() == 2


def test_a_failed_message_pushes_the_later_messages_of_its_object_to_its_retry(program, receiver):
    endpoint = make_endpoint(program, receiver.url)
    receiver.answers = [500]
    now = timezone.now()
    first, second = _message(endpoint, "aff_a", now), _message(endpoint, "aff_a", now)
    with time_machine.travel(now, tick=False):
        assert delivery.deliver_batch(now=now) == (1, False)  # the second waits behind the first
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.next_attempt_at == now + delivery.RETRY_DELAYS[0] and second.attempts == 0
    assert second.next_attempt_at == now + delivery.RETRY_DELAYS[0]
    assert sweep_due_messages() == 0  # nothing due: the sweep leaves both alone until the retry


def test_the_sweep_delivers_a_backlog_in_batches(program, keep_alive_receiver):
    endpoint = make_endpoint(program, keep_alive_receiver.url)
    now = timezone.now()
    for i in range(delivery.CLAIM_BATCH + 5):
        _message(endpoint, f"aff_{i}", now)
    with time_machine.travel(now, tick=False):
        assert sweep_due_messages() == delivery.CLAIM_BATCH + 5
        assert sweep_due_messages() == 0
    assert WebhookMessage.objects.filter(status="delivered").count() == delivery.CLAIM_BATCH + 5
    assert len({h["webhook-id"] for h, _ in keep_alive_receiver.requests}) == delivery.CLAIM_BATCH + 5
    assert len(keep_alive_receiver.connections) == 2  # one per batch


def test_recording_a_batch_costs_the_same_statements_for_5_or_40_messages(program, keep_alive_receiver):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    endpoint = make_endpoint(program, keep_alive_receiver.url)
    now = timezone.now()
    counts = []
    for size in (5, 40):
        for i in range(size):
            _message(endpoint, f"aff_{size}_{i}", now)
        with time_machine.travel(now, tick=False), CaptureQueriesContext(connection) as queries:
            assert delivery.deliver_batch(now=now).claimed == size
        counts.append(len(queries))
    if connection.vendor == "postgresql":
        # BEGIN/SET/claim/COMMIT, then BEGIN/SET/one UPDATE/one INSERT/COMMIT (savepoints aside)
        assert counts[0] == counts[1] <= 10
    else:  # SQLite: an UPDATE and a look for the object's next message per message, still one INSERT
        assert counts[1] - counts[0] == 2 * 35


def test_deliveries_of_a_replayed_message_go_out_at_once_even_if_not_due(program, receiver):
    endpoint = make_endpoint(program, receiver.url)
    now = timezone.now()
    message = _message(endpoint, "aff_a", now + timedelta(hours=1))  # not due for an hour
    assert delivery.claim(now=now) == []
    assert delivery.message_deliver(message_id=message.pk, now=now) is None
    assert receiver.requests == []
    delivery.message_deliver(message_id=message.pk, now=now, force=True)
    message.refresh_from_db()
    assert message.status == "delivered" and len(receiver.requests) == 1


# --- the connection and the address check --------------------------------------------------------


def test_a_host_is_resolved_once_per_dns_window_and_checked_every_time(monkeypatch, settings):
    import socket

    from webhooks import net

    calls = []
    real = socket.getaddrinfo

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    net.forget_addresses()
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    assert net.check_url("http://localhost:9/a")[3] in ("127.0.0.1", "::1")
    assert net.check_url("http://localhost:9/b")[3] in ("127.0.0.1", "::1")
    assert calls == ["localhost"]
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = False  # the check itself runs every time
    with pytest.raises(net.UnsafeUrl, match="private"):
        net.check_url("http://localhost:9/c")
    monkeypatch.setattr(net, "DNS_SECONDS", 0.0)
    net.forget_addresses()
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    net.check_url("http://localhost:9/a")
    net.check_url("http://localhost:9/a")
    assert calls == ["localhost"] * 3
    net.forget_addresses()


def test_a_client_reuses_a_kept_alive_connection_and_opens_one_per_request_otherwise(
    keep_alive_receiver, receiver
):
    from webhooks import net

    with net.Client() as client:
        answers = [
            client.post(keep_alive_receiver.url, b"{}", {"content-type": "application/json"})
            for _ in range(4)
        ]
        assert [a.status for a in answers] == [200] * 4 and client.connections_opened == 1
    with net.Client() as client:
        answers = [client.post(receiver.url, b"{}", {}) for _ in range(3)]  # HTTP/1.0: closes each time
        assert [a.status for a in answers] == [200] * 3 and client.connections_opened == 3
    assert len(keep_alive_receiver.connections) == 1 and len(receiver.connections) == 3


def test_a_kept_alive_connection_the_receiver_closed_is_replaced_once(keep_alive_receiver):
    import socket

    from webhooks import net

    with net.Client() as client:
        assert client.post(keep_alive_receiver.url, b"{}", {}).status == 200
        (conn,) = client._idle.values()
        # no Nagle wait: the body follows the headers at once (40 ms a POST on a kept connection)
        assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        conn.sock.shutdown(2)  # as if the receiver had closed the idle connection
        assert client.post(keep_alive_receiver.url, b"{}", {}).status == 200
        assert client.connections_opened == 2
    assert len(keep_alive_receiver.requests) == 2


# --- the web side --------------------------------------------------------------------------------


def test_a_burst_of_queued_messages_costs_a_few_broker_publishes(monkeypatch):
    import threading
    import time

    from webhooks import dispatch

    published = []
    done = threading.Event()

    class FakeTask:
        def apply_async(self, **options):
            published.append(options)
            done.set()

    monkeypatch.setattr(dispatch, "deliver_due", FakeTask())
    conf = dispatch.deliver_message.app.conf
    eager, conf.task_always_eager = conf.task_always_eager, False
    queued.unmark()  # no deliver_due task waits yet
    try:
        started = time.monotonic()
        for message_id in range(1000):
            dispatch.queue_delivery(message_id)
        assert done.wait(5)
        time.sleep(dispatch.PERIOD * 3)  # what came in after the first publish goes in the next one
    finally:
        conf.task_always_eager = eager
    elapsed = time.monotonic() - started
    assert 1 <= len(published) <= 2 + elapsed / dispatch.PERIOD
    assert all(p == {"expires": dispatch.EXPIRES} for p in published)
    if _redis_broker():  # the later wakes found the first task still waiting: one publish in all
        assert len(published) == 1


def _redis_broker() -> bool:
    from django.conf import settings

    return settings.CELERY_BROKER_URL.startswith("redis")


def _publishes_of(monkeypatch, wakes) -> list[dict]:
    """The deliver_due publishes of the dispatch thread over these wakes (each a callable run after
    the previous wake's round is over)."""
    import threading
    import time

    from webhooks import dispatch

    published = []
    rounds = threading.Semaphore(0)

    class FakeTask:
        def apply_async(self, **options):
            published.append(options)

    monkeypatch.setattr(dispatch, "deliver_due", FakeTask())
    monkeypatch.setattr(dispatch, "PERIOD", 0.01)
    original_mark = queued.mark

    def mark():
        try:
            return original_mark()
        finally:
            rounds.release()

    monkeypatch.setattr(queued, "mark", mark)
    conf = dispatch.deliver_message.app.conf
    eager, conf.task_always_eager = conf.task_always_eager, False
    try:
        for wake in wakes:
            wake()
            dispatch.queue_delivery(1)
            assert rounds.acquire(timeout=5), "the dispatch thread did not wake"
            time.sleep(0.05)  # its publish, if any, is done
    finally:
        conf.task_always_eager = eager
    return published


def test_a_waiting_deliver_due_task_is_not_published_again_until_it_starts(db, monkeypatch):
    """With a Redis broker, a process publishes deliver_due only when none waits: the flag set by
    the first publish holds every later wake back until the task starts and clears it."""
    if not _redis_broker():
        pytest.skip("the flag lives in the broker's Redis; the file broker publishes every wake")
    from webhooks.tasks import deliver_due

    def nothing():
        pass

    published = _publishes_of(monkeypatch, [nothing, nothing, nothing, deliver_due, nothing, nothing])
    # 1 for the first wake; the task then starts (and claims nothing) and the next wake publishes again
    assert len(published) == 2


def test_a_failed_publish_clears_the_flag_so_the_next_wake_publishes(monkeypatch):
    from webhooks import dispatch

    attempts = []

    class BrokerAway:
        def apply_async(self, **options):
            attempts.append(options)
            raise ConnectionError("broker away")

    import threading
    import time

    woke = threading.Event()
    monkeypatch.setattr(dispatch, "deliver_due", BrokerAway())
    monkeypatch.setattr(dispatch, "PERIOD", 0.01)
    original_unmark = queued.unmark

    def unmark():
        original_unmark()
        woke.set()

    monkeypatch.setattr(queued, "unmark", unmark)
    conf = dispatch.deliver_message.app.conf
    eager, conf.task_always_eager = conf.task_always_eager, False
    original_unmark()
    try:
        for _ in range(2):
            woke.clear()
            dispatch.queue_delivery(1)
            assert woke.wait(5)
            time.sleep(0.03)
    finally:
        conf.task_always_eager = eager
    assert len(attempts) == 2  # the second wake tried again: no flag was left behind


def test_without_a_reachable_redis_every_wake_publishes(monkeypatch, settings):
    """A Redis that cannot be reached holds nothing back: the publish decides (and the sweep covers)."""
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"

    def nothing():
        pass

    assert queued.mark() is True and queued.mark() is True
    published = _publishes_of(monkeypatch, [nothing, nothing, nothing])
    assert len(published) == 3
