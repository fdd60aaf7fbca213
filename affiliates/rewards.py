"""Friend rewards and promotion codes: the reads (docs/decisions.md, "Friend rewards").

Which reward an affiliate's audience gets (their active group's, else the program's), which
promotion code the affiliate has (their own row's, else their referral code with '_' made '-'), and
which affiliate a promotion code names. The writes are in `affiliates.promotions`, the Stripe side
in `affiliates.provisioning`.
"""

from __future__ import annotations

from django.db.models import Q, Value
from django.db.models.functions import Replace

from refapp.stripe_api import stripe_enabled

from .models import Affiliate, FriendReward, Program, PromotionCode


def default_promotion_code(affiliate: Affiliate) -> str:
    return affiliate.code.replace("_", "-")


def promotion_code_of(affiliate: Affiliate) -> str:
    """The affiliate's promotion code: edited or provisioned (a row), else their referral code.
    Lists read it with select_related("promotion_code"); Django remembers a missing row too."""
    try:
        return affiliate.promotion_code.code
    except PromotionCode.DoesNotExist:
        return default_promotion_code(affiliate)


def program_reward(program: Program) -> FriendReward | None:
    return FriendReward.objects.filter(program=program, group__isnull=True).first()


def program_offers_reward(program_id: int) -> bool:
    """Whether any reward of the program is active: without one, reward_for() is None for every
    affiliate of it, which the click path asks first and caches per program."""
    return FriendReward.objects.filter(program_id=program_id, is_active=True).exists()


def reward_for(affiliate: Affiliate) -> FriendReward | None:
    """The active reward of the affiliate's active group, else the program's active reward."""
    rewards = FriendReward.objects.filter(program_id=affiliate.program_id, is_active=True)
    if affiliate.group_id is not None:
        own = rewards.filter(group_id=affiliate.group_id, group__is_active=True).first()
        if own is not None:
            return own
    return rewards.filter(group__isnull=True).first()


def affiliate_by_promotion_code(*, program: Program, livemode: bool, code: str) -> Affiliate | None:
    """The active affiliate of this mode whose promotion code this is (case-insensitive), or None."""
    key = (code or "").strip().lower()
    if not key or len(key) > 64:
        return None
    active = Affiliate.objects.filter(program=program, livemode=livemode, status=Affiliate.Status.ACTIVE)
    row = PromotionCode.objects.filter(program=program, code_key=key).first()
    if row is not None:
        return active.filter(pk=row.affiliate_id).first()
    # No row: the code is an affiliate's default, their referral code (with '_' shown as '-').
    without_row = active.filter(promotion_code__isnull=True)
    found = without_row.filter(code_key=key).first()
    if found is None and "-" in key:
        found = (
            without_row.annotate(dashed=Replace("code_key", Value("_"), Value("-")))
            .filter(dashed=key)
            .first()
        )
    return found


def promotion_code_taken(*, program: Program, code: str, affiliate: Affiliate | None = None) -> bool:
    """Is this promotion code (or referral code, same namespace) someone else's in the program?"""
    key = code.lower()
    others = PromotionCode.objects.filter(program=program, code_key=key)
    people = Affiliate.objects.filter(program=program).filter(
        Q(code_key=key) | Q(code_key=key.replace("-", "_"))
    )
    if affiliate is not None:
        others = others.exclude(affiliate=affiliate)
        people = people.exclude(pk=affiliate.pk)
    return others.exists() or people.filter(promotion_code__isnull=True).exists()


def coupon_for(affiliate: Affiliate) -> dict[str, str] | None:
    """What a referred visitor of this affiliate is offered: {"code", "label"}, or None.

    With Stripe configured, only once the code is active in Stripe: a prefilled code that Stripe
    refuses at checkout would be worse than none.
    """
    if not affiliate.is_active:
        return None
    reward = reward_for(affiliate)
    if reward is None:
        return None
    row = PromotionCode.objects.filter(affiliate=affiliate).first()
    if stripe_enabled() and not (row is not None and row.stripe_active):
        return None
    code = row.code if row is not None else default_promotion_code(affiliate)
    return {"code": code, "label": reward.label_for(affiliate.name)}
