"""Panel: reconciliation with Stripe. Recent checks, a "check now" button, the findings waiting for
a decision (acknowledge, mark resolved; for a reversal, pay it again or keep it recovered; always
with a note) and the balances paid again in the next payout."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from affiliates.models import Program
from payouts.reconcile import (
    ReconciliationError,
    finding_decide,
    period_of,
    reconciliation_start,
    reversal_carry,
)
from payouts.reconcile_models import BalanceAdjustment, ReconciliationFinding, ReconciliationRun
from refapp.htmx import render_page

from ..access import actor, can_write, get_program_for_staff, staff_required
from ..forms import FindingDecisionForm, ReconcileForm

Status = ReconciliationFinding.Status


def _findings_of(request: HttpRequest, program: Program):
    """The program's findings; a superuser also sees transfers that belong to no program (they may
    be another platform's, so no program's staff sees them)."""
    scope = Q(program=program)
    if request.user.is_superuser:
        scope |= Q(program__isnull=True)
    return ReconciliationFinding.objects.filter(scope).select_related("payout", "affiliate")


def _render(
    request: HttpRequest, program: Program, form: ReconcileForm | None = None, status: int = 200
) -> HttpResponse:
    findings = _findings_of(request, program)
    waiting = list(
        findings.filter(status__in=[Status.OPEN, Status.ACKNOWLEDGED])
        .select_related("payout__program")
        .order_by("-first_seen_at", "-pk")
    )
    for finding in waiting:  # what "pay it again" would carry, for the button's confirmation
        if finding.kind == ReconciliationFinding.Kind.REVERSED:
            cents, currency, why_not = reversal_carry(finding)
            finding.carry = {"cents": cents, "currency": currency, "why_not": why_not}
    runs = list(ReconciliationRun.objects.order_by("-started_at", "-pk")[:10])
    context = {
        "program": program,
        "can_write": can_write(request),
        "form": form or ReconcileForm(initial={"period": period_of(timezone.now())}),
        "decision_form": FindingDecisionForm(),
        "runs": runs,
        "running": any(run.status == ReconciliationRun.Status.RUNNING for run in runs),
        "waiting": waiting,
        "decided": findings.exclude(status__in=[Status.OPEN, Status.ACKNOWLEDGED]).order_by(
            "-decided_at", "-pk"
        )[:20],
        "adjustments": BalanceAdjustment.objects.filter(program=program)
        .select_related("affiliate", "payout")
        .order_by("-created_at", "-pk")[:50],
    }
    return render_page(request, "panel/reconciliation.html", context, partial="body", status=status)


@require_GET
@staff_required
def reconciliation_page(request: HttpRequest, slug: str) -> HttpResponse:
    return _render(request, get_program_for_staff(request, slug))


@require_POST
@staff_required
def reconciliation_check(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    form = ReconcileForm(request.POST)
    if form.is_valid():
        try:
            run = reconciliation_start(
                period=form.cleaned_data["period"], actor=actor(request), now=timezone.now()
            )
        except ValueError as exc:
            form.add_error("period", str(exc))
        else:
            messages.success(request, f"Checking {run.period} against Stripe; the findings appear below.")
            return redirect("panel:reconciliation", program.slug)
    return _render(request, program, form, status=400)


@require_POST
@staff_required
def finding_decide_view(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    finding = get_object_or_404(_findings_of(request, program), public_id=public_id)
    form = FindingDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a decision and write a note.")
        return redirect("panel:reconciliation", program.slug)
    try:
        finding = finding_decide(
            finding=finding,
            status=form.cleaned_data["action"],
            note=form.cleaned_data["note"],
            actor=actor(request),
            now=timezone.now(),
        )
    except ReconciliationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Finding {finding.public_id} {finding.get_status_display().lower()}.")
    return redirect("panel:reconciliation", program.slug)
