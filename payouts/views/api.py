"""Automation API reads of payouts: the list and one payout.

Thin: the JSON and its schema live in payouts/api.py. Payouts have no mode column; a key reads
the payouts of its mode's affiliates (only live affiliates are ever paid).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from affiliates.api import affiliate_param
from affiliates.auth import authenticate
from refapp.api import (
    ApiError,
    api_view,
    choice_param,
    day_end,
    day_start,
    method_not_allowed,
    paginate,
    query_dates,
)

from ..api import payout_json
from ..models import Payout


@api_view
def payouts(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed("GET")
    ctx = authenticate(request)
    qs = Payout.objects.filter(program=ctx.program, affiliate__livemode=ctx.livemode).select_related(
        "affiliate"
    )
    affiliate = affiliate_param(request, program=ctx.program, livemode=ctx.livemode)
    status = choice_param(request, "status", Payout.Status.values)
    first, last = query_dates(request)
    if affiliate is not None:
        qs = qs.filter(affiliate=affiliate)
    if status:
        qs = qs.filter(status=status)
    if first:
        qs = qs.filter(created_at__gte=day_start(first))
    if last:
        qs = qs.filter(created_at__lt=day_end(last))
    return paginate(request, qs, payout_json)


@api_view
def payout_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed("GET")
    ctx = authenticate(request)
    payout = Payout.objects.select_related("affiliate").filter(public_id=public_id).first()
    if payout is None or (payout.program_id == ctx.program.pk and payout.affiliate.livemode != ctx.livemode):
        raise ApiError(404, "not_found", "No such payout.")
    if payout.program_id != ctx.program.pk:
        raise ApiError(403, "wrong_program", "This payout belongs to another program.")
    return JsonResponse(payout_json(payout))
