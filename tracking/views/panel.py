"""Panel pages of tracking: the events log (with CSV export) and the clicks log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from affiliates.access import get_program_for_staff, staff_required

from .. import selectors
from ..csv_export import csv_response, export_filename
from ..forms import ClickFilterForm, EventFilterForm


def _render(request: HttpRequest, template: str, partial: str, context: dict) -> HttpResponse:
    """The whole page, or only its `partial` when htmx swaps it in (but not on a history restore)."""
    htmx = getattr(request, "htmx", None)
    name = f"{template}#{partial}" if htmx and not htmx.history_restore_request else template
    response = render(request, name, context)
    # The same URL answers a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@staff_required
def event_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    form = EventFilterForm(request.GET)
    filters = form.filters()
    page = selectors.uncounted_page(selectors.events_for_program(program, **filters), request.GET.get("page"))
    context = {"program": program, "form": form, "page": page, "livemode": filters["livemode"]}
    return _render(request, "panel/events.html", "table", context)


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
    return _render(request, "panel/clicks.html", "table", {"program": program, "form": form, "page": page})
