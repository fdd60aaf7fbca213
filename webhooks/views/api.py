"""Webhook endpoints and deliveries through the API (/api/v1/openapi.json). Thin: JSON in webhooks/api.py,
writes in webhooks/services.py. A key sees only its program's endpoints of its own mode."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from affiliates.auth import authenticate
from refapp.api import ApiError, Fields, api_view, error_response, invalid, paginate, read_json_object

from .. import services
from ..api import delivery_json, endpoint_json, message_json
from ..models import WebhookDelivery, WebhookEndpoint


def _not_allowed(allow: str) -> HttpResponse:
    response = error_response(405, "method_not_allowed", f"Use {allow.replace(', ', ' or ')}.")
    response["Allow"] = allow
    return response


def _events(f: Fields, name: str = "events", *, required: bool) -> list[str] | None:
    value = f.data.get(name)
    if value is None:
        if required:
            f.add(name, "This field is required.")
        return None
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        f.add(name, "Must be a non-empty list of event types.")
        return None
    return value


def _endpoint_for(ctx, public_id: str) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(public_id=public_id).first()
    if endpoint is None or endpoint.livemode != ctx.livemode:
        raise ApiError(404, "not_found", "No such webhook endpoint.")
    if endpoint.program_id != ctx.program.pk:
        raise ApiError(403, "wrong_program", "This webhook endpoint belongs to another program.")
    return endpoint


def _service_error(exc: services.EndpointError) -> ApiError:
    return invalid(exc.message, {exc.field: [exc.message]})


@api_view
def endpoints(request: HttpRequest) -> HttpResponse:
    ctx = authenticate(request)
    if request.method == "GET":
        qs = WebhookEndpoint.objects.filter(program=ctx.program, livemode=ctx.livemode)
        return paginate(request, qs, endpoint_json)
    if request.method != "POST":
        return _not_allowed("GET, POST")
    data = read_json_object(request)
    f = Fields(data)
    url = f.str("url", required=True, max_length=2000)
    events = _events(f, required=True)
    description = f.str("description", max_length=500, default="") or ""
    for name in sorted(set(data) - {"url", "events", "description"}):
        f.add(name, "Unknown field.")
    f.raise_if_any()
    try:
        endpoint = services.endpoint_create(
            program=ctx.program,
            livemode=ctx.livemode,
            url=url or "",
            events=events or [],
            description=description,
            actor=ctx.actor,
            now=timezone.now(),
        )
    except services.EndpointError as exc:
        raise _service_error(exc) from None
    return JsonResponse(endpoint_json(endpoint, with_secret=True), status=201)


@api_view
def endpoint_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    ctx = authenticate(request)
    endpoint = _endpoint_for(ctx, public_id)
    if request.method == "GET":
        return JsonResponse(endpoint_json(endpoint))
    if request.method == "DELETE":
        body = {**endpoint_json(endpoint), "active": False}
        services.endpoint_delete(endpoint=endpoint, actor=ctx.actor)
        return JsonResponse(body)
    if request.method != "PATCH":
        return _not_allowed("GET, PATCH, DELETE")
    data = read_json_object(request)
    f = Fields(data)
    changes: dict[str, Any] = {
        "url": f.str("url", max_length=2000),
        "events": _events(f, required=False),
        "description": f.str("description", max_length=500),
    }
    if "active" in data:
        changes["is_active"] = f.bool("active")
    if data.get("description") == "":
        changes["description"] = ""
    for name in sorted(set(data) - {"url", "events", "description", "active"}):
        f.add(name, "Cannot be changed through this endpoint.")
    f.raise_if_any()
    try:
        endpoint = services.endpoint_update(endpoint=endpoint, actor=ctx.actor, now=timezone.now(), **changes)
    except services.EndpointError as exc:
        raise _service_error(exc) from None
    return JsonResponse(endpoint_json(endpoint))


@api_view
def endpoint_rotate_secret(request: HttpRequest, public_id: str) -> HttpResponse:
    ctx = authenticate(request)
    endpoint = _endpoint_for(ctx, public_id)
    if request.method != "POST":
        return _not_allowed("POST")
    endpoint = services.endpoint_rotate_secret(endpoint=endpoint, actor=ctx.actor, now=timezone.now())
    return JsonResponse(endpoint_json(endpoint, with_secret=True))


@api_view
def deliveries(request: HttpRequest) -> HttpResponse:
    ctx = authenticate(request)
    if request.method != "GET":
        return _not_allowed("GET")
    qs = WebhookDelivery.objects.filter(
        endpoint__program=ctx.program, endpoint__livemode=ctx.livemode
    ).select_related("endpoint", "message")
    endpoint_id = request.GET.get("endpoint")
    if endpoint_id:
        endpoint = WebhookEndpoint.objects.filter(
            public_id=endpoint_id, program=ctx.program, livemode=ctx.livemode
        ).first()
        if endpoint is None:
            raise invalid("Unknown endpoint.", {"endpoint": ["No such webhook endpoint."]})
        qs = qs.filter(endpoint=endpoint)
    status = request.GET.get("status")
    if status:
        if status not in WebhookDelivery.Status.values:
            raise invalid(
                "Unknown status.", {"status": [f"Use one of {', '.join(WebhookDelivery.Status.values)}."]}
            )
        qs = qs.filter(status=status)
    return paginate(request, qs, delivery_json)


@api_view
def delivery_retry(request: HttpRequest, public_id: str) -> HttpResponse:
    ctx = authenticate(request)
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "message").filter(public_id=public_id).first()
    )
    if delivery is None or delivery.endpoint.livemode != ctx.livemode:
        raise ApiError(404, "not_found", "No such delivery.")
    if delivery.endpoint.program_id != ctx.program.pk:
        raise ApiError(403, "wrong_program", "This delivery belongs to another program.")
    if request.method != "POST":
        return _not_allowed("POST")
    message = services.delivery_retry(delivery=delivery, actor=ctx.actor, now=timezone.now())
    return JsonResponse(message_json(message), status=202)
