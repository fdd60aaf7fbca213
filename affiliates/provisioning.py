"""Friend rewards in Stripe: the coupon of a reward and one promotion code per affiliate.

Exactly once, however many runs overlap (a retried job, the approval and the background sweep at
the same moment, ten workers):
1. a run first *claims* the affiliate's promotion-code row with a compare-and-set on `claimed_at`;
   a run that finds it claimed (and the claim fresh) leaves it to the claimant;
2. the claimant calls Stripe outside any transaction: it first lists Stripe's promotion codes with
   this code and adopts the one refapp made (its metadata names the row), else creates it with an
   idempotency key naming the row, the coupon and the code, so a run that crashed after Stripe
   answered but before recording gets the same object back instead of a second one;
3. it records what Stripe holds and releases the claim, then looks again (the affiliate may have
   been suspended meanwhile) until nothing is left to do.
A transient Stripe error releases the claim and is retried by the task with growing delays; a
permanent one (the code taken in the Stripe account, a deleted coupon) is recorded on the row for
the panel. Only affiliates of the key's mode have Stripe objects: a live key provisions live
affiliates, a test key test affiliates (Stripe's test-mode webhooks feed refapp's test mode).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import stripe
from celery import shared_task
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from refapp.models import Actor, audit_log
from refapp.stripe_api import PERMANENT_ERRORS, stripe_client, stripe_enabled, stripe_livemode

from .models import Affiliate, FriendReward, PromotionCode
from .rewards import default_promotion_code, reward_for

log = logging.getLogger(__name__)

TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, OperationalError)
# A claim older than this belongs to a run that died: the next run takes it over (the idempotency
# key and the list-by-code make that safe).
CLAIM_TTL = timedelta(minutes=2)
ACTOR = Actor("system:stripe-provisioning")


# --- queueing (on commit, from the services that change what Stripe should hold) ------------------


def queue_promotion_code_sync(affiliate_id: int) -> None:
    if stripe_enabled():
        transaction.on_commit(lambda: promotion_code_sync_task.delay(affiliate_id))


def queue_reward_sync(reward_id: int) -> None:
    if stripe_enabled():
        transaction.on_commit(lambda: friend_reward_sync_task.delay(reward_id))


@shared_task(name="affiliates.promotion_code_sync", bind=True, acks_late=True, max_retries=10)
def promotion_code_sync_task(self, affiliate_id: int) -> str:
    try:
        return promotion_code_sync(affiliate_id=affiliate_id, now=timezone.now())
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(3600, 5 * 2**self.request.retries)) from exc


@shared_task(name="affiliates.friend_reward_sync", bind=True, acks_late=True, max_retries=10)
def friend_reward_sync_task(self, reward_id: int) -> str:
    try:
        return friend_reward_sync(reward_id=reward_id, now=timezone.now())
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(3600, 5 * 2**self.request.retries)) from exc


# --- the coupon ---------------------------------------------------------------------------------


def coupon_params(reward: FriendReward) -> dict:
    params: dict = {"duration": reward.duration, "name": reward.describe()[:40]}
    if reward.kind == FriendReward.Kind.PERCENT:
        # Stripe takes a percentage with up to two decimals; the reward keeps basis points.
        params["percent_off"] = f"{reward.percent_bp / 100:.2f}"
    else:
        params["amount_off"] = reward.amount_cents
        params["currency"] = reward.currency.lower()
    if reward.duration == FriendReward.Duration.REPEATING:
        params["duration_in_months"] = reward.duration_months
    params["metadata"] = {"refapp_friend_reward": str(reward.pk), "refapp_version": str(reward.version)}
    return params


def friend_reward_sync(*, reward_id: int, now: datetime) -> str:
    """Create the reward's coupon in Stripe when refapp manages it and it has none for this version,
    then sync the promotion code of every affiliate the reward reaches. Safe to run twice."""
    reward = FriendReward.objects.filter(pk=reward_id).select_related("program").first()
    if reward is None or not stripe_enabled():
        return "nothing to do"
    if reward.is_active and reward.coupon_managed and not reward.stripe_coupon_id:
        try:
            coupon = stripe_client().v1.coupons.create(
                params=coupon_params(reward),
                options={"idempotency_key": f"refapp-coupon-{reward.pk}-v{reward.version}"},
            )
        except PERMANENT_ERRORS as exc:
            FriendReward.objects.filter(pk=reward.pk, version=reward.version).update(
                stripe_error=str(getattr(exc, "user_message", None) or exc)[:500]
            )
            return "coupon refused"
        # Only for the version it was made for: an edit meanwhile needs its own coupon.
        updated = FriendReward.objects.filter(
            pk=reward.pk, version=reward.version, stripe_coupon_id=""
        ).update(stripe_coupon_id=coupon.id, stripe_error="")
        if updated:
            audit_log(
                actor=ACTOR, action="friend_reward.coupon_created", obj=reward, data={"coupon": coupon.id}
            )
    for affiliate_id in affiliates_reached(reward):
        promotion_code_sync_task.delay(affiliate_id)
    return "synced"


def affiliates_reached(reward: FriendReward) -> list[int]:
    """Affiliates (of the key's mode) whose code this reward's change may touch: the group's members for a group
    reward, every live affiliate of the program for the program's reward (those with another
    group's reward are checked and left alone), and anyone with a code already in Stripe."""
    people = Affiliate.objects.filter(program_id=reward.program_id, livemode=stripe_livemode())
    if reward.group_id is not None:
        people = people.filter(group_id=reward.group_id)
    wanted = Q(status=Affiliate.Status.ACTIVE) | Q(promotion_code__stripe_active=True)
    return list(people.filter(wanted).order_by("pk").values_list("pk", flat=True))


def sweep_all(program_id: int) -> int:
    """Queue a sync of every affiliate of a program in the key's mode (the background catch-up)."""
    ids = list(
        Affiliate.objects.filter(program_id=program_id, livemode=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for affiliate_id in ids:
        promotion_code_sync_task.delay(affiliate_id)
    return len(ids)


# --- one affiliate's promotion code ---------------------------------------------------------------


def _wanted(affiliate: Affiliate) -> tuple[str, bool]:
    """(coupon id, active) that Stripe should hold for this affiliate; no coupon: nothing wanted."""
    reward = reward_for(affiliate)
    coupon = reward.stripe_coupon_id if reward is not None else ""
    return coupon, bool(coupon) and affiliate.is_active


def _in_sync(row: PromotionCode, coupon: str, active: bool) -> bool:
    if not active:
        return not row.stripe_active
    return (
        bool(row.stripe_id)
        and row.stripe_active
        and row.stripe_coupon_id == coupon
        and row.stripe_code == row.code
    )


def _row(affiliate: Affiliate) -> PromotionCode | None:
    row = PromotionCode.objects.filter(affiliate=affiliate).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return PromotionCode.objects.create(
                program_id=affiliate.program_id,
                affiliate=affiliate,
                livemode=affiliate.livemode,
                code=default_promotion_code(affiliate),
            )
    except IntegrityError:
        # A concurrent run created it, or another affiliate's edited code is this one's default.
        return PromotionCode.objects.filter(affiliate=affiliate).first()


def _claim(row: PromotionCode, now: datetime) -> bool:
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TTL)
    return PromotionCode.objects.filter(free, pk=row.pk).update(claimed_at=now) == 1


def promotion_code_sync(*, affiliate_id: int, now: datetime) -> str:
    """Make Stripe hold what the affiliate's promotion code should be: created for an active
    affiliate with a reward that has a coupon, deactivated when they are suspended or the reward
    goes, reactivated when they return; a new object when the coupon or the code changed (both are
    fixed in Stripe). Returns what it did. Raises a TRANSIENT error for the task to retry."""
    if not stripe_enabled():
        return "stripe not configured"
    did = "in sync"
    for _ in range(4):  # a change during a run makes the next round do it
        affiliate = Affiliate.objects.filter(pk=affiliate_id, livemode=stripe_livemode()).first()
        if affiliate is None:
            return "no affiliate of the Stripe key's mode"
        coupon, active = _wanted(affiliate)
        row = PromotionCode.objects.filter(affiliate=affiliate).first()
        if row is None and not active:
            return did
        row = row or _row(affiliate)
        if row is None:
            return "code taken"
        if _in_sync(row, coupon, active):
            return did
        if not _claim(row, now):
            return "claimed by another run"
        # What was read before the claim may be another run's state from before it finished: the
        # claim's holder reads the row again, so a finished run's work is not done (and reported) twice.
        row.refresh_from_db()
        if _in_sync(row, coupon, active):
            PromotionCode.objects.filter(pk=row.pk).update(claimed_at=None)
            return did
        try:
            state = _push(row, coupon, active)
        except PERMANENT_ERRORS as exc:
            message = str(getattr(exc, "user_message", None) or exc)[:500]
            PromotionCode.objects.filter(pk=row.pk).update(claimed_at=None, stripe_error=message)
            log.warning("promotion code %s refused by Stripe: %s", row.code, message)
            return "refused"
        except BaseException:
            PromotionCode.objects.filter(pk=row.pk).update(claimed_at=None)
            raise
        with transaction.atomic():
            PromotionCode.objects.filter(pk=row.pk).update(
                **state, claimed_at=None, stripe_error="", synced_at=now
            )
            audit_log(
                actor=ACTOR,
                action="promotion_code.synced",
                obj=affiliate,
                data={"code": row.code, **{k: v for k, v in state.items() if k != "stripe_code"}},
            )
        did = "activated" if state["stripe_active"] else "deactivated"
    return did


def _push(row: PromotionCode, coupon: str, active: bool) -> dict:
    """The Stripe calls, outside any transaction; returns the row's new stripe_* fields."""
    client = stripe_client()
    stripe_id, stripe_active = row.stripe_id, row.stripe_active
    stripe_coupon, stripe_code = row.stripe_coupon_id, row.stripe_code
    if stripe_id and (stripe_coupon != coupon or stripe_code != row.code):
        # Coupon and code are fixed in Stripe: retire this object; a new one follows if wanted.
        if stripe_active:
            client.v1.promotion_codes.update(stripe_id, params={"active": False})
        stripe_id, stripe_active = "", False
    if stripe_id and stripe_active != active:
        client.v1.promotion_codes.update(stripe_id, params={"active": active})
        stripe_active = active
    elif not stripe_id and active:
        mine = [
            found
            for found in client.v1.promotion_codes.list(params={"code": row.code, "limit": 100}).data
            if (found.to_dict().get("metadata") or {}).get("refapp_promotion_code") == str(row.pk)
            and _coupon_of(found.to_dict()) == coupon
        ]
        if mine:
            found = mine[0]
        else:
            found = client.v1.promotion_codes.create(
                params={
                    "code": row.code,
                    "promotion": {"type": "coupon", "coupon": coupon},
                    "metadata": {
                        "refapp_promotion_code": str(row.pk),
                        "refapp_affiliate": row.affiliate.public_id,
                    },
                },
                options={"idempotency_key": f"refapp-promo-{row.pk}-{coupon}-{row.code_key}"},
            )
        stripe_id = found.id
        if not found.active:
            client.v1.promotion_codes.update(stripe_id, params={"active": True})
        stripe_active, stripe_coupon, stripe_code = True, coupon, row.code
    return {
        "stripe_id": stripe_id,
        "stripe_active": stripe_active,
        "stripe_coupon_id": stripe_coupon if stripe_id else "",
        "stripe_code": stripe_code if stripe_id else "",
    }


def _coupon_of(promotion_code: dict) -> str:
    promotion = promotion_code.get("promotion") or {}
    coupon = promotion.get("coupon")
    return coupon if isinstance(coupon, str) else (coupon or {}).get("id", "")
