"""Helpers the portal pages share: an affiliate's links, their charts and terms, and when and how
much the next payout pays."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import ngettext

from affiliates.models import Affiliate, Program
from affiliates.portal_services import tax_details_complete
from commissions.calculation import choose_scope
from commissions.models import CommissionRule
from refapp.money import format_amount, to_decimal

PAYOUT_HOUR = 6  # payouts run on the program's payout day at 06:00 UTC


def referral_link(program: Program, code: str) -> str:
    """The program website with ?ref=CODE (kept valid when the website already has a query)."""
    parts = urlsplit(program.website)
    query = "&".join(p for p in (parts.query, urlencode({"ref": code})) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def go_link(program: Program, code: str) -> str:
    return settings.BASE_URL + reverse("go", kwargs={"program_slug": program.slug, "code": code})


def next_payout_at(program: Program, now: datetime) -> datetime:
    """The next scheduled payout run: the program's payout day at 06:00 UTC, this month or next."""
    run = datetime.combine(now.date().replace(day=program.payout_day), time(PAYOUT_HOUR), tzinfo=UTC)
    if run <= now:
        first_next = (now.date().replace(day=1) + timedelta(days=32)).replace(day=program.payout_day)
        run = datetime.combine(first_next, time(PAYOUT_HOUR), tzinfo=UTC)
    return run


def payout_estimate(balances: dict, run: datetime, carried_cents: int = 0) -> dict:
    """What the next run would pay: approved money plus pending money that unlocks before it, plus
    what is carried into it (a reversed transfer that the program's admins decided to pay again)."""
    unlocking = sum(u["amount_cents"] for u in balances["unlocks"] if u["day"] < run.date())
    expected = balances["approved_cents"] + unlocking + carried_cents
    minimum = balances["minimum_payout_cents"]
    return {
        "run_at": run,
        "expected_cents": expected,
        "unlocking_cents": unlocking,
        "carried_cents": carried_cents,
        "reaches_minimum": expected > 0 and expected >= minimum,
        "short_cents": max(0, minimum - expected),
    }


def affiliate_charts(currency: str, current: dict, previous: dict) -> list[dict]:
    """Clicks, conversions and earnings per day, one measure a chart, beside the previous period
    (the shape static/js/app.js draws, as the panel's charts: refapp/panel/charts.py)."""

    def chart(key: str, title: str, unit: str) -> dict:
        def values(series: dict) -> list:
            # Decimal strings, not floats: the chart reads them as numbers, the amounts stay exact.
            return [str(to_decimal(v, currency)) for v in series[key]] if unit == "money" else series[key]

        return {
            "json_id": f"portal-chart-{key}",
            "title": title,
            "unit": unit,
            "currency": currency,
            "labels": current["labels"],
            "series": [
                {"label": "This period", "data": values(current)},
                {
                    "label": "Previous period",
                    "data": values(previous),
                    "labels": previous["labels"],
                    "previous": True,
                },
            ],
        }

    return [
        chart("clicks", "Clicks", "count"),
        chart("conversions", "Conversions", "count"),
        chart("earnings_cents", f"Earnings ({currency})", "money"),
    ]


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def rule_terms(rule: CommissionRule, currency: str) -> str:
    """A rule as its affiliate reads it: "20 % of each sale, for 12 months after the customer's first event"."""
    event = rule.event_name
    if rule.type == CommissionRule.Type.PERCENT:
        text = f"{Decimal(rule.rate_bp or 0) / 100:f} % of each {event}"
    else:
        text = f"{format_amount(rule.amount_cents or 0, currency)} per {event}"
    extras = []
    for tier in sorted(rule.tiers or [], key=lambda t: t["min_cents"]):
        extras.append(
            f"{Decimal(tier['rate_bp']) / 100:f} % once your referred revenue in a calendar month "
            f"reaches {format_amount(tier['min_cents'], currency)}"
        )
    if rule.first_event_only:
        extras.append(f"on each customer's first {event} only")
    if rule.duration_months:
        months = rule.duration_months
        extras.append(
            ngettext(
                "for %(n)d month after the customer was referred",
                "for %(n)d months after the customer was referred",
                months,
            )
            % {"n": months}
        )
    if rule.max_events:
        extras.append(
            ngettext(
                "for at most %(n)d %(event)s per customer",
                "for at most %(n)d %(event)ss per customer",
                rule.max_events,
            )
            % {"n": rule.max_events, "event": event}
        )
    return text + (f"; {'; '.join(extras)}" if extras else "")


def commission_terms(program: Program, affiliate: Affiliate | None = None) -> dict[str, Any]:
    """What an affiliate of `program` earns and when it is paid, from the rules the pipeline applies.

    For each event name with active live rules, `commissions.calculation.choose_scope` picks the
    scope exactly as it does for a conversion: the affiliate's own rules, else their active group's,
    else the program's. Without an affiliate (the join page) a newcomer has no group yet: the
    program-wide rules.
    """
    own = Q(affiliate__isnull=True) | Q(affiliate=affiliate) if affiliate else Q(affiliate__isnull=True)
    rows = CommissionRule.objects.filter(own, program=program, livemode=True, is_active=True).order_by("pk")
    by_event: dict[str, list[CommissionRule]] = {}
    for rule in rows.select_related("group"):
        by_event.setdefault(rule.event_name, []).append(rule)
    currency = program.currency
    rules = []
    for event, candidates in sorted(by_event.items()):
        if affiliate is not None:
            scope, chosen = choose_scope(candidates, affiliate_id=affiliate.pk, group_id=affiliate.group_id)
        else:
            scope, chosen = "program", [r for r in candidates if r.group_id is None]
        if not chosen:
            continue
        rules.append(
            {
                "event": event,
                "scope": scope,
                "group": chosen[0].group.name if scope == "group" else "",
                "lines": [rule_terms(rule, currency) for rule in chosen],
            }
        )
    return {
        "rules": rules,
        "hold_days": program.hold_days,
        "cookie_days": program.cookie_days,
        "first_click": program.attribution_model == Program.Attribution.FIRST_CLICK,
        "minimum_payout_cents": program.minimum_payout_cents,
        "payout_day": _ordinal(program.payout_day),
        "currency": currency,
    }


def tax_hold(affiliate: Affiliate) -> bool:
    """Whether the program holds this affiliate's payouts until they enter their tax details (the
    payout preview says the same: payouts.services.TAX_HOLD)."""
    return affiliate.program.require_tax_details and affiliate.pk not in tax_details_complete([affiliate.pk])
