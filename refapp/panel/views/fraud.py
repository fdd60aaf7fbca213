"""Panel: the fraud queue, and dismissing or confirming a flag."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from commissions.models import FraudFlag
from commissions.services import fraud_flag_resolve
from refapp.htmx import render_page

from .. import selectors
from ..access import actor, can_write, get_program_for_staff, staff_required
from ..forms import FraudResolveForm


@require_GET
@staff_required
def fraud_queue(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    context = {
        "program": program,
        "flags": selectors.open_fraud_flags(program),
        "affiliates": selectors.flagged_affiliates(program),
        "resolved": selectors.recently_resolved_flags(program),
        "can_write": can_write(request),
    }
    return render_page(request, "panel/fraud.html", context)


@require_POST
@staff_required
def fraud_resolve(request: HttpRequest, slug: str, flag_id: int) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    flag = get_object_or_404(FraudFlag, program=program, pk=flag_id)
    form = FraudResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether to dismiss or confirm the flag.")
    elif flag.status != FraudFlag.Status.OPEN:
        messages.info(request, f"This flag was already resolved: {flag.get_status_display().lower()}.")
    else:
        flag = fraud_flag_resolve(flag=flag, release=form.release, actor=actor(request), now=timezone.now())
        messages.success(request, f"Flag {flag.get_status_display().lower()}.")
    return redirect("panel:fraud-queue", program.slug)
