"""Panel dashboard: a program's clicks, conversions, revenue and commissions over a date range."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from commissions import stats
from refapp.api import MAX_RANGE_DAYS
from refapp.htmx import render_page

from .. import charts
from ..access import get_program_for_staff, staff_required
from ..selectors import dropped_clicks, needs_attention


@require_GET
@staff_required
def dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    period, preset, errors = stats.parse_range(request.GET, timezone.now().date())
    summary, series = stats.program_overview(program, period)
    previous = stats.program_series(program, stats.previous_period(period))
    context = {
        "program": program,
        "period": period,
        "preset": preset,
        "presets": stats.PRESETS,
        "errors": errors,
        "summary": summary,
        "rate_help": stats.CONVERSION_RATE_HELP,
        "charts": charts.with_ids(charts.daily_charts(program.currency, series, previous), "dashboard-chart"),
        "attention": needs_attention(program),
        "top": stats.top_affiliates(program, period),
        "dropped": dropped_clicks(program, period.start, period.end),
        "has_data": summary["clicks"] or summary["conversions"],
        "breakdown_query": request.GET.urlencode(),
    }
    return render_page(request, "panel/dashboard.html", context, partial="report")


@require_GET
@staff_required
def dashboard_breakdown(request: HttpRequest, slug: str) -> HttpResponse:
    """Conversions by campaign, sub id and source: loaded by the dashboard after the page, since
    these read the range's clicks (no rollup keeps them) while the rest of the page reads rollups."""
    program = get_program_for_staff(request, slug)
    period, _preset, errors = stats.parse_range(request.GET, timezone.now().date())
    too_long = len(period.days) > MAX_RANGE_DAYS
    context = {
        "program": program,
        "period": period,
        "errors": errors,
        "too_long": too_long,
        "max_days": MAX_RANGE_DAYS,
        "breakdowns": [] if too_long else charts.breakdown_charts(program, period),
    }
    # Always the fragment: the page itself is the dashboard, which loads this into place.
    return render(request, "panel/dashboard.html#breakdown", context)
