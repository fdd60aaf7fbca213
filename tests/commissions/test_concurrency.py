"""Exactly-once under concurrency, proven against a real PostgreSQL through the real HTTP stack."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from django.db import connection

from affiliates.services import apikey_create
from commissions.models import Commission
from tests.factories import AffiliateFactory, CommissionRuleFactory, ProgramFactory
from tracking.models import Event

pytestmark = pytest.mark.usefixtures("event_write_path")


@pytest.fixture
def pg(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is proven on PostgreSQL; set DATABASE_URL to run it")


def fire(url: str, secret: str, body: dict, n: int) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(n)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def worker():
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                result = (response.status, json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            result = (exc.code, json.loads(exc.read()))
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.postgres
def test_twenty_concurrent_deliveries_of_one_order_create_one_event(pg, live_server):
    program = ProgramFactory(slug="race")
    AffiliateFactory(program=program, code="JOHN")
    CommissionRuleFactory(program=program, rate_bp=2000)
    CommissionRuleFactory(program=program, type="fixed", rate_bp=None, amount_cents=500)
    secret = apikey_create(program=program)[1]
    body = {
        "event": "sale",
        "order_id": "RACE-1",
        "referral_code": "JOHN",
        "customer_id": "cus_race",
        "amount_cents": 9900,
    }

    results = fire(f"{live_server.url}/api/v1/events", secret, body, 20)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 19 + [201]
    bodies = {json.dumps(b, sort_keys=True) for _, b in results}
    assert len(bodies) == 1  # every answer is the identical body
    assert Event.objects.filter(order_id="RACE-1").count() == 1
    assert Commission.objects.count() == 2
    assert sorted(Commission.objects.values_list("amount_cents", flat=True)) == [500, 1980]


@pytest.mark.postgres
def test_concurrent_first_orders_of_one_customer_share_one_referral(pg, live_server):
    from tracking.models import Referral

    program = ProgramFactory(slug="race2")
    AffiliateFactory(program=program, code="JOHN")
    CommissionRuleFactory(program=program, rate_bp=1000)
    secret = apikey_create(program=program)[1]
    threads, n = [], 10
    for i in range(n):
        body = {
            "event": "sale",
            "order_id": f"O-{i}",
            "referral_code": "JOHN",
            "customer_id": "cus_same",
            "amount_cents": 1000,
        }
        threads.append(
            threading.Thread(target=fire, args=(f"{live_server.url}/api/v1/events", secret, body, 1))
        )
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Event.objects.count() == n
    assert Referral.objects.filter(customer_id="cus_same").count() == 1
    assert Commission.objects.count() == n
