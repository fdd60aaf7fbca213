"""Friend rewards and promotion codes: the writes. Each is one transaction, audited, and queues the
Stripe side (`affiliates.provisioning`) on commit. The reads are in `affiliates.rewards`."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from refapp.models import Actor, audit_log
from refapp.money import MAX_AMOUNT_MINOR, is_currency

from .errors import Conflict, Invalid
from .models import PROMOTION_CODE_RE, Affiliate, FriendReward, PartnerGroup, Program, PromotionCode
from .provisioning import queue_promotion_code_sync, queue_reward_sync
from .rewards import promotion_code_taken

STRIPE_COUPON_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
# What an edit compares: a change of any of these is a new discount (a new coupon in Stripe).
_TERMS = ("kind", "percent_bp", "amount_cents", "currency", "duration", "duration_months")


def friend_reward_check(
    *,
    program: Program,
    kind: str,
    percent_bp: int | None,
    amount_cents: int | None,
    currency: str,
    duration: str,
    duration_months: int | None,
    stripe_coupon_id: str,
) -> dict:
    """The reward's fields, normalised, or Invalid with every problem at once (the panel's form
    and the API both answer these messages)."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if kind not in FriendReward.Kind.values:
        add("kind", "Choose percent or amount.")
    if duration not in FriendReward.Duration.values:
        add("duration", "Choose once, repeating or forever.")
    currency = (currency or "").upper()
    if kind == FriendReward.Kind.PERCENT:
        if percent_bp is None:
            add("percent_bp", "Give the percentage off.")
        elif percent_bp > 10_000:
            add("percent_bp", "A percent discount is at most 100 %.")
        elif percent_bp < 1:
            add("percent_bp", "A percent discount is more than 0 %.")
        amount_cents, currency = None, ""
    elif kind == FriendReward.Kind.AMOUNT:
        if amount_cents is None:
            add("amount_cents", "Give the amount off.")
        elif not 1 <= amount_cents <= MAX_AMOUNT_MINOR:
            add("amount_cents", "The amount off is more than 0 and less than any real order.")
        if not currency:
            currency = program.currency
        elif not is_currency(currency):
            add("currency", f"{currency!r} is not an ISO 4217 currency code.")
        elif currency != program.currency:
            add("currency", f"The coupon's currency must be the program's, {program.currency}.")
        percent_bp = None
    if duration == FriendReward.Duration.REPEATING:
        if duration_months is None:
            add("duration_months", "Give the number of months the discount lasts.")
        elif not 1 <= duration_months <= 120:
            add("duration_months", "Between 1 and 120 months.")
    else:
        duration_months = None
    stripe_coupon_id = (stripe_coupon_id or "").strip()
    if stripe_coupon_id and not STRIPE_COUPON_RE.match(stripe_coupon_id):
        add("stripe_coupon_id", "A Stripe coupon id has letters, digits, '-' or '_'.")
    if errors:
        raise Invalid(errors)
    return {
        "kind": kind,
        "percent_bp": percent_bp,
        "amount_cents": amount_cents,
        "currency": currency,
        "duration": duration,
        "duration_months": duration_months,
        "stripe_coupon_id": stripe_coupon_id,
    }


def friend_reward_set(
    *,
    program: Program,
    group: PartnerGroup | None,
    actor: Actor | None,
    kind: str,
    percent_bp: int | None = None,
    amount_cents: int | None = None,
    currency: str = "",
    duration: str = FriendReward.Duration.ONCE,
    duration_months: int | None = None,
    stripe_coupon_id: str = "",
) -> FriendReward:
    """Create or change the program's reward (group None) or a group's. A changed discount is a new
    version: refapp makes a new coupon for it in Stripe (unless the admin names an existing coupon),
    and the promotion codes it reaches move to that coupon."""
    values = friend_reward_check(
        program=program,
        kind=kind,
        percent_bp=percent_bp,
        amount_cents=amount_cents,
        currency=currency,
        duration=duration,
        duration_months=duration_months,
        stripe_coupon_id=stripe_coupon_id,
    )
    if group is not None and group.program_id != program.pk:
        raise Invalid({"group": ["This group belongs to another program."]})
    given_coupon = values.pop("stripe_coupon_id")
    with transaction.atomic():
        reward = FriendReward.objects.select_for_update().filter(program=program, group=group).first()
        created = reward is None
        if reward is None:
            reward = FriendReward(program=program, group=group, version=0)
        changed = created or any(getattr(reward, k) != v for k, v in values.items())
        coupon_changed = given_coupon != (reward.stripe_coupon_id if not reward.coupon_managed else "")
        if not (changed or coupon_changed or not reward.is_active):
            return reward
        for name, value in values.items():
            setattr(reward, name, value)
        if changed:
            reward.version += 1
        if given_coupon:
            reward.stripe_coupon_id, reward.coupon_managed = given_coupon, False
        elif changed or not reward.coupon_managed:
            reward.stripe_coupon_id, reward.coupon_managed = "", True
        reward.is_active = True
        reward.stripe_error = ""
        try:
            with transaction.atomic():
                reward.save()
        except IntegrityError as exc:  # a concurrent first save of the same scope
            raise Conflict("group", "This reward was just created by another request.") from exc
        audit_log(
            actor=actor,
            action="friend_reward.created" if created else "friend_reward.updated",
            obj=reward,
            data={**values, "group": group.public_id if group else None, "stripe_coupon_id": given_coupon},
        )
        queue_reward_sync(reward.pk)
    return reward


def friend_reward_remove(*, reward: FriendReward, actor: Actor | None) -> FriendReward:
    """Stop offering the reward; the promotion codes it reached are deactivated in Stripe (a group's
    members fall back to the program's reward, if any)."""
    with transaction.atomic():
        locked = FriendReward.objects.select_for_update().get(pk=reward.pk)
        if not locked.is_active:
            return locked
        locked.is_active = False
        locked.save(update_fields=["is_active", "updated_at"])
        audit_log(actor=actor, action="friend_reward.removed", obj=locked)
        queue_reward_sync(locked.pk)
    return locked


def promotion_code_set(*, affiliate: Affiliate, code: str, actor: Actor | None) -> PromotionCode:
    """Give an affiliate another promotion code. Unique per program, among promotion codes and
    against the other affiliates' referral codes (their default promotion codes): Conflict when
    taken. In Stripe the old code is deactivated and the new one created (codes are fixed there)."""
    code = (code or "").strip()
    if not PROMOTION_CODE_RE.match(code):
        raise Invalid(
            {"promotion_code": ["Use 1 to 64 letters, digits or '-', starting with a letter or digit."]}
        )
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().select_related("program").get(pk=affiliate.pk)
        row = PromotionCode.objects.filter(affiliate=locked).first()
        if row is not None and row.code == code:
            return row
        if promotion_code_taken(program=locked.program, code=code, affiliate=locked):
            raise Conflict("promotion_code", f"The promotion code {code!r} is already taken in this program.")
        previous = row.code if row is not None else locked.code.replace("_", "-")
        if row is None:
            row = PromotionCode(program_id=locked.program_id, affiliate=locked, livemode=locked.livemode)
        row.code = code
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError as exc:  # a concurrent request took the code first
            raise Conflict("promotion_code", "The promotion code was taken by a concurrent request.") from exc
        audit_log(
            actor=actor,
            action="affiliate.promotion_code_changed",
            obj=locked,
            data={"from": previous, "to": code},
        )
        queue_promotion_code_sync(locked.pk)
    return row
