"""Which rules apply to an event and what each pays (docs/architecture.md, "Domain rules").

The arithmetic is in pure functions so property tests can hammer it; the database reads that feed
it (prior events, monthly revenue) are in `ReferralHistory`, asked only by a rule that needs them.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Q, Sum

from affiliates.models import Affiliate, PartnerGroup, Program
from refapp.money import percent_of
from tracking.models import Event

from .models import Commission, CommissionRule


def tier_rate(
    base_rate_bp: int, tiers: list[dict[str, int]], monthly_revenue_cents: int
) -> tuple[int, dict | None]:
    """The rate of the highest tier whose threshold the month's revenue reached, else the base rate."""
    chosen = None
    for tier in sorted(tiers, key=lambda t: t["min_cents"]):
        if monthly_revenue_cents >= tier["min_cents"]:
            chosen = tier
    return (chosen["rate_bp"], chosen) if chosen else (base_rate_bp, None)


def rule_amount(
    *, rule_type: str, event_amount_cents: int, rate_bp: int | None, fixed_cents: int | None
) -> int:
    """Minor units a rule pays for one event: percent rounds half up once; fixed is the fixed amount."""
    if rule_type == CommissionRule.Type.PERCENT:
        return percent_of(event_amount_cents, rate_bp or 0)
    return fixed_cents or 0


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, add_months(start, 1)


def active_rules(*, program: Program, livemode: bool, affiliate: Affiliate, event_name: str):
    """The active rules of an event name and mode, program-wide or the affiliate's own, in
    primary-key order: a test rule never pays a live event, nor a live rule a test event.

    Runs for every conversion, so it is one plain query on the (program, event name, active) index,
    without joins; `choose_scope` sorts its rows into scopes.
    """
    return CommissionRule.objects.filter(
        Q(affiliate__isnull=True) | Q(affiliate=affiliate),
        program=program,
        livemode=livemode,
        event_name=event_name,
        is_active=True,
    ).order_by("pk")


def rules_for(
    *, program: Program, affiliate: Affiliate, event_name: str, livemode: bool = True
) -> tuple[str, list[CommissionRule]]:
    """The most specific scope with active rules for this event name, and all its rules (they stack);
    the group's state is read only when the affiliate's group has rules."""
    rows = active_rules(program=program, livemode=livemode, affiliate=affiliate, event_name=event_name)
    return choose_scope(rows, affiliate_id=affiliate.pk, group_id=affiliate.group_id)


def choose_scope(
    rows: Iterable[CommissionRule], *, affiliate_id: int, group_id: int | None
) -> tuple[str, list[CommissionRule]]:
    """Sort active rules of one event name (program-wide or this affiliate's) into the winning scope."""
    candidates = [r for r in rows if r.group_id is None or r.group_id == group_id]
    rules = [r for r in candidates if r.affiliate_id == affiliate_id]
    if rules:
        return "affiliate", rules
    rules = [r for r in candidates if r.group_id is not None]
    # A deactivated group keeps its members, but its rules no longer apply to them.
    if rules and PartnerGroup.objects.filter(pk=group_id, is_active=True).exists():
        return "group", rules
    return "program", [r for r in candidates if r.affiliate_id is None and r.group_id is None]


@dataclass
class Computed:
    rule: CommissionRule
    amount_cents: int
    inputs: dict[str, Any]


class ReferralHistory:
    """What some rules need to know about the referral and the affiliate's month, read only on demand.

    `event` may be saved (the ORM write path: rows with its pk are left out) or not yet (the
    PostgreSQL write path reads before it inserts); `referral_id` is None for a referral that this
    very event creates, which has no history at all.
    """

    def __init__(self, *, event: Event, affiliate_id: int, referral_id: int | None):
        self.event = event
        self.affiliate_id = affiliate_id
        self.referral_id = referral_id

    def has_earlier_event(self) -> bool:
        if self.referral_id is None:
            return False
        earlier = Event.objects.filter(referral_id=self.referral_id, name=self.event.name)
        if self.event.pk:
            earlier = earlier.filter(pk__lt=self.event.pk)
        return earlier.exists()

    def commissions_earned(self, rule: CommissionRule) -> int:
        if self.referral_id is None:
            return 0
        earned = Commission.objects.filter(
            rule=rule, event__referral_id=self.referral_id, kind=Commission.Kind.COMMISSION
        )
        if self.event.pk:
            earned = earned.exclude(event_id=self.event.pk)
        return earned.count()

    def monthly_revenue(self) -> int:
        """Net referred revenue of the event's month, this event included: the sale that crosses a
        threshold already earns the higher tier."""
        event = self.event
        start, end = month_bounds(event.occurred_at)
        earlier = Event.objects.filter(
            program_id=event.program_id,
            livemode=event.livemode,
            affiliate_id=self.affiliate_id,
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        if event.pk:
            earlier = earlier.exclude(pk=event.pk)
        total = earlier.aggregate(total=Sum(F("amount_cents") - F("refunded_cents")))["total"]
        return (total or 0) + event.amount_cents - event.refunded_cents


def evaluate_rules(
    *,
    scope: str,
    rules: list[CommissionRule],
    event: Event,
    referral_created_at: datetime,
    history: ReferralHistory,
) -> tuple[list[Computed], list[dict]]:
    """Apply the limits of each rule of the winning scope, then what each eligible rule pays."""
    computed: list[Computed] = []
    skipped: list[dict] = []
    monthly_revenue: int | None = None
    for rule in rules:
        if rule.first_event_only and history.has_earlier_event():
            skipped.append({"rule": rule.public_id, "reason": "first_event_only"})
            continue
        if rule.duration_months and event.occurred_at >= add_months(
            referral_created_at, rule.duration_months
        ):
            skipped.append({"rule": rule.public_id, "reason": "duration_months_elapsed"})
            continue
        if rule.max_events and history.commissions_earned(rule) >= rule.max_events:
            skipped.append({"rule": rule.public_id, "reason": "max_events_reached"})
            continue
        if rule.type == CommissionRule.Type.PERCENT and rule.tiers and monthly_revenue is None:
            monthly_revenue = history.monthly_revenue()
        computed.append(rule_pays(rule=rule, scope=scope, event=event, monthly_revenue=monthly_revenue))
    return computed, skipped


def rule_pays(*, rule: CommissionRule, scope: str, event: Event, monthly_revenue: int | None) -> Computed:
    """What one eligible rule pays for one event, with the inputs that explain it.

    monthly_revenue (the affiliate's net referred revenue of the event's month, the event included)
    is needed only by tiered percent rules. Shared by ingestion and the rule preview.
    """
    inputs: dict[str, Any] = {
        "rule": rule.public_id,
        "scope": scope,
        "type": rule.type,
        "event_amount_cents": event.amount_cents,
        "currency": event.currency,
    }
    rate_bp = rule.rate_bp
    if rule.type == CommissionRule.Type.PERCENT and rule.tiers:
        rate_bp, tier = tier_rate(rule.rate_bp or 0, rule.tiers, monthly_revenue or 0)
        inputs["monthly_revenue_cents"] = monthly_revenue
        inputs["tier"] = tier
    if rule.type == CommissionRule.Type.PERCENT:
        inputs["rate_bp"] = rate_bp
    else:
        inputs["fixed_cents"] = rule.amount_cents
    amount = rule_amount(
        rule_type=rule.type,
        event_amount_cents=event.amount_cents,
        rate_bp=rate_bp,
        fixed_cents=rule.amount_cents,
    )
    inputs["amount_cents"] = amount
    return Computed(rule=rule, amount_cents=amount, inputs=inputs)


# How an event reached its affiliate, told to the affiliate (portal) or to the program's staff
# (panel, API): the staff's pages must not say "your link".
_VIA = {
    "affiliate": {
        "customer": "a customer you referred earlier",
        "code": "your referral code",
        "coupon": "your promotion code",
        "click": "a click on your link",
        "": "your referral",
    },
    "staff": {
        "customer": "a customer the affiliate referred earlier",
        "code": "the affiliate's referral code",
        "coupon": "the affiliate's promotion code",
        "click": "a click on the affiliate's link",
        "": "the affiliate's referral",
    },
}


def explain(commission: Commission, *, reader: str = "affiliate") -> str:
    """One sentence a person understands: where the money came from and how it was computed.

    `reader` is "affiliate" (the portal) or "staff" (the panel and the API)."""
    from refapp.money import format_amount

    inputs = commission.inputs or {}
    currency = commission.currency
    if commission.kind == Commission.Kind.REVERSAL:
        return (
            f"Reverses {format_amount(-commission.amount_cents, currency)} of commission "
            f"{inputs.get('reverses', '')} because {inputs.get('reason', 'the order was refunded')}."
        )
    if inputs.get("imported"):
        # History brought in by an import (commissions/imports.py): no rule of ours computed it.
        text = (
            f"{format_amount(commission.amount_cents, currency)} for a {inputs.get('event', 'sale')} of "
            f"{format_amount(inputs.get('event_amount_cents', 0), currency)}, imported from "
            f"{inputs.get('format', 'another platform')} history (line {inputs.get('line', '?')} of the file)."
        )
        if commission.status == Commission.Status.PENDING:
            text += f" Unlocks on {commission.hold_until:%Y-%m-%d}."
        return text
    event_amount = format_amount(inputs.get("event_amount_cents", 0), currency)
    words = _VIA[reader]
    via = words.get(inputs.get("attribution", ""), words[""])
    if inputs.get("type") == "percent":
        rate = inputs.get("rate_bp", 0) / 100
        how = f"{rate:g} % of {event_amount}"
        if inputs.get("tier"):
            how += f" (tier reached with {format_amount(inputs.get('monthly_revenue_cents', 0), currency)} referred this month)"
        how += ", rounded half up"
    else:
        how = f"a fixed {format_amount(inputs.get('fixed_cents', 0), currency)}"
    text = f"{format_amount(commission.amount_cents, currency)} = {how}, for a {inputs.get('event', 'sale')} attributed through {via}."
    detail = inputs.get("attribution_detail") or {}
    if detail.get("why"):
        text += (
            f" {'Promotion code' if detail.get('won') == 'promotion_code' else 'Click'} won: {detail['why']}."
        )
    if commission.status == Commission.Status.PENDING:
        text += f" Unlocks on {commission.hold_until:%Y-%m-%d}."
    if commission.status == Commission.Status.REJECTED and commission.status_reason:
        text += f" Rejected: {commission.status_reason}."
    return text
