"""Panel reports: a program's figures per campaign, sub id, source, affiliate or day over a date
range, as a table, a bar chart and a CSV export. The figures are commissions.reports.summary's,
the same as GET /api/v1/reports/summary answers a live key."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from affiliates.models import Program
from commissions import reports, stats
from refapp.api import MAX_RANGE_DAYS
from refapp.htmx import render_page
from tracking.csv_export import csv_response, decimal_amount, export_filename

from .. import charts
from ..access import get_program_for_staff, staff_required

GROUPS = {
    "campaign": "Campaign (utm_campaign)",
    "sub_id": "Sub id",
    "source": "Source (utm_source, else the referrer's host)",
    "affiliate": "Affiliate",
    "channel": "Channel (link, script, code, customer binding)",
    "day": "Day",
}


def _report(request: HttpRequest, program: Program) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the report, the page's form state with its errors)."""
    period, preset, errors = stats.parse_range(request.GET, timezone.now().date(), max_days=MAX_RANGE_DAYS)
    group_by = request.GET.get("group_by") or "campaign"
    if group_by not in GROUPS:
        errors["group_by"] = "Choose one of the listed groupings."
        group_by = "campaign"
    report = reports.summary(program=program, livemode=True, period=period, group_by=group_by)
    return report, {"period": period, "preset": preset, "errors": errors, "group_by": group_by}


@require_GET
@staff_required
def report_page(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    report, state = _report(request, program)
    group_label = GROUPS[state["group_by"]].split(" (")[0]
    chart_list = charts.report_charts(program, state["period"], report, group_label) if report["data"] else []
    context = {
        "program": program,
        "report": report,
        "charts": chart_list,
        "groups": GROUPS,
        "group_label": group_label,
        "presets": stats.PRESETS,
        "export_query": request.GET.urlencode(),
        **state,
    }
    return render_page(request, "panel/reports.html", context, partial="report")


CSV_HEADER = [
    "key",
    "label",
    "clicks",
    "visitors",
    "conversions",
    "revenue",
    *(f"commissions_{status}" for status in reports.STATUSES),
    "currency",
]


@require_GET
@staff_required
def report_export(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    program = get_program_for_staff(request, slug)
    report, state = _report(request, program)
    currency = report["currency"]
    rows = (
        [
            row["key"],
            row["label"],
            row["clicks"],
            row["visitors"],
            row["conversions"],
            decimal_amount(row["revenue_cents"], currency),
            *(decimal_amount(row["commissions"][f"{status}_cents"], currency) for status in reports.STATUSES),
            currency,
        ]
        for row in report["data"]
    )
    what = f"report-{state['group_by']}-{report['from']}-{report['to']}"
    return csv_response(
        filename=export_filename(program.slug, what, date.fromisoformat(report["to"])),
        header=CSV_HEADER,
        rows=rows,
    )
