"""What a draft commission rule would have paid last month (the rules page).

The draft is applied on its own, as if it had always been in force, to the live attributed events
of last month (UTC) that it covers: its event name, and its scope (the program, a partner group's
members, or one affiliate). Eligibility follows the engine: `first_event_only` pays only a
referral's first event of that name, `duration_months` counts from the referral's creation,
`max_events` counts the referral's earlier events of that name, and a tiered rate uses the
affiliate's net revenue of the month up to and including the event. The amounts come from the
same `rule_pays` that ingestion uses. Reads only; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from affiliates.models import Affiliate, Program
from commissions.calculation import add_months, month_bounds, rule_pays
from commissions.models import Commission, CommissionRule
from tracking.models import Event

TOP = 10


@dataclass
class PreviewRow:
    affiliate: Affiliate
    events: int = 0
    amount_cents: int = 0


@dataclass
class RulePreview:
    start: datetime
    end: datetime  # exclusive
    events: int = 0  # events of the rule's name and scope in the month
    paid_events: int = 0
    amount_cents: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    current_cents: int = 0  # what the rules in force earned on those same events (not rejected)
    top: list[PreviewRow] = field(default_factory=list)
    affiliates: int = 0


def rule_preview(*, program: Program, rule: CommissionRule, now: datetime) -> RulePreview:
    """Apply an unsaved rule to last month's events; see the module docstring."""
    this_month, _ = month_bounds(now)
    start, end = month_bounds(add_months(this_month, -1))
    preview = RulePreview(start=start, end=end)
    same_name_before = (
        Event.objects.filter(referral=OuterRef("referral"), name=rule.event_name, pk__lt=OuterRef("pk"))
        .order_by()
        .values("referral")
        .annotate(n=Count("*"))
        .values("n")
    )
    events = Event.objects.filter(
        program=program,
        livemode=True,
        name=rule.event_name,
        affiliate__isnull=False,
        referral__isnull=False,
        occurred_at__gte=start,
        occurred_at__lt=end,
    )
    if rule.affiliate_id:
        events = events.filter(affiliate_id=rule.affiliate_id)
    elif rule.group_id:
        events = events.filter(affiliate__group_id=rule.group_id)
    events = list(
        events.select_related("referral", "affiliate")
        .annotate(earlier=Coalesce(Subquery(same_name_before, output_field=IntegerField()), Value(0)))
        .order_by("pk")
    )
    preview.events = len(events)
    if not events:
        return preview

    revenue_to_date = _monthly_revenue_to_date(program, events, start, end) if rule.tiers else {}
    scope = "affiliate" if rule.affiliate_id else "group" if rule.group_id else "program"
    rows: dict[int, PreviewRow] = {}
    for event in events:
        reason = _ineligible(rule, event)
        if reason:
            preview.skipped[reason] = preview.skipped.get(reason, 0) + 1
            continue
        paid = rule_pays(rule=rule, scope=scope, event=event, monthly_revenue=revenue_to_date.get(event.pk))
        row = rows.setdefault(event.affiliate_id, PreviewRow(affiliate=event.affiliate))
        row.events += 1
        row.amount_cents += paid.amount_cents
        preview.paid_events += 1
        preview.amount_cents += paid.amount_cents
    preview.affiliates = len(rows)
    preview.top = sorted(rows.values(), key=lambda r: (-r.amount_cents, r.affiliate.pk))[:TOP]
    preview.current_cents = (
        Commission.objects.filter(event__in=[e.pk for e in events], livemode=True)
        .exclude(status=Commission.Status.REJECTED)
        .aggregate(total=Sum("amount_cents"))["total"]
        or 0
    )
    return preview


def _ineligible(rule: CommissionRule, event: Event) -> str:
    if rule.first_event_only and event.earlier:
        return "first_event_only"
    if rule.duration_months and event.occurred_at >= add_months(
        event.referral.created_at, rule.duration_months
    ):
        return "duration_months_elapsed"
    if rule.max_events and event.earlier >= rule.max_events:
        return "max_events_reached"
    return ""


def _monthly_revenue_to_date(
    program: Program, events: list[Event], start: datetime, end: datetime
) -> dict[int, int]:
    """Event id → its affiliate's net revenue of the month up to and including it (in id order, as
    ingestion saw it), counting every event name, as the engine's tiers do."""
    month = (
        Event.objects.filter(
            program=program,
            livemode=True,
            affiliate_id__in={e.affiliate_id for e in events},
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        .annotate(net=F("amount_cents") - F("refunded_cents"))
        .order_by("pk")
        .values_list("pk", "affiliate_id", "net")
    )
    running: dict[int, int] = {}
    to_date: dict[int, int] = {}
    for pk, affiliate_id, net in month:
        running[affiliate_id] = running.get(affiliate_id, 0) + net
        to_date[pk] = running[affiliate_id]
    return to_date
