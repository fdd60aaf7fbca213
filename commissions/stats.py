"""Numbers for the dashboards of the panel (per program) and the portal (per affiliate).

Every figure is derived from the rows (clicks, attributed events and commissions) over a range of
UTC days [start, end] inclusive, read through the daily rollups (tracking.rollups for clicks,
commissions.rollups for the rest), which are exact to the last committed row. Conversions are
attributed events of any name; revenue is their amount net of refunds.

The conversion rate is CONVERSION_RATE_HELP: visitors who converted through their click (the first
event of a referral, attributed by the visitor's click, in the range; each visitor once) per unique
visitor. Renewals of a referred customer and sales by code or coupon are conversions, but no click
led to them, so they are left out of the rate; otherwise one clicked sale with two renewals reads
300 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate

from affiliates.models import Affiliate, Program
from tracking.models import Event
from tracking.rollups import click_totals

from . import rollups
from .models import Commission


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        """Exclusive upper bound: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


PRESETS = {
    "7": "Last 7 days",
    "30": "Last 30 days",
    "90": "Last 90 days",
    "month": "This month",
    "custom": "Custom",
}


def parse_range(
    params: dict[str, str], today: date, *, max_days: int = 3 * 366
) -> tuple[DateRange, str, dict[str, str]]:
    """A range from ?range=7|30|90|month|custom&start=&end=, with form errors instead of exceptions."""
    errors: dict[str, str] = {}
    preset = params.get("range") or "30"
    if preset == "month":
        return DateRange(today.replace(day=1), today), preset, errors
    if preset == "custom":
        try:
            start = date.fromisoformat(params.get("start", ""))
            end = date.fromisoformat(params.get("end", ""))
        except ValueError:
            errors["start"] = "Enter both dates as YYYY-MM-DD."
        else:
            if end < start:
                errors["end"] = "The end date is before the start date."
            elif (end - start).days >= max_days:
                errors["end"] = f"Choose at most {max_days} days."
            else:
                return DateRange(start, end), preset, errors
        preset = "30"
    if preset not in ("7", "30", "90"):
        preset = "30"
    days = int(preset)
    return DateRange(today - timedelta(days=days - 1), today), preset, errors


CONVERSION_RATE_HELP = (
    "Visitors who converted ÷ unique visitors. A visitor counts once, when their first purchase or "
    "signup came through their click on an affiliate link; renewals of a referred customer and "
    "sales by referral code or coupon count as conversions but not in the rate."
)


def _rate(numerator: int, denominator: int) -> float:
    return round(100 * numerator / denominator, 2) if denominator else 0.0


def converted_visitors(period: DateRange, *, livemode: bool = True, **owner: Any) -> int:
    """Distinct visitors with a referral whose first event falls in the range and was attributed
    through their click.

    `owner` is `program=` or `affiliate=`. Reads the range's click-attributed events through the
    (program | affiliate, occurred_at) index and probes each one's referral for an earlier event
    through the (referral, name) index: a customer's later events do not count, and a visitor who
    buys twice without a customer id (two referrals, one visitor) counts once in a range.
    """
    earlier = Event.objects.filter(referral_id=OuterRef("referral_id")).filter(
        Q(occurred_at__lt=OuterRef("occurred_at"))
        | Q(occurred_at=OuterRef("occurred_at"), pk__lt=OuterRef("pk"))
    )
    return (
        Event.objects.filter(
            **owner,
            livemode=livemode,
            affiliate__isnull=False,
            referral__isnull=False,
            attribution=Event.Attribution.CLICK,
            occurred_at__gte=period.start_at,
            occurred_at__lt=period.end_at,
        )
        .filter(~Exists(earlier))
        .aggregate(n=Count("visitor_id", distinct=True))["n"]
    )


def previous_period(period: DateRange) -> DateRange:
    """The range of the same length just before `period`: the charts' faint comparison."""
    length = period.end - period.start + timedelta(days=1)
    return DateRange(period.start - length, period.start - timedelta(days=1))


def _overview(
    days: list[date], clicks: dict, figures: dict[date, dict[str, int]], won: int
) -> tuple[dict, dict]:
    """The summary and the day-by-day series of one range, from the same daily rows."""
    click_count = sum(c for c, _ in clicks["days"].values())
    visitors = sum(v for _, v in clicks["days"].values())

    def total(name: str) -> int:
        return sum(day[name] for day in figures.values())

    conversions = total("conversions")
    summary = {
        "clicks": click_count,
        "visitors": visitors,
        "conversions": conversions,
        "converted_visitors": won,
        "conversion_rate": _rate(won, visitors),
        "revenue_cents": total("revenue_cents"),
        "commission_pending_cents": total("pending_cents"),
        # Money inside a payout that is being sent is still owed: shown with approved.
        "commission_approved_cents": total("approved_cents") + total("processing_cents"),
        "commission_paid_cents": total("paid_cents"),
    }
    empty = dict.fromkeys(("conversions", "revenue_cents", "earned_cents"), 0)
    series = {
        "labels": [d.isoformat() for d in days],
        "clicks": [clicks["days"].get(d, (0, 0))[0] for d in days],
        "conversions": [figures.get(d, empty)["conversions"] for d in days],
        "revenue_cents": [figures.get(d, empty)["revenue_cents"] for d in days],
        # Commissions earned that day (everything not rejected, reversals netted).
        "earnings_cents": [figures.get(d, empty)["earned_cents"] for d in days],
    }
    return summary, series


def program_overview(
    program: Program, period: DateRange, *, livemode: bool = True, rate: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, series) of a program's range, from the click and conversion rollups."""
    clicks = click_totals(period.start_at, period.end_at, program_id=program.pk)
    figures = rollups.program_days(program.pk, livemode, period.start, period.end)
    won = converted_visitors(period, livemode=livemode, program=program) if rate else 0
    return _overview(period.days, clicks, figures, won)


def program_summary(program: Program, period: DateRange, *, livemode: bool = True) -> dict[str, Any]:
    return program_overview(program, period, livemode=livemode)[0]


def program_series(program: Program, period: DateRange, *, livemode: bool = True) -> dict[str, Any]:
    return program_overview(program, period, livemode=livemode, rate=False)[1]


def top_affiliates(
    program: Program, period: DateRange, *, livemode: bool = True, limit: int = 10
) -> list[dict[str, Any]]:
    """The affiliates who brought the most revenue in the range, with their clicks and commissions."""
    rows = rollups.top_affiliates(program.pk, livemode, period.start, period.end, limit=limit)
    ids = [affiliate_id for affiliate_id, _ in rows]
    affiliates = Affiliate.objects.in_bulk(ids)
    totals = click_totals(period.start_at, period.end_at, affiliate_ids=ids, by_day=False)["affiliates"]
    clicks = {affiliate_id: count for affiliate_id, (count, _) in totals.items()}
    return [
        {
            "affiliate": affiliates[affiliate_id],
            "clicks": clicks.get(affiliate_id, 0),
            "conversions": figures["conversions"],
            "revenue_cents": figures["revenue_cents"],
            "commission_cents": figures["earned_cents"],
        }
        for affiliate_id, figures in rows
    ]


def affiliate_overview(
    affiliate: Affiliate, period: DateRange, *, livemode: bool = True, rate: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, series) of an affiliate's range, from the click and conversion rollups."""
    clicks = click_totals(period.start_at, period.end_at, affiliate_ids=[affiliate.pk])
    figures = rollups.affiliate_days(affiliate.pk, livemode, period.start, period.end)
    won = converted_visitors(period, livemode=livemode, affiliate=affiliate) if rate else 0
    return _overview(period.days, clicks, figures, won)


def affiliate_summary(affiliate: Affiliate, period: DateRange, *, livemode: bool = True) -> dict[str, Any]:
    return affiliate_overview(affiliate, period, livemode=livemode)[0]


def affiliate_series(affiliate: Affiliate, period: DateRange, *, livemode: bool = True) -> dict[str, Any]:
    return affiliate_overview(affiliate, period, livemode=livemode, rate=False)[1]


def affiliate_balances(affiliate: Affiliate, *, livemode: bool = True) -> dict[str, Any]:
    """All-time balances and when pending money unlocks, derived from the commission rows."""
    rows = Commission.objects.filter(affiliate=affiliate, livemode=livemode).exclude(
        status=Commission.Status.REJECTED
    )
    totals = {
        row["status"]: row["total"] or 0 for row in rows.values("status").annotate(total=Sum("amount_cents"))
    }
    unlocks = list(
        rows.filter(status=Commission.Status.PENDING)
        .annotate(day=TruncDate("hold_until"))
        .values("day")
        .annotate(total=Sum("amount_cents"))
        .order_by("day")
    )
    approved = totals.get(Commission.Status.APPROVED, 0)
    minimum = affiliate.program.minimum_payout_cents
    return {
        "pending_cents": totals.get(Commission.Status.PENDING, 0),
        "approved_cents": approved,
        "paid_cents": totals.get(Commission.Status.PAID, 0),
        "in_payout_cents": totals.get(Commission.Status.PROCESSING, 0),
        "unlocks": [{"day": row["day"], "amount_cents": row["total"] or 0} for row in unlocks],
        "minimum_payout_cents": minimum,
        "next_payout_cents": approved if approved >= minimum else 0,
        "short_of_minimum_cents": max(0, minimum - approved),
    }


def affiliate_conversions(affiliate: Affiliate, *, livemode: bool = True):
    return Event.objects.filter(affiliate=affiliate, livemode=livemode).order_by("-occurred_at", "-pk")


def flagged_affiliate_ids(program: Program) -> set[int]:
    from .models import FraudFlag

    return set(
        FraudFlag.objects.filter(program=program, status=FraudFlag.Status.OPEN).values_list(
            "affiliate_id", flat=True
        )
    )


__all__ = [
    "CONVERSION_RATE_HELP",
    "DateRange",
    "PRESETS",
    "affiliate_balances",
    "affiliate_conversions",
    "affiliate_overview",
    "affiliate_series",
    "affiliate_summary",
    "converted_visitors",
    "flagged_affiliate_ids",
    "parse_range",
    "previous_period",
    "program_overview",
    "program_series",
    "program_summary",
    "top_affiliates",
]
