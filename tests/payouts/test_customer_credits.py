"""Refer-a-friend rewards settled as account credit: into the referrer's Stripe customer balance
exactly once, and taken back in proportion when the friend's order is refunded (issue 16, item 4)."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from affiliates.models import Affiliate
from affiliates.referrers import referrer_enrol
from commissions.models import Commission
from commissions.services import EventInput, approve_due_commissions, event_ingest, refund_apply
from payouts.credits import credit_issue, credits_sync
from payouts.models import CustomerCredit
from payouts.services import payouts_create
from refapp.models import Actor
from tests.factories import AffiliateFactory, CommissionRuleFactory

ACTOR = Actor("test")


@pytest.fixture
def credit_program(program):
    program.customer_referrals = True
    program.customer_reward_kind = "credit"
    program.customer_reward_type = "fixed"
    program.customer_reward_amount_cents = 2000
    program.hold_days = 30
    program.save()
    return program


@pytest.fixture
def referrer(credit_program, fake_stripe):
    customer_id = fake_stripe.add_customer(email="ann@customer.example")
    return referrer_enrol(
        program=credit_program,
        livemode=True,
        email="ann@customer.example",
        customer_id=customer_id,
        actor=ACTOR,
    )[0]


def friend_buys(program, referrer, *, order="ORD-1", friend="cus_friend", amount=10_000, at=None):
    body, _ = event_ingest(
        program=program,
        livemode=True,
        data=EventInput(
            name="sale",
            order_id=order,
            customer_id=friend,
            referral_code=referrer.code,
            amount_cents=amount,
            currency=program.currency,
            occurred_at=at,
        ),
        actor=ACTOR,
        now=timezone.now(),
    )
    return body


def after_hold():
    return timezone.now() + timedelta(days=31)


def test_an_approved_friend_reward_is_credited_once_and_a_half_refund_debits_half(
    credit_program, referrer, fake_stripe, event_write_path
):
    body = friend_buys(credit_program, referrer)
    assert body["attributed"] and body["affiliate"]["id"] == referrer.public_id
    [reward] = Commission.objects.filter(affiliate=referrer)
    assert reward.amount_cents == 2000 and reward.status == "pending" and reward.inputs["reward"] == "credit"

    assert credits_sync(now=timezone.now()) == {"opened": 0, "sent": 0}  # nothing before approval
    assert approve_due_commissions(now=after_hold()) == 1
    assert credits_sync(now=after_hold()) == {"opened": 1, "sent": 1}
    assert credits_sync(now=after_hold()) == {"opened": 0, "sent": 0}  # a second run moves nothing

    [credit] = CustomerCredit.objects.all()
    assert (credit.kind, credit.status, credit.amount_cents) == ("credit", "done", 2000)
    [txn] = fake_stripe.balance_transactions(referrer.customer_id)
    assert txn["amount"] == -2000 and txn["metadata"]["refapp_credit"] == credit.public_id
    assert txn["id"] == credit.stripe_transaction_id
    assert fake_stripe.customer(referrer.customer_id)["balance"] == -2000
    reward.refresh_from_db()
    assert reward.status == "paid"

    refund_apply(
        program=credit_program,
        livemode=True,
        order_id="ORD-1",
        refund_id="re_1",
        amount_cents=5_000,
        actor=ACTOR,
        now=after_hold(),
    )
    assert credits_sync(now=after_hold()) == {"opened": 1, "sent": 1}
    debit = CustomerCredit.objects.get(kind="debit")
    assert (debit.status, debit.amount_cents) == ("done", 1000)
    assert [t["amount"] for t in fake_stripe.balance_transactions(referrer.customer_id)] == [-2000, 1000]
    assert fake_stripe.customer(referrer.customer_id)["balance"] == -1000

    # The rest of the order refunded: the rest of the credit, and never more.
    refund_apply(
        program=credit_program,
        livemode=True,
        order_id="ORD-1",
        refund_id="re_2",
        amount_cents=None,
        actor=ACTOR,
        now=after_hold(),
    )
    credits_sync(now=after_hold())
    refund_apply(
        program=credit_program,
        livemode=True,
        order_id="ORD-1",
        refund_id="re_2",
        amount_cents=None,
        actor=ACTOR,
        now=after_hold(),
    )
    credits_sync(now=after_hold())
    assert [t["amount"] for t in fake_stripe.balance_transactions(referrer.customer_id)] == [
        -2000,
        1000,
        1000,
    ]
    assert fake_stripe.customer(referrer.customer_id)["balance"] == 0


def test_a_partial_refund_during_the_hold_is_netted_from_the_credit(credit_program, referrer, fake_stripe):
    friend_buys(credit_program, referrer)
    refund_apply(
        program=credit_program,
        livemode=True,
        order_id="ORD-1",
        refund_id="re_1",
        amount_cents=2_500,
        actor=ACTOR,
        now=timezone.now(),
    )
    approve_due_commissions(now=after_hold())
    credits_sync(now=after_hold())
    credit = CustomerCredit.objects.get()
    assert credit.amount_cents == 1500 and credit.status == "done"
    assert fake_stripe.customer(referrer.customer_id)["balance"] == -1500
    assert set(Commission.objects.filter(affiliate=referrer).values_list("status", flat=True)) == {"paid"}


def test_a_fully_refunded_friend_earns_no_credit(credit_program, referrer, fake_stripe):
    friend_buys(credit_program, referrer)
    refund_apply(
        program=credit_program,
        livemode=True,
        order_id="ORD-1",
        refund_id=None,
        amount_cents=None,
        actor=ACTOR,
        now=timezone.now(),
    )
    approve_due_commissions(now=after_hold())
    assert credits_sync(now=after_hold()) == {"opened": 0, "sent": 0}
    assert fake_stripe.balance_transactions(referrer.customer_id) == []


def test_an_unknown_stripe_customer_fails_the_credit_and_says_why(credit_program, fake_stripe):
    ghost = referrer_enrol(
        program=credit_program,
        livemode=True,
        email="gone@customer.example",
        customer_id="cus_gone",
        actor=ACTOR,
    )[0]
    friend_buys(credit_program, ghost)
    approve_due_commissions(now=after_hold())
    credits_sync(now=after_hold())
    credit = CustomerCredit.objects.get()
    assert credit.status == "failed" and "cus_gone" in credit.reason
    reward = Commission.objects.get(affiliate=ghost)
    assert reward.status == "approved" and reward.status_reason.startswith("account credit failed")
    assert credits_sync(now=after_hold()) == {"opened": 0, "sent": 0}  # failed stays failed, no loop


def test_a_credit_reward_never_goes_into_a_payout(credit_program, referrer, fake_stripe):
    Affiliate.objects.filter(pk=referrer.pk).update(payout_method="paypal", paypal_email="ann@pay.example")
    credit_program.minimum_payout_cents = 0
    credit_program.save()
    partner = AffiliateFactory(
        program=credit_program, code="JOHN", payout_method="paypal", paypal_email="j@pay.example"
    )
    CommissionRuleFactory(program=credit_program, event_name="sale", type="percent", rate_bp=1000)
    friend_buys(credit_program, referrer)
    friend_buys(credit_program, partner, order="ORD-2", friend="cus_other")
    approve_due_commissions(now=after_hold())
    # The partner's commission (no reward key in its inputs) is paid; the credit reward is not.
    [payout] = payouts_create(program=credit_program, now=after_hold())
    assert payout.affiliate_id == partner.pk and payout.amount_cents == 1000


def test_cash_rewards_are_paid_like_commissions_and_never_credited(credit_program, fake_stripe):
    credit_program.customer_reward_kind = "cash"
    credit_program.minimum_payout_cents = 0
    credit_program.save()
    referrer = referrer_enrol(
        program=credit_program,
        livemode=True,
        email="cash@customer.example",
        customer_id="cus_cash",
        actor=ACTOR,
    )[0]
    Affiliate.objects.filter(pk=referrer.pk).update(payout_method="paypal", paypal_email="cash@pay.example")
    friend_buys(credit_program, referrer)
    approve_due_commissions(now=after_hold())
    assert credits_sync(now=after_hold()) == {"opened": 0, "sent": 0}
    [payout] = payouts_create(program=credit_program, now=after_hold())
    assert payout.amount_cents == 2000 and payout.affiliate_id == referrer.pk


@pytest.mark.postgres
def test_twenty_concurrent_jobs_credit_once_then_a_half_refund_debits_half(
    transactional_db, credit_program, referrer, fake_stripe
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are proven on PostgreSQL; set DATABASE_URL to run it")
    friend_buys(credit_program, referrer, amount=8_000)
    approve_due_commissions(now=after_hold())
    reward = Commission.objects.get(affiliate=referrer)
    now = after_hold()

    def race(job):
        barrier = threading.Barrier(20)
        errors = []

        def run(i):
            try:
                barrier.wait()
                job(i)
            except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
                errors.append(exc)
            finally:
                close_old_connections()
                connection.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []

    # Duplicate deliveries of the job for this commission, and sweeps, all at once.
    race(lambda i: credit_issue(commission_id=reward.pk, now=now) if i % 2 else credits_sync(now=now))
    assert [t["amount"] for t in fake_stripe.balance_transactions(referrer.customer_id)] == [-2000]
    assert CustomerCredit.objects.get().status == "done"
    posts = [
        r for r in fake_stripe.requests if r.method == "POST" and r.path.endswith("/balance_transactions")
    ]
    assert len(posts) == 1

    refund_apply(
        program=credit_program,
        livemode=True,
        order_id="ORD-1",
        refund_id="re_half",
        amount_cents=4_000,
        actor=ACTOR,
        now=now,
    )
    reversal = Commission.objects.get(affiliate=referrer, kind="reversal")
    race(lambda i: credit_issue(commission_id=reversal.pk, now=now) if i % 2 else credits_sync(now=now))
    assert [t["amount"] for t in fake_stripe.balance_transactions(referrer.customer_id)] == [-2000, 1000]
    assert fake_stripe.customer(referrer.customer_id)["balance"] == -1000
    assert CustomerCredit.objects.filter(kind="debit").count() == 1


def test_a_claim_left_by_a_killed_worker_is_resumed_without_a_second_transaction(
    credit_program, referrer, fake_stripe
):
    friend_buys(credit_program, referrer)
    approve_due_commissions(now=after_hold())
    now = after_hold()
    # The worker sent the credit, Stripe made it, and the worker died before recording it.
    fake_stripe.drop_after_commit_next("/v1/customers/")
    with pytest.raises(Exception):  # noqa: B017 - the dropped answer is a connection error
        credits_sync_raising(now)
    row = CustomerCredit.objects.get()
    CustomerCredit.objects.filter(pk=row.pk).update(status="sending", claimed_at=now - timedelta(hours=30))
    credits_sync(now=now)
    row.refresh_from_db()
    assert row.status == "done"
    assert len(fake_stripe.balance_transactions(referrer.customer_id)) == 1


def credits_sync_raising(now):
    from payouts.credits import credit_open, credit_send

    reward = Commission.objects.get(kind="commission")
    row = credit_open(commission_id=reward.pk, now=now)
    return credit_send(row_id=row.pk, now=now)


def test_a_customer_referrers_privacy_export_and_erasure_cover_their_credits(
    credit_program, referrer, fake_stripe
):
    from payouts.privacy import Subject, privacy_erase, privacy_export

    friend_buys(credit_program, referrer)
    approve_due_commissions(now=after_hold())
    credits_sync(now=after_hold())
    subject = Subject(program=credit_program, livemode=True, affiliate=referrer)
    exported = privacy_export(subject)["affiliate"]
    assert exported["profile"]["customer_id"] == referrer.customer_id
    assert [c["amount_cents"] for c in exported["customer_credits"]] == [2000]

    counts = privacy_erase(subject=subject, actor=ACTOR)
    assert counts["customer_credits"] == 1
    referrer.refresh_from_db()
    assert referrer.customer_id == f"erased-{referrer.public_id}"
    assert CustomerCredit.objects.get().stripe_customer_id == "erased"
    assert CustomerCredit.objects.get().amount_cents == 2000  # the money row stays
