"""Panel: a program's webhook endpoints, their delivery log, test events and replays.

Everyone on the program's staff sees them; only a write role changes them; others get 404.
"""

from __future__ import annotations

from datetime import UTC

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from affiliates.models import Program
from refapp.htmx import render_page
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEndpoint

from ..access import actor, can_write, get_program_for_staff, staff_required
from ..forms import ReplaySinceForm, WebhookEndpointForm

RECENT_DELIVERIES = 50


def _get_endpoint_for_program(program: Program, public_id: str) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, program=program, public_id=public_id)


@require_GET
@staff_required
def webhook_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    endpoints = WebhookEndpoint.objects.filter(program=program).order_by("-pk")
    context = {"program": program, "endpoints": endpoints, "can_write": can_write(request)}
    return render_page(request, "panel/webhooks.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def webhook_create(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(
                program=program,
                livemode=form.cleaned_data["livemode"],
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                actor=actor(request),
                now=timezone.now(),
            )
        except services.EndpointError as exc:
            form.add_error(exc.field, exc.message)
        else:
            # Shown once, on this answer only: it is not a redirect that a reload could repeat.
            return render_page(
                request, "panel/webhook_secret.html", {"program": program, "endpoint": endpoint}
            )
    return render_page(
        request, "panel/webhook_form.html", {"program": program, "form": form, "endpoint": None}
    )


@require_GET
@staff_required
def webhook_detail(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    endpoint = _get_endpoint_for_program(program, public_id)
    deliveries = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("message")
        .order_by("-pk")[:RECENT_DELIVERIES]
    )
    context = {
        "program": program,
        "endpoint": endpoint,
        "deliveries": deliveries,
        "can_write": can_write(request),
        "replay_form": ReplaySinceForm(),
    }
    return render_page(request, "panel/webhook_detail.html", context, partial="deliveries")


@require_http_methods(["GET", "POST"])
@staff_required
def webhook_edit(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    endpoint = _get_endpoint_for_program(program, public_id)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
    }
    form = WebhookEndpointForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(
                endpoint=endpoint,
                actor=actor(request),
                now=timezone.now(),
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                is_active=form.cleaned_data["is_active"],
            )
        except services.EndpointError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("panel:webhook-detail", program.slug, endpoint.public_id)
    context = {"program": program, "form": form, "endpoint": endpoint}
    return render_page(request, "panel/webhook_form.html", context)


@require_POST
@staff_required
def webhook_delete(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    endpoint = _get_endpoint_for_program(program, public_id)
    services.endpoint_delete(endpoint=endpoint, actor=actor(request))
    messages.success(request, "Endpoint deleted.")
    return redirect("panel:webhook-list", program.slug)


@require_POST
@staff_required
def webhook_rotate(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    endpoint = _get_endpoint_for_program(program, public_id)
    endpoint = services.endpoint_rotate_secret(endpoint=endpoint, actor=actor(request), now=timezone.now())
    context = {"program": program, "endpoint": endpoint, "rotated": True}
    return render_page(request, "panel/webhook_secret.html", context)


@require_POST
@staff_required
def webhook_send_test(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    endpoint = _get_endpoint_for_program(program, public_id)
    services.endpoint_send_test(endpoint=endpoint, actor=actor(request), now=timezone.now())
    messages.success(request, "Test event queued.")
    return redirect("panel:webhook-detail", program.slug, endpoint.public_id)


@require_POST
@staff_required
def webhook_delivery_replay(
    request: HttpRequest, slug: str, public_id: str, delivery_id: str
) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    endpoint = _get_endpoint_for_program(program, public_id)
    delivery = get_object_or_404(
        WebhookDelivery.objects.select_related("message"), endpoint=endpoint, public_id=delivery_id
    )
    services.delivery_retry(delivery=delivery, actor=actor(request), now=timezone.now())
    messages.success(request, f"Message {delivery.message.public_id} queued again.")
    return redirect("panel:webhook-detail", program.slug, endpoint.public_id)


@require_POST
@staff_required
def webhook_replay_failed(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    endpoint = _get_endpoint_for_program(program, public_id)
    form = ReplaySinceForm(request.POST)
    if not form.is_valid():
        deliveries = (
            WebhookDelivery.objects.filter(endpoint=endpoint).select_related("message").order_by("-pk")
        )
        context = {
            "program": program,
            "endpoint": endpoint,
            "deliveries": deliveries[:RECENT_DELIVERIES],
            "can_write": True,
            "replay_form": form,
        }
        return render_page(request, "panel/webhook_detail.html", context, status=400)
    since = form.cleaned_data["since"]
    if timezone.is_naive(since):
        since = since.replace(tzinfo=UTC)
    count = services.replay_failed_since(
        endpoint=endpoint, since=since, actor=actor(request), now=timezone.now()
    )
    messages.success(request, f"{count} failed message(s) queued again.")
    return redirect("panel:webhook-detail", program.slug, endpoint.public_id)
