"""Panel dashboard: a program's clicks, conversions, revenue and commissions over a date range."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from commissions import stats
from refapp.htmx import render_page
from refapp.money import to_decimal

from ..access import get_program_for_staff, staff_required
from ..selectors import dropped_clicks


@require_GET
@staff_required
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    period, preset, errors = stats.parse_range(request.GET, timezone.now().date())
    summary, series = stats.program_overview(program, period)
    chart = {
        "labels": series["labels"],
        "series": [
            {"label": "Clicks", "data": series["clicks"]},
            {"label": "Conversions", "data": series["conversions"]},
            {
                "label": f"Revenue ({program.currency})",
                "data": [str(to_decimal(c, program.currency)) for c in series["revenue_cents"]],
                "axis": "y2",
            },
        ],
    }
    context = {
        "program": program,
        "period": period,
        "preset": preset,
        "presets": stats.PRESETS,
        "errors": errors,
        "summary": summary,
        "chart": chart,
        "top": stats.top_affiliates(program, period),
        "dropped": dropped_clicks(program, period.start, period.end),
        "has_data": summary["clicks"] or summary["conversions"],
    }
    return render_page(request, "panel/dashboard.html", context, partial="report")
