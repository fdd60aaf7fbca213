"""Reads for the panel's affiliate, commission and fraud pages and their CSV exports.

Affiliate listings live in the panel rather than in `affiliates` because their figures (clicks, conversions,
earnings) come from `tracking` and `commissions`, and a lower app never imports a higher one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    F,
    FilteredRelation,
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
from commissions import rollups as conversion_rollups
from commissions.models import Commission, CommissionRule, FraudFlag
from commissions.review import REVIEWABLE
from refapp.models import AuditLog
from refapp.money import exponent, format_amount
from tracking import rollups
from tracking.csv_export import decimal_amount
from tracking.models import Click, ClickDaily, Event

from .log_selectors import between_days

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

    Used only for the column the list is sorted by: every affiliate needs that figure to be ranked,
    and each subquery reads one affiliate's rows through a covering index.
    """
    inner = (
        queryset.filter(affiliate=OuterRef("pk"))
        .order_by()
        .values("affiliate")
        .annotate(value=aggregate)
        .values("value")
    )
    return Coalesce(Subquery(inner, output_field=IntegerField()), Value(0))


def _sort_key(sort: str, livemode: bool) -> dict[str, Any]:
    """The annotation the ?sort= needs, and only that one: the other figures are read for one page."""
    key = sort.lstrip("-")
    if key == "clicks":
        # All-time clicks from the daily rollups, plus the clicks not yet folded in.
        return {
            "click_count": _scalar(ClickDaily.objects.all(), Sum("clicks"))
            + _scalar(Click.objects.filter(pk__gt=rollups.watermark()), Count("pk"))
        }
    if key in ("conversions", "earnings"):
        # One join to the all-time rollup (a view adding the rows not yet folded in), not a
        # subquery per affiliate.
        live = FilteredRelation(
            "live_conversion_totals", condition=Q(live_conversion_totals__livemode=livemode)
        )
        column = "conversions" if key == "conversions" else "earnings_cents"
        name = "conversion_count" if key == "conversions" else "earnings_cents"
        return {"live": live, name: Coalesce(F(f"live__{column}"), Value(0))}
    return {}


def _matching(program: Program, q: str, status: str, kind: str = "") -> QuerySet[Affiliate]:
    affiliates = Affiliate.objects.filter(program=program, livemode=True)
    if kind:
        affiliates = affiliates.filter(kind=kind)
    if q:
        q = q.strip()
        affiliates = affiliates.filter(
            Q(name__icontains=q) | Q(email__icontains=q) | Q(code_key__icontains=q.lower()) | Q(public_id=q)
        )
    if status:
        affiliates = affiliates.filter(status=status)
    return affiliates


def affiliates_for_program(
    program: Program, *, q: str = "", status: str = "", kind: str = "", sort: str = "", livemode: bool = True
) -> QuerySet[Affiliate]:
    """The program's affiliates, filtered and sorted; `with_figures` adds the figures of the rows shown.

    Sorting by a figure computes that figure for every matching affiliate (in one query); the others
    are read afterwards for the rows actually shown, so a page costs one ranked query plus three
    small grouped ones however many affiliates the program has.
    """
    sort = sort if sort in AFFILIATE_SORTS else DEFAULT_AFFILIATE_SORT
    return (
        _matching(program, q, status, kind)
        .select_related("group")
        .annotate(**_sort_key(sort, livemode))
        .order_by(*AFFILIATE_SORTS[sort])
    )


class AffiliatePages:
    """The affiliates list as the Paginator reads it: counted without the sort's figure, and each
    page ranked by id alone before its rows are read.

    Ranking 20,000 affiliates then sorts 8-byte ids, not whole rows with their group.
    """

    def __init__(
        self,
        program: Program,
        *,
        q: str = "",
        status: str = "",
        kind: str = "",
        sort: str = "",
        livemode=True,
    ):
        self.matching = _matching(program, q, status, kind)
        self.ranked = affiliates_for_program(
            program, q=q, status=status, kind=kind, sort=sort, livemode=livemode
        )

    def count(self) -> int:
        return self.matching.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice) -> list[Affiliate]:
        ids = list(self.ranked.values_list("pk", flat=True)[window])
        rows = Affiliate.objects.select_related("group").in_bulk(ids)
        return [rows[pk] for pk in ids]


def with_figures(affiliates: list[Affiliate], *, livemode: bool = True) -> list[Affiliate]:
    """Set click_count, conversion_count, earnings_cents and has_open_flag on the given affiliates."""
    ids = [a.pk for a in affiliates]
    if not ids:
        return affiliates
    clicks: dict[int, int] = {}
    for row in (
        ClickDaily.objects.filter(affiliate_id__in=ids)
        .values("affiliate_id")
        .annotate(n=Sum("clicks"))
        .order_by()
    ):
        clicks[row["affiliate_id"]] = row["n"] or 0
    for row in (
        Click.objects.filter(pk__gt=rollups.watermark(), affiliate_id__in=ids)
        .values("affiliate_id")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        clicks[row["affiliate_id"]] = clicks.get(row["affiliate_id"], 0) + row["n"]
    totals = conversion_rollups.affiliate_totals(ids, livemode)
    flagged = set(
        FraudFlag.objects.filter(affiliate_id__in=ids, status=FraudFlag.Status.OPEN).values_list(
            "affiliate_id", flat=True
        )
    )
    for affiliate in affiliates:
        affiliate.click_count = clicks.get(affiliate.pk, 0)
        figures = totals.get(affiliate.pk)
        affiliate.conversion_count = figures["conversions"] if figures else 0
        affiliate.earnings_cents = figures["earned_cents"] if figures else 0
        affiliate.has_open_flag = affiliate.pk in flagged
    return affiliates


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


def affiliate_csv_rows(
    program: Program, affiliates: QuerySet[Affiliate], *, chunk: int = 1000
) -> Iterator[list[Any]]:
    """Rows for the CSV export, read and given their figures a chunk at a time (memory stays flat)."""
    batch: list[Affiliate] = []

    def rows(batch: list[Affiliate]) -> Iterator[list[Any]]:
        for a in with_figures(batch):
            yield [
                a.public_id,
                a.name,
                a.email,
                a.code,
                a.status,
                a.group.name if a.group else None,
                a.click_count,
                a.conversion_count,
                decimal_amount(a.earnings_cents, program.currency),
                a.earnings_cents,
                program.currency,
                a.payout_method,
                a.created_at,
            ]

    for affiliate in affiliates.iterator(chunk_size=chunk):
        batch.append(affiliate)
        if len(batch) == chunk:
            yield from rows(batch)
            batch = []
    yield from rows(batch)


def affiliate_by_reference(program: Program, reference: str) -> Affiliate | None:
    """An affiliate of the program by public id (aff_…) or by code, case-insensitively."""
    reference = reference.strip()
    if not reference:
        return None
    return (
        Affiliate.objects.filter(program=program, livemode=True)
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
        CommissionRule.objects.filter(affiliate=affiliate, livemode=True)
        .select_related("program")
        .order_by("-is_active", "-pk")
    )


def groups_with_counts(program: Program) -> QuerySet[PartnerGroup]:
    return (
        PartnerGroup.objects.filter(program=program)
        .annotate(
            members=Count("affiliates", filter=Q(affiliates__livemode=True), distinct=True),
            active_rules=Count("rules", filter=Q(rules__is_active=True, rules__livemode=True), distinct=True),
        )
        .order_by("-is_active", "name")
    )


def rules_for_program(program: Program) -> list[CommissionRule]:
    """Every live rule of the program, active first, each with `commission_count` and `tier_summary`
    (test rules are the API's test mode, which the panel does not show)."""
    rules = list(
        CommissionRule.objects.filter(program=program, livemode=True)
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


def commissions_to_review(program: Program, public_ids: list[str], status: str) -> list[Commission]:
    """The selected commissions a bulk approve or reject would change (what its confirm step lists):
    pending or approved rows of the program not already in `status`, and no reversal to reject."""
    rows = (
        Commission.objects.filter(program=program, public_id__in=public_ids, status__in=REVIEWABLE)
        .exclude(status=status)
        .select_related("affiliate", "event")
        .order_by("-created_at", "-pk")
    )
    if status == Commission.Status.REJECTED:
        rows = rows.exclude(kind=Commission.Kind.REVERSAL)
    return list(rows)


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
        Affiliate.objects.filter(program=program, livemode=True, fraud_flags__status=FraudFlag.Status.OPEN)
        .annotate(open_flags=Count("fraud_flags"))
        .order_by("-open_flags", "name")
    )


def dropped_clicks(program: Program, start: date, end: date) -> dict[str, int]:
    """Clicks the click endpoint refused between start and end (inclusive), in total and per reason."""
    from tracking.models import DroppedClickDaily

    counts = dict.fromkeys(DroppedClickDaily.Reason.values, 0)
    rows = (
        DroppedClickDaily.objects.filter(program=program, day__range=(start, end))
        .values("reason")
        .annotate(n=Sum("count"))
    )
    for row in rows:
        counts[row["reason"]] = row["n"]
    return {"total": sum(counts.values()), **counts}


def needs_attention(program: Program) -> list[dict[str, Any]]:
    """What waits for a person on the dashboard: pending applications, open fraud flags, failed
    payouts and failing webhook endpoints, each with the list that shows them (zeros left out)."""
    from django.urls import reverse
    from django.utils.translation import ngettext

    from payouts.models import Payout
    from webhooks.models import WebhookEndpoint

    slug = program.slug
    failing = WebhookEndpoint.objects.filter(program=program).filter(
        Q(is_active=True, failing_since__isnull=False) | (Q(is_active=False) & ~Q(disabled_reason=""))
    )
    items = [
        (
            "applications",
            Affiliate.objects.filter(program=program, livemode=True, status=Affiliate.Status.PENDING).count(),
            ("pending application", "pending applications"),
            reverse("panel:affiliate-list", args=[slug]) + "?status=pending",
        ),
        (
            "fraud",
            FraudFlag.objects.filter(program=program, status=FraudFlag.Status.OPEN).count(),
            ("open fraud flag", "open fraud flags"),
            reverse("panel:fraud-queue", args=[slug]),
        ),
        (
            "payouts",
            Payout.objects.filter(program=program, status=Payout.Status.FAILED).count(),
            ("failed payout", "failed payouts"),
            reverse("panel:payout-list", args=[slug]) + "?status=failed",
        ),
        (
            "webhooks",
            failing.count(),
            ("failing webhook endpoint", "failing webhook endpoints"),
            reverse("panel:webhook-list", args=[slug]),
        ),
    ]
    return [
        {"key": key, "count": count, "label": ngettext(*names, count), "url": url}
        for key, count, names, url in items
        if count
    ]
