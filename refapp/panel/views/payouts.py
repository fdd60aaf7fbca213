"""Panel: next-run preview, run history, payout detail, mark manual payouts paid, retry, CSV."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from affiliates.models import Affiliate, TaxForm
from payouts.exports import (
    TAX_HEADER,
    WISE_HEADER,
    ExportRefused,
    sepa_payouts,
    sepa_transfer_file,
    tax_year_rows,
    wise_payouts,
    wise_rows,
)
from payouts.models import Payout
from payouts.services import PayoutStateError, payout_mark_paid, payout_plan, payout_retry, payouts_create
from refapp.htmx import render_page
from refapp.models import AuditLog
from refapp.money import format_amount, to_decimal
from tracking.csv_export import csv_response, export_filename, safe_cell

from ..access import actor, get_program_for_staff, staff_required
from ..forms import MarkPaidForm, PayoutRunForm
from ..history import readable_rows


@require_GET
@staff_required
def payout_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    now = timezone.now()
    payouts = (
        Payout.objects.filter(program=program).select_related("affiliate").order_by("-created_at", "-pk")
    )
    status = request.GET.get("status", "")
    if status in Payout.Status.values:
        payouts = payouts.filter(status=status)
    page = Paginator(payouts, 50).get_page(request.GET.get("page"))
    plan = payout_plan(program=program, now=now)
    context = {
        "program": program,
        "plan": plan,
        "run_question": run_question(plan),
        "page": page,
        "status": status,
        "statuses": Payout.Status.choices,
    }
    return render_page(request, "panel/payouts.html", context)


def run_question(plan) -> str:
    """ "Pay 12 affiliates $3,420.00?": what the admin confirms, with the count and the amount."""
    count = len(plan.payable)
    return (
        f"Pay {count} affiliate{'' if count == 1 else 's'} "
        f"{format_amount(plan.total_cents, plan.program.currency)}?"
    )


@require_http_methods(["GET", "POST"])
@staff_required
def payout_run(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the confirm step, naming the count and the total. POST: run, but only the run that was
    confirmed: the form carries the count and total the admin saw, and a run whose plan has changed
    since (a commission approved, an affiliate suspended) is refused and shown again."""
    program = get_program_for_staff(request, slug, admin=True)
    plan = payout_plan(program=program, now=timezone.now())
    form = PayoutRunForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            messages.error(request, "Confirm the run on this page first: it names who is paid and how much.")
            return redirect("panel:payout-run", program.slug)
        seen = (form.cleaned_data["expected_count"], form.cleaned_data["expected_total_cents"])
        if seen != (len(plan.payable), plan.total_cents):
            messages.error(
                request,
                "The payouts changed since you confirmed them; nothing was paid. Check the new figures.",
            )
            return redirect("panel:payout-run", program.slug)
        created = payouts_create(program=program, now=timezone.now(), actor=actor(request))
        messages.success(
            request,
            f"Created {len(created)} payout(s). Stripe payouts are being sent; manual ones wait for you below.",
        )
        return redirect("panel:payout-list", program.slug)
    context = {"program": program, "plan": plan, "question": run_question(plan)}
    return render_page(request, "panel/payout_run.html", context)


def _payout(program, public_id: str) -> Payout:
    return get_object_or_404(Payout.objects.select_related("affiliate"), program=program, public_id=public_id)


@require_GET
@staff_required
def payout_detail(
    request: HttpRequest, slug: str, public_id: str, form: MarkPaidForm | None = None
) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    return _render_detail(request, program, _payout(program, public_id), form)


def _render_detail(request: HttpRequest, program, payout: Payout, form: MarkPaidForm | None) -> HttpResponse:
    items = payout.items.select_related("commission", "commission__event").order_by("commission_id")
    history = readable_rows(
        AuditLog.objects.filter(object_type="payouts.payout", object_id=payout.public_id)
        .select_related("actor")
        .order_by("-created_at", "-id")[:50],
        program,
    )
    return render_page(
        request,
        "panel/payout_detail.html",
        {
            "program": program,
            "payout": payout,
            "items": items,
            "history": history,
            "form": form or MarkPaidForm(),
        },
    )


@require_http_methods(["POST"])
@staff_required
def payout_mark_paid_view(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    payout = _payout(program, public_id)
    form = MarkPaidForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, program, payout, form)
    if payout.method == Payout.Method.STRIPE:
        messages.error(request, "Stripe payouts are marked paid by their transfer, not by hand.")
        return redirect("panel:payout-detail", program.slug, payout.public_id)
    try:
        payout_mark_paid(
            payout=payout,
            reference=form.cleaned_data["reference"],
            actor=actor(request),
            now=timezone.now(),
        )
    except PayoutStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Payout {payout.public_id} marked paid.")
    return redirect("panel:payout-detail", program.slug, payout.public_id)


@require_POST
@staff_required
def payout_retry_view(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    payout = _payout(program, public_id)
    try:
        payout_retry(payout=payout, actor=actor(request), now=timezone.now())
    except PayoutStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Payout {payout.public_id} is being sent again.")
    return redirect("panel:payout-detail", program.slug, payout.public_id)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@staff_required
def payout_export(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    """Manual payouts in PayPal's bulk payout file layout (no header row): recipient, amount,
    currency, reference id, note, wallet. Filter with ?status= (default: pending)."""
    program = get_program_for_staff(request, slug)
    status = request.GET.get("status") or Payout.Status.PENDING
    rows = (
        Payout.objects.filter(program=program, method=Payout.Method.PAYPAL, status=status)
        .order_by("pk")
        .values_list("destination", "amount_cents", "currency", "public_id", "period")
    )
    writer = csv.writer(_Echo())

    def lines():
        for destination, cents, currency, public_id, period in rows.iterator(chunk_size=2000):
            # safe_cell like every export: the email and the program's name are typed by people.
            yield writer.writerow(
                [
                    safe_cell(destination),
                    str(to_decimal(cents, currency)),
                    currency,
                    public_id,
                    safe_cell(f"{program.name} affiliate payout {period}"),
                    "PAYPAL",
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{program.slug}-paypal-payouts-{timezone.now():%Y%m%d}.csv"'
    )
    return response


def _export_status(request: HttpRequest) -> str:
    status = request.GET.get("status") or Payout.Status.PENDING
    return status if status in Payout.Status.values else Payout.Status.PENDING


@require_GET
@staff_required
def payout_export_sepa(request: HttpRequest, slug: str) -> HttpResponse:
    """The EUR program's bank payouts to an IBAN as a SEPA credit transfer (pain.001) file.
    Full account numbers: for the staff who pay (managers and admins)."""
    program = get_program_for_staff(request, slug, write=True)
    now = timezone.now()
    try:
        content = sepa_transfer_file(
            program=program, payouts=sepa_payouts(program, _export_status(request)), execution_date=now.date()
        )
    except ExportRefused as exc:
        messages.error(request, f"No SEPA file: {exc}")
        return redirect("panel:payout-list", program.slug)
    response = HttpResponse(content, content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{program.slug}-sepa-payouts-{now:%Y%m%d}.xml"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@staff_required
def payout_export_wise(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    """Wise's batch payment CSV: Wise payouts and the bank payouts the SEPA file does not carry."""
    program = get_program_for_staff(request, slug, write=True)
    rows = wise_rows(wise_payouts(program, _export_status(request)).iterator(chunk_size=2000))
    return csv_response(
        filename=export_filename(program.slug, "wise-payouts", timezone.now().date()),
        header=WISE_HEADER,
        rows=rows,
    )


@require_GET
@staff_required
def tax_export(request: HttpRequest, slug: str) -> HttpResponse:
    """The year's paid payouts per affiliate with their tax details (?year=, default this year)."""
    program = get_program_for_staff(request, slug, admin=True)
    raw = request.GET.get("year", "")
    year = timezone.now().year
    if raw:
        if not (raw.isascii() and raw.isdigit() and 2000 <= int(raw) <= 2100):
            messages.error(request, "Choose a year between 2000 and 2100 for the tax report.")
            return redirect("panel:payout-list", program.slug)
        year = int(raw)
    return csv_response(
        filename=f"{program.slug}-tax-report-{year}.csv",
        header=TAX_HEADER,
        rows=tax_year_rows(program=program, year=year),
    )


@require_GET
@staff_required
def tax_form_download(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    """An affiliate's uploaded W-9/W-8: program admins only, always as a download, never rendered."""
    program = get_program_for_staff(request, slug, admin=True)
    affiliate = get_object_or_404(Affiliate, program=program, public_id=public_id)
    form = TaxForm.objects.filter(affiliate=affiliate).first()
    if form is None:
        raise Http404("No form on file")
    response = HttpResponse(bytes(form.content), content_type=form.content_type)
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}.get(
        form.content_type, "bin"
    )
    response["Content-Disposition"] = f'attachment; filename="{affiliate.code}-tax-form.{extension}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
