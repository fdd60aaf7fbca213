"""The panel's charts as data: what static/js/app.js draws, built from the figures of the pages.

A chart is one measure (a count or an amount of the program's currency) drawn as bars, because a
day's sale is a fact of that day and a smoothed line spreads it over two. A daily chart carries
the previous period of the same length as a faint second series, lined up day for day, with its
own dates for the tooltip. Amounts are decimal strings, never floats: the chart reads them as
numbers and the tooltip formats them with the currency.
"""

from __future__ import annotations

from typing import Any

from affiliates.models import Program
from commissions import reports, stats
from commissions.stats import DateRange
from refapp.money import to_decimal

BREAKDOWN_ROWS = 12  # bars per breakdown chart; the reports table has every group
BREAKDOWNS = {"campaign": "Campaign", "sub_id": "Sub id", "source": "Source"}


def _values(values: list[int], unit: str, currency: str) -> list[Any]:
    return [str(to_decimal(v, currency)) for v in values] if unit == "money" else list(values)


def daily_chart(
    *,
    title: str,
    unit: str,
    currency: str,
    current: dict[str, Any],
    previous: dict[str, Any] | None,
    key: str,
) -> dict[str, Any]:
    """One measure (`key` of the stats series) per day, this period and the one before."""
    series = [{"label": "This period", "data": _values(current[key], unit, currency)}]
    if previous is not None:
        series.append(
            {
                "label": "Previous period",
                "data": _values(previous[key], unit, currency),
                "labels": previous["labels"],
                "previous": True,
            }
        )
    return {
        "key": key,
        "title": title,
        "unit": unit,
        "currency": currency,
        "labels": current["labels"],
        "series": series,
    }


def with_ids(charts: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Give each chart the id of its <script type="application/json"> on the page."""
    for chart in charts:
        chart["json_id"] = f"{prefix}-{chart.get('key') or chart['title'].split()[0].lower()}"
    return charts


def daily_charts(currency: str, current: dict[str, Any], previous: dict[str, Any] | None) -> list[dict]:
    """Clicks, conversions and revenue per day: three charts, one measure each."""
    return [
        daily_chart(
            title="Clicks", unit="count", currency=currency, current=current, previous=previous, key="clicks"
        ),
        daily_chart(
            title="Conversions",
            unit="count",
            currency=currency,
            current=current,
            previous=previous,
            key="conversions",
        ),
        daily_chart(
            title=f"Revenue ({currency})",
            unit="money",
            currency=currency,
            current=current,
            previous=previous,
            key="revenue_cents",
        ),
    ]


def group_chart(report: dict[str, Any], *, title: str, measure: str, rows: int = BREAKDOWN_ROWS) -> dict:
    """One measure of a report's first rows as horizontal bars, the group's other figures in the
    tooltip (`notes`, one list of lines per bar)."""
    currency = report["currency"]
    data = report["data"][:rows]
    unit = "money" if measure.endswith("_cents") else "count"
    return {
        "title": title,
        "unit": unit,
        "currency": currency,
        "horizontal": True,
        "labels": [row["label"] for row in data],
        "series": [{"label": title, "data": _values([row[measure] for row in data], unit, currency)}],
        "notes": [
            [
                f"Clicks: {row['clicks']}",
                f"Conversions: {row['conversions']}",
                f"Revenue: {to_decimal(row['revenue_cents'], currency)} {currency}",
            ]
            for row in data
        ],
    }


def breakdown_charts(program: Program, period: DateRange) -> list[dict[str, Any]]:
    """Conversions by campaign, sub id and source over the range (one report read each)."""
    charts = []
    for group_by, name in BREAKDOWNS.items():
        report = reports.summary(program=program, livemode=True, period=period, group_by=group_by)
        chart = group_chart(report, title=f"Conversions by {name.lower()}", measure="conversions")
        chart["group_by"] = group_by
        chart["key"] = group_by
        chart["empty"] = not report["data"]
        charts.append(chart)
    return with_ids(charts, "breakdown-chart")


def day_series(report: dict[str, Any], period: DateRange) -> dict[str, Any]:
    """A report grouped by day as the stats series the daily charts read (days without rows are 0)."""
    rows = {row["key"]: row for row in report["data"]}
    days = [d.isoformat() for d in period.days]
    series: dict[str, Any] = {"labels": days}
    for name in ("clicks", "conversions", "revenue_cents"):
        series[name] = [rows[d][name] if d in rows else 0 for d in days]
    return series


def report_charts(
    program: Program, period: DateRange, report: dict[str, Any], group_label: str
) -> list[dict[str, Any]]:
    """The reports page's charts: per day, the three daily charts beside the previous period; per
    campaign, sub id, source or affiliate, clicks, conversions and revenue of the first groups."""
    if report["group_by"] == "day":
        previous_period = stats.previous_period(period)
        before = reports.summary(program=program, livemode=True, period=previous_period, group_by="day")
        return with_ids(
            daily_charts(report["currency"], day_series(report, period), day_series(before, previous_period)),
            "report-chart",
        )
    name = group_label.lower()
    charts = [
        group_chart(report, title=f"Clicks by {name}", measure="clicks") | {"key": "clicks"},
        group_chart(report, title=f"Conversions by {name}", measure="conversions") | {"key": "conversions"},
        group_chart(report, title=f"Revenue by {name} ({report['currency']})", measure="revenue_cents")
        | {"key": "revenue"},
    ]
    return with_ids(charts, "report-chart")
