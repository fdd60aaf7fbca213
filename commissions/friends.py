"""What a customer referrer earns for a friend (refer-a-friend, issue 16 item 4).

A customer referrer (an `Affiliate` of kind `customer`) is attributed, tied to customers and given
commission rows exactly like an affiliate; only the amount is decided here, by the program's
customer-reward settings instead of its commission rules (docs/decisions.md):

- one reward per referred friend: the friend's first `sale` event (later sales, renewals and other
  events stay attributed to the referrer and earn nothing);
- a fixed amount, or a percent of that sale, rounded half up once;
- `reward` in the commission's inputs says how it is settled: `cash` (paid out like an affiliate's
  commission) or `credit` (once approved, credited to the referrer's Stripe customer balance by
  `payouts.credits`);
- limits per referrer: rewarded referrals per calendar year (UTC, by the sale's time) and a lifetime
  cap on what the rewards add up to (net of reversals). Past a limit the friend's sale still makes
  a commission row, rejected with amount 0, whose reason and inputs say which limit stopped it; the
  reward that would cross the cap is cut to what remains of it.

The limits are counted under a lock of the referrer's row, so concurrent sales of two friends of
one referrer cannot both take the last place. The PostgreSQL writer (`ingest_pg`) takes no locks,
so it hands every conversion of a customer referrer to the ORM writer, which comes here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Sum

from affiliates.models import Affiliate, CustomerRewardType
from refapp.ids import new_public_id
from refapp.instances import unsaved
from refapp.models import Actor
from refapp.money import format_amount, percent_of
from tracking.models import Event

from .calculation import ReferralHistory
from .models import Commission
from .pipeline import commissions_audit, fraud_flag, self_referral

FRIEND_EVENT = "sale"


def _year_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, start.replace(year=start.year + 1)


def rewarded_referrals_in_year(*, affiliate_id: int, livemode: bool, moment: datetime) -> int:
    """Friends whose reward counts towards the yearly limit: commissions that earn something and
    were not rejected, of sales in the calendar year of `moment`."""
    start, end = _year_bounds(moment)
    return (
        Commission.objects.filter(
            affiliate_id=affiliate_id,
            livemode=livemode,
            kind=Commission.Kind.COMMISSION,
            amount_cents__gt=0,
            event__occurred_at__gte=start,
            event__occurred_at__lt=end,
        )
        .exclude(status=Commission.Status.REJECTED)
        .count()
    )


def rewards_earned(*, affiliate_id: int, livemode: bool) -> int:
    """What the referrer's rewards add up to, reversals netted, rejected rows left out."""
    total = (
        Commission.objects.filter(affiliate_id=affiliate_id, livemode=livemode)
        .exclude(status=Commission.Status.REJECTED)
        .aggregate(total=Sum("amount_cents"))["total"]
    )
    return total or 0


def friend_reward_rows(
    *,
    event: Event,
    affiliate: Affiliate,
    referral,
    method: str,
    ip_seen: Callable[[], bool],
    actor: Actor,
    now: datetime,
) -> tuple[list[Commission], list[Any]]:
    """The unsaved reward commission of a saved, attributed event of an active customer referrer,
    and the rows written with it (fraud flag, audit row); nothing when the event earns no reward.
    Runs inside the writer's transaction: it locks the referrer's row before counting the limits."""
    program = event.program
    if event.name != FRIEND_EVENT:
        return [], []
    history = ReferralHistory(event=event, affiliate_id=affiliate.pk, referral_id=referral.pk)
    if history.has_earlier_event():
        return [], []  # one reward per friend: their first sale
    inputs: dict[str, Any] = {
        "scope": "customer_referrer",
        "reward": program.customer_reward_kind,
        "type": program.customer_reward_type,
        "event_amount_cents": event.amount_cents,
        "currency": event.currency,
    }
    if program.customer_reward_type == CustomerRewardType.PERCENT:
        inputs["rate_bp"] = program.customer_reward_rate_bp
        amount = percent_of(event.amount_cents, program.customer_reward_rate_bp)
    else:
        inputs["fixed_cents"] = program.customer_reward_amount_cents
        amount = program.customer_reward_amount_cents
    if amount <= 0:
        return [], []
    inputs["amount_cents"] = amount

    # Serialise the limit checks of one referrer (their row's lock lasts to the writer's commit).
    Affiliate.objects.select_for_update().filter(pk=affiliate.pk).values_list("pk", flat=True).first()
    status, reason = Commission.Status.PENDING, ""
    suspicion = None
    if event.customer_id and event.customer_id == affiliate.customer_id:
        status, reason = (
            Commission.Status.REJECTED,
            "self-referral: the friend is the referrer's own customer id",
        )
    else:
        suspicion = self_referral(event, affiliate, ip_seen)
        if suspicion:
            status, reason = Commission.Status.REJECTED, suspicion[1]
    if status == Commission.Status.PENDING:
        status, reason, amount = _apply_limits(event=event, affiliate=affiliate, amount=amount, inputs=inputs)
    commission = unsaved(
        Commission,
        public_id=new_public_id("com"),
        program=program,
        livemode=event.livemode,
        affiliate=affiliate,
        event=event,
        rule=None,
        amount_cents=amount,
        currency=event.currency,
        status=status,
        status_reason=reason[:500],
        hold_until=event.occurred_at + timedelta(days=program.hold_days),
        inputs={**inputs, "attribution": method, "event": event.name, "order_id": event.order_id},
        created_at=now,
    )
    extra: list[Any] = []
    if suspicion:
        extra.append(
            fraud_flag(
                event=event, affiliate=affiliate, suspicion=suspicion, commissions=[commission], now=now
            )
        )
    extra.append(commissions_audit(event=event, commissions=[commission], actor=actor))
    return [commission], extra


def _apply_limits(
    *, event: Event, affiliate: Affiliate, amount: int, inputs: dict[str, Any]
) -> tuple[str, str, int]:
    """(status, reason, amount) after the referrer's yearly limit and lifetime cap; notes in inputs."""
    program = event.program
    yearly = program.customer_reward_max_per_year
    if yearly is not None:
        rewarded = rewarded_referrals_in_year(
            affiliate_id=affiliate.pk, livemode=event.livemode, moment=event.occurred_at
        )
        if rewarded >= yearly:
            inputs.update(limit="max_per_year", rewarded_this_year=rewarded, would_have_paid_cents=amount)
            inputs["amount_cents"] = 0
            return (
                Commission.Status.REJECTED,
                f"limit reached: {rewarded} rewarded referrals in {event.occurred_at.year} "
                f"(at most {yearly} a year); recorded without a reward",
                0,
            )
    cap = program.customer_reward_lifetime_cap_cents
    if cap is not None:
        earned = rewards_earned(affiliate_id=affiliate.pk, livemode=event.livemode)
        remaining = cap - earned
        if remaining <= 0:
            inputs.update(limit="lifetime_cap", earned_cents=earned, would_have_paid_cents=amount)
            inputs["amount_cents"] = 0
            return (
                Commission.Status.REJECTED,
                f"limit reached: lifetime cap of {format_amount(cap, event.currency)} already earned; "
                "recorded without a reward",
                0,
            )
        if amount > remaining:
            inputs.update(limit="lifetime_cap_partial", earned_cents=earned, would_have_paid_cents=amount)
            inputs["amount_cents"] = remaining
            return Commission.Status.PENDING, "", remaining
    return Commission.Status.PENDING, "", amount
