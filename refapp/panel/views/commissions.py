"""Panel: the commissions list, bulk review and export, and a commission's page."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from commissions import review
from commissions.calculation import explain
from commissions.models import Commission
from refapp.htmx import render_page
from refapp.money import format_amount
from tracking.csv_export import csv_response, export_filename

from .. import selectors
from ..access import actor, can_write, get_program_for_staff, staff_required
from ..forms import CommissionBulkForm, CommissionFilterForm
from ..history import readable_rows


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


@require_GET
@staff_required
def commission_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    form = CommissionFilterForm(request.GET)
    filters = form.filters()
    page = Paginator(selectors.commissions_for_program(program, **filters), 50).get_page(
        request.GET.get("page")
    )
    context = {
        "program": program,
        "form": form,
        "page": page,
        "livemode": filters["livemode"],
        "can_write": can_write(request),
    }
    return render_page(request, "panel/commissions.html", context, partial="table")


@require_POST
@staff_required
def commission_bulk(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    next_url = _safe_next(request, reverse("panel:commission-list", args=[program.slug]))
    form = CommissionBulkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(next_url)
    if request.POST.get("confirmed") != "1":
        return _bulk_confirm(request, program, form, next_url)
    result = review.commissions_bulk_set_status(
        program=program,
        public_ids=form.cleaned_data["ids"],
        status=form.status,
        reason=form.cleaned_data["reason"].strip() or "approved by hand",
        actor=actor(request),
        now=timezone.now(),
    )
    verb = "approved" if form.status == Commission.Status.APPROVED else "rejected"
    text = f"{result.changed} commission{'' if result.changed == 1 else 's'} {verb}"
    if result.skipped:
        text += f"; {result.skipped} skipped (paid, already {verb}, rejected, or not in this program)"
    messages.success(request, text + ".")
    return redirect(next_url)


def _bulk_confirm(request: HttpRequest, program, form: CommissionBulkForm, next_url: str) -> HttpResponse:
    """The confirm step of a bulk review: which rows change, how many, for how much in total."""
    rows = selectors.commissions_to_review(program, form.cleaned_data["ids"], form.status)
    verb = "Approve" if form.status == Commission.Status.APPROVED else "Reject"
    total = sum(c.amount_cents for c in rows)
    n = len(rows)
    context = {
        "program": program,
        "rows": rows,
        "verb": verb,
        "question": f"{verb} {n} commission{'' if n == 1 else 's'} totalling "
        f"{format_amount(total, program.currency)}?",
        "skipped": len(form.cleaned_data["ids"]) - n,
        "action": form.cleaned_data["action"],
        "reason": form.cleaned_data["reason"],
        "next": next_url,
    }
    return render_page(request, "panel/commission_bulk_confirm.html", context)


@require_GET
@staff_required
def commission_export(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    program = get_program_for_staff(request, slug)
    commissions = selectors.commissions_for_program(program, **CommissionFilterForm(request.GET).filters())
    return csv_response(
        filename=export_filename(program.slug, "commissions", timezone.now().date()),
        header=selectors.COMMISSION_CSV_HEADER,
        rows=selectors.commission_csv_rows(commissions),
    )


@require_GET
@staff_required
def commission_detail(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    commission = get_object_or_404(
        Commission.objects.select_related(
            "affiliate",
            "event",
            "event__click",
            "event__referral",
            "event__referral__click",
            "rule",
            "rule__program",
            "rule__group",
            "rule__affiliate",
            "reverses",
        ),
        program=program,
        public_id=public_id,
    )
    inputs = dict(commission.inputs or {})
    skipped = inputs.pop("skipped", [])
    context = {
        "program": program,
        "commission": commission,
        "event": commission.event,
        "explanation": explain(commission, reader="staff"),
        "arithmetic": selectors.commission_arithmetic(commission),
        "inputs": sorted(inputs.items()),
        "skipped": skipped,
        "reversals": commission.reversals.order_by("created_at", "pk"),
        "siblings": Commission.objects.filter(event=commission.event, kind=Commission.Kind.COMMISSION)
        .exclude(pk=commission.pk)
        .select_related("rule", "rule__program"),
        "flags": commission.event.fraud_flags.order_by("-created_at"),
        "history": readable_rows(selectors.commission_history(commission), program),
        "can_write": can_write(request),
        "reviewable": commission.status in review.REVIEWABLE,
    }
    return render_page(request, "panel/commission_detail.html", context)
