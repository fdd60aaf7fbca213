import pytest
from django.utils import timezone

from commissions.models import Commission
from commissions.services import refund_apply
from refapp.models import Actor
from tests.factories import CommissionRuleFactory
from tracking.models import Event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_write_path")]


@pytest.fixture
def order(api_client, affiliate, sale_rule):
    body = api_client.post(
        "/api/v1/events",
        {"event": "sale", "order_id": "ORD-1", "referral_code": "JOHN", "amount_cents": 10000},
    ).json()
    return Commission.objects.get(public_id=body["commissions"][0]["id"])


def net(commission):
    rows = Commission.objects.filter(event=commission.event).exclude(status="rejected")
    return sum(r.amount_cents for r in rows)


def test_full_refund_rejects_pending_commission(api_client, order):
    response = api_client.post("/api/v1/refunds", {"order_id": "ORD-1"})
    assert response.status_code == 201
    body = response.json()
    assert body["fully_refunded"] is True and body["amount_cents"] == 10000
    order.refresh_from_db()
    assert order.status == "rejected" and "refund" in order.status_reason
    assert net(order) == 0


def test_full_refund_replay_changes_nothing(api_client, order):
    first = api_client.post("/api/v1/refunds", {"order_id": "ORD-1"})
    again = api_client.post("/api/v1/refunds", {"order_id": "ORD-1"})
    assert again.status_code == 200 and again.json() == first.json()
    assert Commission.objects.count() == 1


def test_partial_refund_reverses_in_proportion(api_client, order):
    response = api_client.post(
        "/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "re_1", "amount_cents": 2500}
    )
    assert response.status_code == 201
    order.refresh_from_db()
    assert order.status == "pending" and order.amount_cents == 2000
    reversal = Commission.objects.get(kind="reversal")
    assert reversal.amount_cents == -500 and reversal.status == "pending" and reversal.reverses == order
    assert reversal.hold_until == order.hold_until
    assert net(order) == 1500


def test_partial_refund_replay_by_refund_id(api_client, order):
    first = api_client.post(
        "/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "re_1", "amount_cents": 2500}
    )
    again = api_client.post(
        "/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "re_1", "amount_cents": 2500}
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert Event.objects.get().refunded_cents == 2500
    assert Commission.objects.filter(kind="reversal").count() == 1


def test_a_refund_id_reused_on_another_order_refunds_that_order(api_client, order):
    """Merchants number refunds per order: "1" on ORD-2 is not a replay of "1" on ORD-1. It used to
    answer 200 with ORD-1's body and reverse nothing, so the merchant never learned."""
    second = api_client.post(
        "/api/v1/events",
        {"event": "sale", "order_id": "ORD-2", "referral_code": "JOHN", "amount_cents": 10000},
    ).json()
    first = api_client.post("/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "1", "amount_cents": 2500})
    assert first.status_code == 201
    other = api_client.post("/api/v1/refunds", {"order_id": "ORD-2", "refund_id": "1"})
    assert other.status_code == 201
    body = other.json()
    assert body["order_id"] == "ORD-2" and body["event"] == second["id"] and body["fully_refunded"] is True
    commission = Commission.objects.get(public_id=second["commissions"][0]["id"])
    assert commission.status == "rejected"
    assert Event.objects.get(order_id="ORD-2").refunded_cents == 10000
    assert Event.objects.get(order_id="ORD-1").refunded_cents == 2500
    # A replay of either is still a replay: the same body, nothing changed.
    again = api_client.post("/api/v1/refunds", {"order_id": "ORD-2", "refund_id": "1"})
    assert again.status_code == 200 and again.json() == body
    replay = api_client.post("/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "1", "amount_cents": 2500})
    assert replay.status_code == 200 and replay.json() == first.json()
    assert Event.objects.get(order_id="ORD-1").refunded_cents == 2500


def test_partials_then_full_refund_net_to_zero(api_client, order):
    api_client.post("/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "re_1", "amount_cents": 3333})
    api_client.post("/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "re_2", "amount_cents": 3333})
    api_client.post("/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "re_3"})
    assert net(order) == 0
    assert set(Commission.objects.values_list("status", flat=True)) == {"rejected"}


def test_refund_of_paid_commission_creates_approved_clawback(api_client, order):
    Commission.objects.filter(pk=order.pk).update(status="paid", paid_at=timezone.now())
    api_client.post("/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "re_1", "amount_cents": 5000})
    clawback = Commission.objects.get(kind="reversal")
    assert clawback.amount_cents == -1000 and clawback.status == "approved"
    api_client.post("/api/v1/refunds", {"order_id": "ORD-1", "refund_id": "re_2"})
    clawbacks = Commission.objects.filter(kind="reversal").order_by("pk")
    assert [c.amount_cents for c in clawbacks] == [-1000, -1000]
    order.refresh_from_db()
    assert order.status == "paid"
    assert sum(c.amount_cents for c in clawbacks) == -order.amount_cents  # never more than was earned


def test_refund_never_reverses_more_than_earned_with_rounding(api_client, affiliate, program):
    CommissionRuleFactory(program=program, rate_bp=3333)
    body = api_client.post(
        "/api/v1/events", {"event": "sale", "order_id": "ODD", "referral_code": "JOHN", "amount_cents": 1001}
    ).json()
    original = Commission.objects.get(public_id=body["commissions"][0]["id"])
    assert original.amount_cents == 334  # 33.33 % of 1001 = 333.63, half up
    Commission.objects.filter(pk=original.pk).update(status="paid")
    clawed = []
    for i in range(7):  # seven refunds of 143 add up to the whole 1001
        api_client.post("/api/v1/refunds", {"order_id": "ODD", "refund_id": f"re_{i}", "amount_cents": 143})
        clawed.append(-sum(Commission.objects.filter(kind="reversal").values_list("amount_cents", flat=True)))
    assert clawed == sorted(clawed) and all(c <= original.amount_cents for c in clawed)
    assert clawed[-1] == original.amount_cents


def test_pending_commission_refunded_in_pieces_nets_zero(api_client, affiliate, program):
    CommissionRuleFactory(program=program, rate_bp=3333)
    body = api_client.post(
        "/api/v1/events", {"event": "sale", "order_id": "ODD", "referral_code": "JOHN", "amount_cents": 1001}
    ).json()
    original = Commission.objects.get(public_id=body["commissions"][0]["id"])
    for i in range(7):
        api_client.post("/api/v1/refunds", {"order_id": "ODD", "refund_id": f"re_{i}", "amount_cents": 143})
        assert 0 <= net(original) <= original.amount_cents
    assert net(original) == 0


def test_refund_more_than_remaining_is_400_and_writes_nothing(api_client, order):
    response = api_client.post("/api/v1/refunds", {"order_id": "ORD-1", "amount_cents": 10001})
    assert response.status_code == 400
    assert "amount_cents" in response.json()["error"]["fields"]
    assert Event.objects.get().refunded_cents == 0 and Commission.objects.count() == 1


def test_unknown_order_is_404(api_client, program):
    response = api_client.post("/api/v1/refunds", {"order_id": "NOPE"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_refund_with_other_mode_key_is_403(test_api_client, order):
    response = test_api_client.post("/api/v1/refunds", {"order_id": "ORD-1"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "wrong_mode"
    order.refresh_from_db()
    assert order.status == "pending"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"order_id": 5},
        {"order_id": "ORD-1", "amount_cents": 0},
        {"order_id": "ORD-1", "amount_cents": "5"},
        {"order_id": "ORD-1", "amount_cents": -5},
    ],
)
def test_refund_bad_input(api_client, order, body):
    response = api_client.post("/api/v1/refunds", body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    assert Event.objects.get().refunded_cents == 0


def test_refund_service_is_idempotent_when_called_twice(order):
    kwargs = {
        "program": order.program,
        "livemode": True,
        "order_id": "ORD-1",
        "refund_id": "re_x",
        "amount_cents": 100,
        "actor": Actor.system(),
        "now": timezone.now(),
    }
    first, created = refund_apply(**kwargs)
    second, created_again = refund_apply(**kwargs)
    assert created and not created_again and first == second
