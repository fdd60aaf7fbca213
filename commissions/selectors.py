"""Reads for the panel's affiliate, commission and fraud pages and their CSV exports.

Affiliate listings live here rather than in `affiliates` because their figures (clicks, conversions,
earnings) come from `tracking` and `commissions`, and a lower app never imports a higher one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from affiliates.models import Affiliate, PartnerGroup, Program
from refapp.models import AuditLog
from refapp.money import exponent, format_amount
from tracking import rollups
from tracking.csv_export import decimal_amount
from tracking.models import Click, ClickDaily, Event
from tracking.selectors import between_days

from .models import Commission, CommissionRule, FraudFlag

# ?sort= values of the affiliates list → ORDER BY; the primary key breaks ties so pages are stable.
AFFILIATE_SORTS = {
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "created": ("created_at", "pk"),
    "-created": ("-created_at", "-pk"),
    "clicks": ("click_count", "pk"),
    "-clicks": ("-click_count", "-pk"),
    "conversions": ("conversion_count", "pk"),
    "-conversions": ("-conversion_count", "-pk"),
    "earnings": ("earnings_cents", "pk"),
    "-earnings": ("-earnings_cents", "-pk"),
}
DEFAULT_AFFILIATE_SORT = "-created"


def _scalar(queryset: QuerySet, aggregate) -> Coalesce:
    """A correlated subquery yielding one aggregate per outer affiliate (0 when there are no rows).

    Subqueries rather than joins: joining clicks, events and commissions at once would multiply the
    rows and the sums with them; each subquery reads one affiliate's rows through its own index.
    """
    inner = (
        queryset.filter(affiliate=OuterRef("pk"))
        .order_by()
        .values("affiliate")
        .annotate(value=aggregate)
        .values("value")
    )
    return Coalesce(Subquery(inner, output_field=IntegerField()), Value(0))


def affiliates_for_program(
    program: Program, *, q: str = "", status: str = "", sort: str = "", livemode: bool = True
) -> QuerySet[Affiliate]:
    """The program's affiliates with all-time clicks, conversions and earnings, in one query.

    Earnings are every commission that is not rejected (pending, approved and paid, net of
    reversals), live mode only.
    """
    affiliates = Affiliate.objects.filter(program=program).select_related("group")
    if q:
        q = q.strip()
        affiliates = affiliates.filter(
            Q(name__icontains=q) | Q(email__icontains=q) | Q(code_key__icontains=q.lower()) | Q(public_id=q)
        )
    if status:
        affiliates = affiliates.filter(status=status)
    affiliates = affiliates.annotate(
        # All-time clicks from the daily rollups, plus the clicks not yet folded in.
        click_count=_scalar(ClickDaily.objects.all(), Sum("clicks"))
        + _scalar(Click.objects.filter(pk__gt=rollups.watermark()), Count("pk")),
        conversion_count=_scalar(Event.objects.filter(livemode=livemode), Count("pk")),
        earnings_cents=_scalar(
            Commission.objects.filter(livemode=livemode).exclude(status=Commission.Status.REJECTED),
            Sum("amount_cents"),
        ),
        has_open_flag=Exists(
            FraudFlag.objects.filter(affiliate=OuterRef("pk"), status=FraudFlag.Status.OPEN)
        ),
    )
    return affiliates.order_by(*AFFILIATE_SORTS.get(sort, AFFILIATE_SORTS[DEFAULT_AFFILIATE_SORT]))


AFFILIATE_CSV_HEADER = [
    "id",
    "name",
    "email",
    "code",
    "status",
    "group",
    "clicks",
    "conversions",
    "earnings",
    "earnings_cents",
    "currency",
    "payout_method",
    "created_at",
]


def affiliate_csv_rows(program: Program, affiliates: QuerySet[Affiliate]) -> Iterator[list[Any]]:
    columns = affiliates.values_list(
        "public_id",
        "name",
        "email",
        "code",
        "status",
        "group__name",
        "click_count",
        "conversion_count",
        "earnings_cents",
        "payout_method",
        "created_at",
    )
    for (
        pid,
        name,
        email,
        code,
        status,
        group,
        clicks,
        conversions,
        earned,
        method,
        created,
    ) in columns.iterator(chunk_size=2000):
        yield [
            pid,
            name,
            email,
            code,
            status,
            group,
            clicks,
            conversions,
            decimal_amount(earned, program.currency),
            earned,
            program.currency,
            method,
            created,
        ]


def affiliate_by_reference(program: Program, reference: str) -> Affiliate | None:
    """An affiliate of the program by public id (aff_…) or by code, case-insensitively."""
    reference = reference.strip()
    if not reference:
        return None
    return (
        Affiliate.objects.filter(program=program)
        .filter(Q(public_id=reference) | Q(code_key=reference.lower()))
        .first()
    )


def affiliate_audit_trail(affiliate: Affiliate, *, limit: int = 50) -> list[AuditLog]:
    """What happened to the affiliate, its commissions and its events, newest first."""
    commission_ids = Commission.objects.filter(affiliate=affiliate).values("public_id")
    event_ids = Event.objects.filter(affiliate=affiliate).values("public_id")
    return list(
        AuditLog.objects.filter(program_id=affiliate.program_id)
        .filter(
            Q(object_type="affiliates.affiliate", object_id=affiliate.public_id)
            | Q(object_type="commissions.commission", object_id__in=commission_ids)
            | Q(object_type="tracking.event", object_id__in=event_ids)
        )
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )


def rules_for_affiliate(affiliate: Affiliate) -> QuerySet[CommissionRule]:
    return (
        CommissionRule.objects.filter(affiliate=affiliate)
        .select_related("program")
        .order_by("-is_active", "-pk")
    )


def groups_with_counts(program: Program) -> QuerySet[PartnerGroup]:
    return (
        PartnerGroup.objects.filter(program=program)
        .annotate(
            members=Count("affiliates", distinct=True),
            active_rules=Count("rules", filter=Q(rules__is_active=True), distinct=True),
        )
        .order_by("-is_active", "name")
    )


def rules_for_program(program: Program) -> list[CommissionRule]:
    """Every rule of the program, active first, each with `commission_count` and `tier_summary`."""
    rules = list(
        CommissionRule.objects.filter(program=program)
        .select_related("program", "group", "affiliate")
        .annotate(commission_count=Count("commissions"))
        .order_by("-is_active", "event_name", "pk")
    )
    for rule in rules:
        rule.tier_summary = tier_summary(rule.tiers or [], program.currency)
    return rules


def tier_summary(tiers: list[dict[str, int]], currency: str) -> str:
    """ "from 1,000.00 USD: 25 %; from 5,000.00 USD: 30 %" """
    return "; ".join(
        f"from {format_amount(t['min_cents'], currency)}: {Decimal(t['rate_bp']) / 100:f} %"
        for t in sorted(tiers, key=lambda t: t["min_cents"])
    )


# --- commissions -------------------------------------------------------------------------------


def commissions_for_program(
    program: Program,
    *,
    status: str = "",
    affiliate: str = "",
    order: str = "",
    kind: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    livemode: bool = True,
) -> QuerySet[Commission]:
    commissions = Commission.objects.filter(program=program, livemode=livemode)
    if status:
        commissions = commissions.filter(status=status)
    if affiliate:
        affiliate = affiliate.strip()
        commissions = commissions.filter(
            Q(affiliate__public_id=affiliate) | Q(affiliate__code_key=affiliate.lower())
        )
    if order:
        order = order.strip()
        commissions = commissions.filter(Q(event__order_id=order) | Q(event__public_id=order))
    if kind:
        commissions = commissions.filter(kind=kind)
    commissions = between_days(commissions, "created_at", date_from, date_to)
    return commissions.select_related("affiliate", "event").order_by("-created_at", "-pk")


COMMISSION_CSV_HEADER = [
    "id",
    "created_at",
    "livemode",
    "kind",
    "status",
    "amount",
    "amount_cents",
    "currency",
    "affiliate_id",
    "affiliate_code",
    "event_id",
    "event",
    "order_id",
    "rule_id",
    "reverses",
    "hold_until",
    "approved_at",
    "paid_at",
    "status_reason",
]


def commission_csv_rows(commissions: QuerySet[Commission]) -> Iterator[list[Any]]:
    columns = commissions.values_list(
        "public_id",
        "created_at",
        "livemode",
        "kind",
        "status",
        "amount_cents",
        "currency",
        "affiliate__public_id",
        "affiliate__code",
        "event__public_id",
        "event__name",
        "event__order_id",
        "rule__public_id",
        "reverses__public_id",
        "hold_until",
        "approved_at",
        "paid_at",
        "status_reason",
    )
    for row in columns.iterator(chunk_size=2000):
        pid, created, livemode, kind, status, cents, currency, *rest = row
        yield [pid, created, livemode, kind, status, decimal_amount(cents, currency), cents, currency, *rest]


def commission_arithmetic(commission: Commission) -> list[str]:
    """The calculation recorded in `inputs`, step by step, in the commission's currency."""
    inputs = commission.inputs or {}
    currency = commission.currency

    def money(key: str) -> str:
        return format_amount(int(inputs.get(key) or 0), currency)

    if commission.kind == Commission.Kind.REVERSAL:
        return [
            f"Order amount {money('order_amount_cents')}, refunded so far {money('refunded_cents')}.",
            f"Commission to reverse in total: {money('target_reversed_cents')}; "
            f"already reversed before: {money('already_reversed_cents')}.",
            f"This reversal: {format_amount(commission.amount_cents, currency)}.",
        ]
    lines = []
    if inputs.get("type") == CommissionRule.Type.PERCENT:
        rate_bp = int(inputs.get("rate_bp") or 0)
        if "monthly_revenue_cents" in inputs:
            tier = inputs.get("tier")
            reached = (
                f"the tier from {format_amount(tier['min_cents'], currency)} applies"
                if tier
                else "no tier reached, so the base rate applies"
            )
            lines.append(
                f"Referred revenue this calendar month, this event included: {money('monthly_revenue_cents')}; {reached}."
            )
        exact = Decimal(int(inputs.get("event_amount_cents") or 0)) * rate_bp / 10_000
        line = f"{money('event_amount_cents')} × {Decimal(rate_bp) / 100:f} % = "
        if exact == commission.amount_cents:
            line += f"{format_amount(commission.amount_cents, currency)}."
        else:
            line += (
                f"{exact.scaleb(-exponent(currency)):f} {currency}, "
                f"rounded half up to {format_amount(commission.amount_cents, currency)}."
            )
        lines.append(line)
    elif inputs.get("type") == CommissionRule.Type.FIXED:
        lines.append(
            f"A fixed {money('fixed_cents')} per event, whatever the event amount ({money('event_amount_cents')})."
        )
    return lines


def commission_history(commission: Commission) -> list[AuditLog]:
    """Every audit row of the commission and of its event (creation, refunds, fraud), oldest first."""
    return list(
        AuditLog.objects.filter(
            Q(object_type="commissions.commission", object_id=commission.public_id)
            | Q(object_type="tracking.event", object_id=commission.event.public_id)
        )
        .select_related("actor")
        .order_by("created_at", "id")
    )


# --- fraud -------------------------------------------------------------------------------------


def open_fraud_flags(program: Program) -> list[FraudFlag]:
    """Open flags, newest first, each with `commission_rows`: the commissions it holds back."""
    flags = list(
        FraudFlag.objects.filter(program=program, status=FraudFlag.Status.OPEN)
        .select_related("affiliate", "event")
        .order_by("-created_at", "-pk")
    )
    _attach_commissions(program, flags)
    return flags


def recently_resolved_flags(program: Program, *, limit: int = 20) -> list[FraudFlag]:
    flags = list(
        FraudFlag.objects.filter(program=program)
        .exclude(status=FraudFlag.Status.OPEN)
        .select_related("affiliate", "event")
        .order_by("-resolved_at", "-pk")[:limit]
    )
    _attach_commissions(program, flags)
    return flags


def _attach_commissions(program: Program, flags: list[FraudFlag]) -> None:
    wanted = {pid for flag in flags for pid in (flag.details or {}).get("commissions", [])}
    found = Commission.objects.filter(program=program, public_id__in=wanted).in_bulk(field_name="public_id")
    for flag in flags:
        flag.commission_rows = [
            found[pid] for pid in (flag.details or {}).get("commissions", []) if pid in found
        ]


def flagged_affiliates(program: Program) -> QuerySet[Affiliate]:
    """Affiliates with open fraud flags, the most flagged first."""
    return (
        Affiliate.objects.filter(program=program, fraud_flags__status=FraudFlag.Status.OPEN)
        .annotate(open_flags=Count("fraud_flags"))
        .order_by("-open_flags", "name")
    )
