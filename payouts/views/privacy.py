"""Privacy requests through the API: export and erase an affiliate's or a referred customer's data.
Thin: the rows, the tombstones and the JSON shapes live in payouts/privacy.py."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from affiliates.auth import KeyContext, authenticate
from affiliates.models import Affiliate
from refapp.api import ApiError, Fields, api_view, error_response, invalid, read_json_object

from ..privacy import PRIVACY_SELECTOR_PROPERTIES, Subject, privacy_erase, privacy_export


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = error_response(405, "method_not_allowed", f"Use {allowed}.")
    response["Allow"] = allowed
    return response


def _subject(ctx: KeyContext, data: dict[str, Any]) -> Subject:
    """Exactly one selector; an affiliate of another program or mode answers 404."""
    f = Fields(data)
    given = {
        name: f.str(name, max_length=schema["maxLength"])
        for name, schema in PRIVACY_SELECTOR_PROPERTIES.items()
    }
    f.raise_if_any()
    chosen = {name: value for name, value in given.items() if value}
    if len(chosen) != 1:
        raise invalid(
            "Give exactly one of email, customer_id or affiliate.",
            {name: ["Give exactly one of email, customer_id or affiliate."] for name in chosen or given},
        )
    subject = Subject(program=ctx.program, livemode=ctx.livemode)
    if given["affiliate"]:
        subject.affiliate = Affiliate.objects.filter(
            public_id=given["affiliate"], program=ctx.program, livemode=ctx.livemode
        ).first()
        if subject.affiliate is None:
            raise ApiError(404, "not_found", "No such affiliate.")
    subject.email = given["email"] or ""
    subject.customer_id = given["customer_id"] or ""
    return subject


@api_view
def export(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    ctx = authenticate(request)
    subject = _subject(ctx, {name: request.GET.get(name) for name in PRIVACY_SELECTOR_PROPERTIES})
    return JsonResponse(privacy_export(subject))


@api_view
def erase(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _method_not_allowed("POST")
    ctx = authenticate(request)
    subject = _subject(ctx, read_json_object(request))
    counts = privacy_erase(subject=subject, actor=ctx.actor)
    return JsonResponse({"subject": subject.kind, "erased": counts})
