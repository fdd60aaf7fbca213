"""What a customer referrer earns for a friend: the program's reward, once per friend, within the
yearly limit and the lifetime cap; past a limit the sale is recorded with the reason (issue 16, item 4)."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from affiliates.referrers import referrer_enrol
from commissions.calculation import explain
from commissions.models import Commission
from commissions.services import EventInput, event_ingest
from refapp.models import Actor
from tracking.models import Event, Referral

ACTOR = Actor("test")


@pytest.fixture
def friends_program(program):
    program.customer_referrals = True
    program.customer_reward_kind = "credit"
    program.customer_reward_type = "fixed"
    program.customer_reward_amount_cents = 2000
    program.save()
    return program


@pytest.fixture
def referrer(friends_program):
    return referrer_enrol(
        program=friends_program,
        livemode=True,
        email="ann@customer.example",
        customer_id="cus_ann",
        actor=ACTOR,
    )[0]


def sale(program, referrer, friend, *, order, at, amount=10_000, name="sale"):
    return event_ingest(
        program=program,
        livemode=True,
        data=EventInput(
            name=name,
            order_id=order,
            customer_id=friend,
            referral_code=referrer.code,
            amount_cents=amount,
            currency=program.currency,
            occurred_at=at,
        ),
        actor=ACTOR,
        now=timezone.now(),
    )[0]


def rewards(referrer):
    return list(Commission.objects.filter(affiliate=referrer, kind="commission").order_by("pk"))


def test_the_yearly_limit_stops_further_rewards_and_the_record_says_why(
    friends_program, referrer, event_write_path
):
    friends_program.customer_reward_max_per_year = 2
    friends_program.save()
    for i in range(3):
        sale(friends_program, referrer, f"cus_f{i}", order=f"O{i}", at=datetime(2026, 3, 1 + i, tzinfo=UTC))
    first, second, third = rewards(referrer)
    assert [first.amount_cents, second.amount_cents] == [2000, 2000]
    assert first.status == second.status == "pending"
    assert third.status == "rejected" and third.amount_cents == 0
    assert third.status_reason.startswith("limit reached: 2 rewarded referrals in 2026")
    assert third.inputs["limit"] == "max_per_year" and third.inputs["would_have_paid_cents"] == 2000
    assert "limit reached" in explain(third)
    # The friend is still the referrer's: the referral and the event are recorded.
    assert Referral.objects.filter(affiliate=referrer, customer_id="cus_f2").exists()
    assert Event.objects.get(order_id="O2").affiliate_id == referrer.pk
    # A new year, a new allowance.
    sale(friends_program, referrer, "cus_next", order="O-next", at=datetime(2027, 1, 2, tzinfo=UTC))
    assert rewards(referrer)[-1].status == "pending" and rewards(referrer)[-1].amount_cents == 2000


def test_the_lifetime_cap_cuts_the_reward_that_crosses_it_then_stops_them(
    friends_program, referrer, event_write_path
):
    friends_program.customer_reward_lifetime_cap_cents = 3000
    friends_program.save()
    for i in range(3):
        sale(friends_program, referrer, f"cus_f{i}", order=f"O{i}", at=datetime(2026, 3, 1 + i, tzinfo=UTC))
    first, second, third = rewards(referrer)
    assert (first.amount_cents, first.status) == (2000, "pending")
    assert (second.amount_cents, second.status) == (1000, "pending")
    assert second.inputs["limit"] == "lifetime_cap_partial" and second.inputs["would_have_paid_cents"] == 2000
    assert (third.amount_cents, third.status) == (0, "rejected")
    assert third.status_reason.startswith("limit reached: lifetime cap of 30.00")
    assert third.inputs["limit"] == "lifetime_cap"


def test_one_reward_per_friend_and_only_for_a_sale(friends_program, referrer, event_write_path):
    at = datetime(2026, 3, 1, tzinfo=UTC)
    sale(friends_program, referrer, "cus_f", order="O1", at=at, name="signup")
    sale(friends_program, referrer, "cus_f", order="O2", at=at)
    sale(friends_program, referrer, "cus_f", order="O3", at=at)
    assert [r.event.order_id for r in rewards(referrer)] == ["O2"]
    assert Event.objects.filter(affiliate=referrer).count() == 3


def test_a_percent_reward_of_the_friends_first_sale(friends_program, referrer, event_write_path):
    friends_program.customer_reward_type = "percent"
    friends_program.customer_reward_rate_bp = 1250
    friends_program.save()
    body = sale(
        friends_program, referrer, "cus_f", order="O1", at=datetime(2026, 3, 1, tzinfo=UTC), amount=999
    )
    [reward] = rewards(referrer)
    assert reward.amount_cents == 125 and reward.inputs["rate_bp"] == 1250 and reward.rule_id is None
    assert body["commissions"][0]["amount_cents"] == 125


def test_the_referrer_buying_with_their_own_code_earns_nothing(friends_program, referrer, event_write_path):
    sale(friends_program, referrer, "cus_ann", order="O1", at=datetime(2026, 3, 1, tzinfo=UTC))
    [reward] = rewards(referrer)
    assert reward.status == "rejected" and "self-referral" in reward.status_reason


def test_program_rules_do_not_pay_customer_referrers(friends_program, referrer, sale_rule, event_write_path):
    sale(friends_program, referrer, "cus_f", order="O1", at=datetime(2026, 3, 1, tzinfo=UTC))
    [reward] = rewards(referrer)
    assert reward.amount_cents == 2000 and reward.inputs["scope"] == "customer_referrer"


def test_the_events_api_pays_a_customer_referrer(api_client, friends_program, referrer, event_write_path):
    response = api_client.post(
        "/api/v1/events",
        {
            "event": "sale",
            "order_id": "ORD-1",
            "customer_id": "cus_f",
            "referral_code": referrer.code,
            "amount_cents": 5000,
        },
    )
    assert response.status_code == 201
    assert response.json()["affiliate"]["id"] == referrer.public_id
    assert [c["amount_cents"] for c in response.json()["commissions"]] == [2000]
    replay = api_client.post(
        "/api/v1/events",
        {
            "event": "sale",
            "order_id": "ORD-1",
            "customer_id": "cus_f",
            "referral_code": referrer.code,
            "amount_cents": 5000,
        },
    )
    assert replay.status_code == 200 and replay.json() == response.json()
    assert len(rewards(referrer)) == 1


@pytest.mark.postgres
def test_concurrent_friends_cannot_overrun_the_yearly_limit(transactional_db, friends_program, referrer):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are proven on PostgreSQL; set DATABASE_URL to run it")
    friends_program.customer_reward_max_per_year = 3
    friends_program.save()
    barrier = threading.Barrier(10)
    errors = []

    def buy(i):
        try:
            barrier.wait()
            sale(friends_program, referrer, f"cus_f{i}", order=f"O{i}", at=datetime(2026, 3, 1, tzinfo=UTC))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    statuses = sorted(r.status for r in rewards(referrer))
    assert statuses == ["pending"] * 3 + ["rejected"] * 7
