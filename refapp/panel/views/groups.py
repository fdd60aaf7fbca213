"""Panel: partner groups, listed, created and edited (with their members and rules)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_http_methods

from affiliates import services as affiliate_services
from affiliates.models import PartnerGroup, Program
from refapp.htmx import render_page

from .. import selectors
from ..access import actor, can_write, get_program_for_staff, staff_required
from ..forms import GroupForm


def _get_group_for_program(program: Program, public_id: str) -> PartnerGroup:
    return get_object_or_404(PartnerGroup, program=program, public_id=public_id)


@require_GET
@staff_required
def group_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    context = {
        "program": program,
        "groups": selectors.groups_with_counts(program),
        "can_write": can_write(request),
    }
    return render_page(request, "panel/groups.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def group_create(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    form = GroupForm(request.POST or None, program=program)
    if request.method == "POST" and form.is_valid():
        try:
            group = affiliate_services.group_create(
                program=program,
                name=form.cleaned_data["name"],
                is_active=form.cleaned_data["is_active"],
                actor=actor(request),
            )
        except affiliate_services.Conflict as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, f"Group {group.name} created.")
            return redirect("panel:group-list", program.slug)
    return render_page(request, "panel/group_form.html", {"program": program, "form": form, "group": None})


@require_http_methods(["GET", "POST"])
@staff_required
def group_edit(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    group = _get_group_for_program(program, public_id)
    form = GroupForm(
        request.POST or None,
        program=program,
        group=group,
        initial={"name": group.name, "is_active": group.is_active},
    )
    if request.method == "POST" and form.is_valid():
        try:
            group = affiliate_services.group_update(
                group=group,
                name=form.cleaned_data["name"],
                is_active=form.cleaned_data["is_active"],
                actor=actor(request),
            )
        except affiliate_services.Conflict as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, f"Group {group.name} saved.")
            return redirect("panel:group-list", program.slug)
    context = {
        "program": program,
        "form": form,
        "group": group,
        "members": group.affiliates.filter(livemode=True).order_by("name")[:50],
        "member_count": group.affiliates.filter(livemode=True).count(),
        "rules": group.rules.filter(livemode=True).select_related("program").order_by("-is_active", "-pk"),
        "friend_reward": group.friend_rewards.first(),
    }
    return render_page(request, "panel/group_form.html", context)
