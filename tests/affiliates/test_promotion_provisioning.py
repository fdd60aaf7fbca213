"""Promotion codes in Stripe (issue 16, item 1): created once per affiliate however many runs
overlap, deactivated on suspension, reactivated on return, moved when the code or the reward
changes, retried after Stripe errors. Against the fake Stripe through the real stripe library."""

import threading

import pytest
import stripe
from django.db import connection, connections
from django.utils import timezone

from affiliates.errors import Conflict, Invalid
from affiliates.models import Affiliate, FriendReward, PromotionCode
from affiliates.promotions import friend_reward_set, promotion_code_set
from affiliates.provisioning import promotion_code_sync
from affiliates.services import affiliate_set_status
from tests.factories import AffiliateFactory, PartnerGroupFactory
from tests.fakestripe import FakeStripe


@pytest.fixture
def fake(settings):
    with FakeStripe() as fs:
        # A test key provisions test-mode affiliates (Stripe's test mode feeds refapp's test mode).
        settings.STRIPE_SECRET_KEY = "sk_test_refapp"
        settings.STRIPE_API_BASE = fs.url
        yield fs


def _client(fake):
    return stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url}, max_network_retries=0)


def _codes(fake, code):
    return [p for p in fake.promotion_codes if p["code"].lower() == code.lower()]


@pytest.mark.django_db
def test_approval_provisions_suspension_deactivates_return_reactivates(
    program, fake, django_capture_on_commit_callbacks
):
    pending = AffiliateFactory(program=program, code="JO", name="Jo", livemode=False, status="pending")
    with django_capture_on_commit_callbacks(execute=True):
        reward = friend_reward_set(
            program=program,
            group=None,
            actor=None,
            kind="percent",
            percent_bp=2000,
            duration="repeating",
            duration_months=3,
        )
    reward.refresh_from_db()
    coupon = fake.coupons[reward.stripe_coupon_id]
    assert coupon["percent_off"] == 20.0 and coupon["duration_in_months"] == 3
    assert fake.promotion_codes == []  # a pending affiliate has no code yet

    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=pending, status="active")
    (created,) = _codes(fake, "JO")
    assert created["active"] and created["promotion"]["coupon"] == reward.stripe_coupon_id
    row = PromotionCode.objects.get(affiliate=pending)
    assert (row.stripe_id, row.stripe_active, row.stripe_code) == (created["id"], True, "JO")

    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=pending, status="suspended")
    assert [p["active"] for p in _codes(fake, "JO")] == [False]
    assert PromotionCode.objects.get(affiliate=pending).stripe_active is False

    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=pending, status="active")
    (again,) = _codes(fake, "JO")
    assert again["id"] == created["id"] and again["active"]


@pytest.mark.django_db
def test_a_run_that_lost_stripes_answer_adopts_the_code_instead_of_making_a_second(program, fake):
    coupon = _client(fake).v1.coupons.create(params={"percent_off": "10", "duration": "once"})
    FriendReward.objects.create(program=program, kind="percent", percent_bp=1000, stripe_coupon_id=coupon.id)
    jo = AffiliateFactory(program=program, code="JO", livemode=False)
    fake.drop_after_commit_next("/v1/promotion_codes")
    with pytest.raises(stripe.APIConnectionError):
        promotion_code_sync(affiliate_id=jo.pk, now=timezone.now())
    assert PromotionCode.objects.get(affiliate=jo).claimed_at is None  # released for the retry
    assert promotion_code_sync(affiliate_id=jo.pk, now=timezone.now()) == "activated"
    assert len(_codes(fake, "JO")) == 1
    assert PromotionCode.objects.get(affiliate=jo).stripe_id == _codes(fake, "JO")[0]["id"]


@pytest.mark.django_db
def test_a_stripe_outage_is_retried_by_the_task(program, fake):
    from affiliates.provisioning import promotion_code_sync_task

    coupon = _client(fake).v1.coupons.create(params={"percent_off": "10", "duration": "once"})
    FriendReward.objects.create(program=program, kind="percent", percent_bp=1000, stripe_coupon_id=coupon.id)
    jo = AffiliateFactory(program=program, code="JO", livemode=False)
    fake.fail_next("/v1/promotion_codes", 500, "api_error", method="GET")
    # Applied in process, Celery runs the retry at once (no countdown) and then the code exists.
    result = promotion_code_sync_task.apply(args=[jo.pk], throw=False)
    assert result.get() == "activated"
    assert len(_codes(fake, "JO")) == 1 and PromotionCode.objects.get(affiliate=jo).stripe_active


@pytest.mark.django_db
def test_a_code_taken_in_the_stripe_account_is_recorded_for_the_panel(program, fake):
    client = _client(fake)
    coupon = client.v1.coupons.create(params={"percent_off": "10", "duration": "once"})
    client.v1.promotion_codes.create(
        params={"code": "JO", "promotion": {"type": "coupon", "coupon": coupon.id}}
    )
    FriendReward.objects.create(program=program, kind="percent", percent_bp=1000, stripe_coupon_id=coupon.id)
    jo = AffiliateFactory(program=program, code="JO", livemode=False)
    assert promotion_code_sync(affiliate_id=jo.pk, now=timezone.now()) == "refused"
    row = PromotionCode.objects.get(affiliate=jo)
    assert "already exists" in row.stripe_error and not row.stripe_active


@pytest.mark.django_db
def test_editing_the_code_retires_the_old_one_and_makes_the_new(
    program, fake, django_capture_on_commit_callbacks
):
    jo = AffiliateFactory(program=program, code="JO", livemode=False)
    with django_capture_on_commit_callbacks(execute=True):
        friend_reward_set(program=program, group=None, actor=None, kind="percent", percent_bp=1500)
    with django_capture_on_commit_callbacks(execute=True):
        promotion_code_set(affiliate=jo, code="JOFRIENDS", actor=None)
    assert [p["active"] for p in _codes(fake, "JO")] == [False]
    assert [p["active"] for p in _codes(fake, "JOFRIENDS")] == [True]


@pytest.mark.django_db
def test_a_group_reward_overrides_the_programs_and_moves_its_members(
    program, fake, django_capture_on_commit_callbacks
):
    group = PartnerGroupFactory(program=program, name="VIP")
    vip = AffiliateFactory(program=program, code="VIP1", livemode=False, group=group)
    plain = AffiliateFactory(program=program, code="PLAIN", livemode=False)
    with django_capture_on_commit_callbacks(execute=True):
        base = friend_reward_set(program=program, group=None, actor=None, kind="percent", percent_bp=1000)
    with django_capture_on_commit_callbacks(execute=True):
        special = friend_reward_set(
            program=program, group=group, actor=None, kind="amount", amount_cents=1500, duration="forever"
        )
    base.refresh_from_db()
    special.refresh_from_db()
    assert fake.coupons[special.stripe_coupon_id]["amount_off"] == 1500
    active = {p["code"]: p["promotion"]["coupon"] for p in fake.promotion_codes if p["active"]}
    assert active == {"VIP1": special.stripe_coupon_id, "PLAIN": base.stripe_coupon_id}
    assert plain.pk and vip.pk


@pytest.mark.django_db
def test_bad_rewards_and_taken_codes_are_refused(program, affiliate):
    with pytest.raises(Invalid) as over:
        friend_reward_set(program=program, group=None, actor=None, kind="percent", percent_bp=12_000)
    assert over.value.errors == {"percent_bp": ["A percent discount is at most 100 %."]}
    with pytest.raises(Invalid) as currency:
        friend_reward_set(
            program=program, group=None, actor=None, kind="amount", amount_cents=500, currency="EUR"
        )
    assert currency.value.errors == {"currency": ["The coupon's currency must be the program's, USD."]}
    other = AffiliateFactory(program=program, code="ANN")
    promotion_code_set(affiliate=other, code="ANN20", actor=None)
    with pytest.raises(Conflict):
        promotion_code_set(affiliate=affiliate, code="ann20", actor=None)
    with pytest.raises(Conflict):  # another affiliate's referral code is their default promotion code
        promotion_code_set(affiliate=other, code="JOHN", actor=None)
    assert not FriendReward.objects.exists()


@pytest.fixture
def pg(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are proven on PostgreSQL; SQLite serialises writers to one")


@pytest.mark.postgres
def test_ten_concurrent_runs_create_each_code_once(pg, fake):
    from tests.factories import ProgramFactory

    program = ProgramFactory(slug="promo-race")
    coupon = _client(fake).v1.coupons.create(params={"percent_off": "20", "duration": "once"})
    FriendReward.objects.create(program=program, kind="percent", percent_bp=2000, stripe_coupon_id=coupon.id)
    people = [AffiliateFactory(program=program, code=f"RACE{i}", livemode=False) for i in range(3)]
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run():
        try:
            barrier.wait()
            for person in people:
                outcomes.append(promotion_code_sync(affiliate_id=person.pk, now=timezone.now()))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    for person in people:
        made = _codes(fake, person.code)
        assert len(made) == 1 and made[0]["active"], made
        row = PromotionCode.objects.get(affiliate=person)
        assert row.stripe_id == made[0]["id"] and row.stripe_active and row.claimed_at is None
    assert outcomes.count("activated") == 3
    creates = [r for r in fake.requests if r.method == "POST" and r.path == "/v1/promotion_codes"]
    assert len(creates) == 3  # the claim kept the other runs from even asking

    # Suspension deactivates, return reactivates: ten runs each time, one change in Stripe.
    Affiliate.objects.filter(pk=people[0].pk).update(status="suspended")
    threads = [threading.Thread(target=run) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [p["active"] for p in _codes(fake, "RACE0")] == [False]
    Affiliate.objects.filter(pk=people[0].pk).update(status="active")
    threads = [threading.Thread(target=run) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [p["active"] for p in _codes(fake, "RACE0")] == [True]
    assert errors == []
