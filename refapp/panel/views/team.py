"""Panel: the program's team. Everyone on it sees who runs the program; only its admins invite,
change roles and remove; and an invited person sets their password from the emailed link."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.http import require_http_methods, require_POST

from affiliates import services
from affiliates.models import ProgramStaff
from refapp.htmx import render_page

from ..access import actor, get_program_for_staff, staff_required
from ..forms import TeamInviteForm, TeamRoleForm


def _render(request: HttpRequest, program, form: TeamInviteForm, status: int = 200) -> HttpResponse:
    members = (
        ProgramStaff.objects.filter(program=program).select_related("user").order_by("user__email", "pk")
    )
    return render_page(
        request,
        "panel/team.html",
        {
            "program": program,
            "members": members,
            "form": form,
            "roles": ProgramStaff.Role.choices,
            "is_admin": request.program_role == ProgramStaff.Role.ADMIN,  # type: ignore[attr-defined]
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_required
def team(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=request.method == "POST")
    form = TeamInviteForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return _render(request, program, form, status=400)
        try:
            member = services.staff_invite(
                program=program,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=actor(request),
            )
        except services.Conflict as exc:
            form.add_error("email", exc.message)
            return _render(request, program, form, status=409)
        messages.success(request, f"{member.user.email} was invited as {member.get_role_display()}.")
        return redirect("panel:team", program.slug)
    return _render(request, program, form)


def _member(request: HttpRequest, slug: str, member_id: int):
    program = get_program_for_staff(request, slug, admin=True)
    return program, get_object_or_404(
        ProgramStaff.objects.select_related("user"), pk=member_id, program=program
    )


@require_POST
@staff_required
def team_role(request: HttpRequest, slug: str, member_id: int) -> HttpResponse:
    program, member = _member(request, slug, member_id)
    form = TeamRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("panel:team", program.slug)
    try:
        member = services.staff_set_role(member=member, role=form.cleaned_data["role"], actor=actor(request))
    except services.LastAdmin:
        messages.error(request, "The program needs at least one admin: make someone else admin first.")
    else:
        messages.success(request, f"{member.user.email} is now {member.get_role_display()}.")
    return redirect("panel:team", program.slug)


@require_POST
@staff_required
def team_remove(request: HttpRequest, slug: str, member_id: int) -> HttpResponse:
    program, member = _member(request, slug, member_id)
    try:
        services.staff_remove(member=member, actor=actor(request))
    except services.LastAdmin:
        messages.error(request, "The program needs at least one admin: make someone else admin first.")
        return redirect("panel:team", program.slug)
    if member.user_id == request.user.pk:
        return redirect("panel:login")  # they removed themselves: their session has ended
    messages.success(request, f"{member.user.email} was removed from the team and signed out.")
    return redirect("panel:team", program.slug)


@require_http_methods(["GET", "POST"])
def welcome(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """An invited team member chooses their password from the emailed link (Django's password reset
    token: it stops working once the password is set, and after PASSWORD_RESET_TIMEOUT)."""
    try:
        user = User.objects.get(
            pk=int(force_str(urlsafe_base64_decode(uidb64))), is_active=True, is_staff=True
        )
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        return render_page(request, "panel/welcome.html", {"invalid": True}, status=404)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.staff_password_change(user=user, password=form.cleaned_data["new_password1"])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Your password is set. Welcome to the team.")
        return redirect("panel:home")
    return render_page(request, "panel/welcome.html", {"form": form, "username": user.get_username()})
