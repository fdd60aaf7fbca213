"""Reports: clicks, visitors, conversions, revenue and commissions by status over a range of UTC
days, per day, affiliate, campaign, sub id, traffic source or channel (the OpenAPI document and the
panel's reports page).

`summary` writes the JSON of GET /api/v1/reports/summary (its schema is beside it) and the panel's
reports page reads the same dict. Where the figures come from (docs/decisions.md, "REST API and
reports"):
- per day and per affiliate: the daily rollups (tracking.rollups for clicks, commissions.rollups
  for conversions and commissions), never a scan of clicks; rejected commissions, which the
  rollups leave out, from the commissions' (program, created_at) covering index;
- per campaign, sub id and source: the clicks of the range, read through their created_at index,
  and the range's events and commissions tied to a click (the event's own, else its referral's).
  A range is at most MAX_RANGE_DAYS; that bound is what makes the read acceptable.
- per channel: how each conversion was attributed, read from the range's events as above: "link"
  (a click on a /go/ redirect link), "script" (a click the tracker reported), "code" (a referral
  or promotion code on the event) or "customer" (a customer already bound to the affiliate); the
  clicks of the range split by link and script.
Visitors are distinct per day and per group, then summed (a visitor of two days or two campaigns
counts twice), as on the dashboards. Money is in minor units of the program's currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import CharField, Count, F, Sum, Value
from django.db.models.expressions import Case, Combinable, When
from django.db.models.functions import Coalesce, Lower, NullIf, StrIndex, Substr, TruncDate
from django.db.models.lookups import GreaterThan, LessThanOrEqual

from affiliates.models import Affiliate, Program
from tracking.models import Click, Event
from tracking.rollups import click_totals, click_totals_by_affiliate

from . import rollups
from .models import Commission
from .stats import DateRange

GROUP_BY = ("day", "affiliate", "campaign", "sub_id", "source", "channel")
CHANNELS = {
    "link": "Redirect link",
    "script": "Tracker script",
    "code": "Referral or promotion code",
    "customer": "Customer binding",
}
STATUSES = tuple(Commission.Status.values)
NONE_LABEL = "(none)"

_INT = {"type": "integer"}
_COMMISSIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Commission amounts by status, in minor units; reversals are netted.",
    "additionalProperties": False,
    "required": [f"{status}_cents" for status in STATUSES],
    "properties": {f"{status}_cents": _INT for status in STATUSES},
}
_FIGURES: dict[str, Any] = {
    "clicks": _INT,
    "visitors": _INT,
    "conversions": _INT,
    "revenue_cents": _INT,
    "commissions": _COMMISSIONS_SCHEMA,
}
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["from", "to", "group_by", "currency", "livemode", "totals", "data"],
    "properties": {
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "group_by": {"type": "string", "enum": list(GROUP_BY)},
        "currency": {"type": "string"},
        "livemode": {"type": "boolean"},
        "totals": {
            "type": "object",
            "additionalProperties": False,
            "required": list(_FIGURES),
            "properties": _FIGURES,
        },
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "label", *_FIGURES],
                "properties": {
                    "key": {
                        "type": "string",
                        "description": "The day, affiliate id, campaign, sub id, source or channel "
                        "(link, script, code, customer).",
                    },
                    "label": {"type": "string"},
                    **_FIGURES,
                },
            },
        },
    },
}


def _empty() -> dict[str, Any]:
    return {
        "clicks": 0,
        "visitors": 0,
        "conversions": 0,
        "revenue_cents": 0,
        "commissions": {f"{status}_cents": 0 for status in STATUSES},
    }


def _source(prefix: str) -> Combinable:
    """utm_source, else the referrer's host (lowercased; scheme and path cut off), else "".
    NULL when the row has no click at `prefix`."""
    referrer = F(f"{prefix}referrer")
    scheme = StrIndex(referrer, Value("://"))
    rest = Substr(referrer, scheme + 3)
    slash = StrIndex(rest, Value("/"))
    host = Case(
        When(LessThanOrEqual(scheme, 0), then=Value("")),
        When(GreaterThan(slash, 0), then=Substr(rest, 1, slash - 1)),
        default=rest,
        output_field=CharField(),
    )
    return Coalesce(NullIf(F(f"{prefix}utm_source"), Value("")), Lower(host), output_field=CharField())


def _click_key(group_by: str, prefix: str = "") -> Combinable:
    if group_by == "source":
        return _source(prefix)
    return F(f"{prefix}{'utm_campaign' if group_by == 'campaign' else 'sub_id'}")


def _event_key(group_by: str, prefix: str = "") -> Combinable:
    """The key of a conversion: from the click that attributed it, else its referral's click."""
    return Coalesce(
        _click_key(group_by, f"{prefix}click__"),
        _click_key(group_by, f"{prefix}referral__click__"),
        Value(""),
        output_field=CharField(),
    )


def _channel(prefix: str = "") -> Combinable:
    """How a conversion was attributed, as a report key (CHANNELS)."""
    attribution = f"{prefix}attribution"
    return Case(
        When(**{attribution: Event.Attribution.CUSTOMER}, then=Value("customer")),
        When(
            **{f"{attribution}__in": [Event.Attribution.CODE, Event.Attribution.COUPON]}, then=Value("code")
        ),
        # A click dropped by retention no longer says which door it came through: the tracker's.
        default=Coalesce(F(f"{prefix}click__source"), Value("script")),
        output_field=CharField(),
    )


def _by_channel(program: Program, livemode: bool, period: DateRange) -> dict[str, dict]:
    return _figures(
        {key: _empty() for key in CHANNELS},
        program,
        livemode,
        period,
        click_key=F("source"),
        event_key=_channel(),
        commission_key=_channel("event__"),
    )


def _by_click_field(program: Program, livemode: bool, period: DateRange, group_by: str) -> dict[str, dict]:
    return _figures(
        {},
        program,
        livemode,
        period,
        click_key=Coalesce(_click_key(group_by), Value(""), output_field=CharField()),
        event_key=_event_key(group_by),
        commission_key=_event_key(group_by, "event__"),
    )


def _figures(
    rows: dict[str, dict[str, Any]],
    program: Program,
    livemode: bool,
    period: DateRange,
    *,
    click_key: Combinable,
    event_key: Combinable,
    commission_key: Combinable,
) -> dict[str, dict]:
    """Clicks and visitors, conversions and revenue, commissions by status, added into `rows` by
    the report key each expression gives its row (a channel, a campaign, a sub id, a source)."""
    clicks = (
        Click.objects.filter(
            program=program,
            affiliate__livemode=livemode,
            created_at__gte=period.start_at,
            created_at__lt=period.end_at,
        )
        .annotate(key=click_key)
        .values("key")
        .annotate(clicks=Count("pk"), visitors=Count("visitor_id", distinct=True))
        .order_by()
    )
    for row in clicks:
        figures = rows.setdefault(row["key"], _empty())
        figures["clicks"] += row["clicks"]
        figures["visitors"] += row["visitors"]
    events = (
        Event.objects.filter(
            program=program,
            livemode=livemode,
            affiliate__isnull=False,
            occurred_at__gte=period.start_at,
            occurred_at__lt=period.end_at,
        )
        .annotate(key=event_key)
        .values("key")
        .annotate(conversions=Count("pk"), revenue=Sum(F("amount_cents") - F("refunded_cents")))
        .order_by()
    )
    for row in events:
        figures = rows.setdefault(row["key"], _empty())
        figures["conversions"] += row["conversions"]
        figures["revenue_cents"] += row["revenue"] or 0
    _add_commissions(
        rows,
        _commissions(program, livemode, period)
        .annotate(key=commission_key)
        .values("key", "status")
        .annotate(total=Sum("amount_cents"))
        .order_by(),
    )
    return rows


def _add_commissions(rows: dict[str, dict[str, Any]], values: Iterable[dict[str, Any]]) -> None:
    for row in values:
        figures = rows.setdefault(row["key"], _empty())
        figures["commissions"][f"{row['status']}_cents"] += row["total"] or 0


def _commissions(program: Program, livemode: bool, period: DateRange, *, statuses: Iterable[str] = STATUSES):
    return Commission.objects.filter(
        program=program,
        livemode=livemode,
        status__in=list(statuses),
        created_at__gte=period.start_at,
        created_at__lt=period.end_at,
    )


def _rolled(figures: dict[str, int], clicks: tuple[int, int]) -> dict[str, Any]:
    row = _empty()
    row.update(clicks=clicks[0], visitors=clicks[1])
    row.update(conversions=figures.get("conversions", 0), revenue_cents=figures.get("revenue_cents", 0))
    for status in STATUSES:
        row["commissions"][f"{status}_cents"] = figures.get(f"{status}_cents", 0)
    return row


def _by_day(program: Program, livemode: bool, period: DateRange) -> dict[str, dict]:
    if livemode:
        clicks = click_totals(period.start_at, period.end_at, program_id=program.pk)["days"]
    else:
        test_ids = list(
            Affiliate.objects.filter(program=program, livemode=False).values_list("pk", flat=True)
        )
        clicks = (
            click_totals(period.start_at, period.end_at, affiliate_ids=test_ids)["days"] if test_ids else {}
        )
    figures = rollups.program_days(program.pk, livemode, period.start, period.end)
    rows = {day.isoformat(): _rolled(figures.get(day, {}), clicks.get(day, (0, 0))) for day in period.days}
    rejected = (
        _commissions(program, livemode, period, statuses=[Commission.Status.REJECTED])
        .annotate(key=TruncDate("created_at"))
        .values("key", "status")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    )
    _add_commissions(rows, ({**row, "key": row["key"].isoformat()} for row in rejected))
    return rows


def _by_affiliate(
    program: Program, livemode: bool, period: DateRange
) -> tuple[dict[str, dict], dict[str, str]]:
    clicks = click_totals_by_affiliate(period.start_at, period.end_at, program_id=program.pk)
    figures = rollups.affiliates_in_range(program.pk, livemode, period.start, period.end)
    rejected = list(
        _commissions(program, livemode, period, statuses=[Commission.Status.REJECTED])
        .values("affiliate_id", "status")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    )
    ids = set(clicks) | set(figures) | {row["affiliate_id"] for row in rejected}
    # Clicks have no mode: only the key's mode's affiliates are rows of its report.
    affiliates = {
        a.pk: a
        for a in Affiliate.objects.filter(pk__in=ids, program=program, livemode=livemode).only(
            "public_id", "code", "name"
        )
    }
    rows = {
        affiliates[pk].public_id: _rolled(figures.get(pk, {}), clicks.get(pk, (0, 0)))
        for pk in ids
        if pk in affiliates
    }
    _add_commissions(
        rows,
        (
            {**row, "key": affiliates[row["affiliate_id"]].public_id}
            for row in rejected
            if row["affiliate_id"] in affiliates
        ),
    )
    labels = {a.public_id: f"{a.name} ({a.code})" for a in affiliates.values()}
    return rows, labels


def summary(*, program: Program, livemode: bool, period: DateRange, group_by: str) -> dict[str, Any]:
    """The report of a program's range in one mode, grouped by `group_by` (one of GROUP_BY)."""
    labels: dict[str, str] = {}
    if group_by == "day":
        rows = _by_day(program, livemode, period)
        order = sorted(rows)
    else:
        if group_by == "affiliate":
            rows, labels = _by_affiliate(program, livemode, period)
        elif group_by == "channel":
            rows, labels = _by_channel(program, livemode, period), dict(CHANNELS)
        else:
            rows = _by_click_field(program, livemode, period, group_by)
        order = sorted(rows, key=lambda k: (-rows[k]["revenue_cents"], -rows[k]["clicks"], k))
    totals = _empty()
    for figures in rows.values():
        for name in ("clicks", "visitors", "conversions", "revenue_cents"):
            totals[name] += figures[name]
        for name, cents in figures["commissions"].items():
            totals["commissions"][name] += cents
    return {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "group_by": group_by,
        "currency": program.currency,
        "livemode": livemode,
        "totals": totals,
        "data": [{"key": key, "label": labels.get(key) or key or NONE_LABEL, **rows[key]} for key in order],
    }
