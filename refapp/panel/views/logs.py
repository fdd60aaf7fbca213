"""Panel: the events log (with CSV export), the clicks log and the activity log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from refapp.htmx import render_page
from tracking.csv_export import csv_response, export_filename

from .. import log_selectors as selectors
from ..access import get_program_for_staff, staff_required
from ..forms import ActivityFilterForm, ClickFilterForm, EventFilterForm
from ..history import readable_rows


@require_GET
@staff_required
def event_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    form = EventFilterForm(request.GET)
    filters = form.filters()
    page = selectors.uncounted_page(selectors.events_for_program(program, **filters), request.GET.get("page"))
    context = {"program": program, "form": form, "page": page, "livemode": filters["livemode"]}
    return render_page(request, "panel/events.html", context, partial="table")


@require_GET
@staff_required
def event_export(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    program = get_program_for_staff(request, slug)
    events = selectors.events_for_program(program, **EventFilterForm(request.GET).filters())
    return csv_response(
        filename=export_filename(program.slug, "events", timezone.now().date()),
        header=selectors.EVENT_CSV_HEADER,
        rows=selectors.event_csv_rows(events),
    )


@require_GET
@staff_required
def click_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    form = ClickFilterForm(request.GET)
    page = selectors.uncounted_page(
        selectors.clicks_for_program(program, **form.filters()), request.GET.get("page")
    )
    return render_page(
        request, "panel/clicks.html", {"program": program, "form": form, "page": page}, partial="table"
    )


@require_GET
@staff_required
def activity_list(request: HttpRequest, slug: str) -> HttpResponse:
    """Every change of the program, readable, newest first: the audit log outside Django's admin."""
    program = get_program_for_staff(request, slug)
    form = ActivityFilterForm(request.GET, program=program)
    page = selectors.uncounted_page(
        selectors.audit_for_program(program, **form.filters()), request.GET.get("page")
    )
    page.object_list = readable_rows(page.object_list, program)
    context = {"program": program, "form": form, "page": page, "filtered": bool(form.filters())}
    return render_page(request, "panel/activity.html", context, partial="table")
