"""Who may see what in the panel: staff users, per program, by their ProgramStaff role."""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from affiliates.models import Program, ProgramStaff
from refapp.models import Actor

WRITE_ROLES = {ProgramStaff.Role.ADMIN, ProgramStaff.Role.MANAGER}


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Panel views: staff users only; everyone else goes to the login page (or first-run setup)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            if not User.objects.filter(is_staff=True).exists():
                return redirect("panel:setup")
            return redirect(f"{reverse('panel:login')}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return wrapper


def programs_for_staff(user: User | AnonymousUser) -> QuerySet[Program]:
    if user.is_superuser:
        return Program.objects.all()
    return Program.objects.filter(staff__user=user)


def staff_role(user: User, program: Program) -> str | None:
    if user.is_superuser:
        return ProgramStaff.Role.ADMIN
    return ProgramStaff.objects.filter(user=user, program=program).values_list("role", flat=True).first()


def get_program_for_staff(
    request: HttpRequest, slug: str, *, write: bool = False, admin: bool = False
) -> Program:
    """The program if this staff user may see it (and change it, with write/admin), else 404."""
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise Http404("No such program")
    role = staff_role(request.user, program)
    if role is None:
        raise Http404("No such program")
    if admin and role != ProgramStaff.Role.ADMIN:
        raise Http404("Not allowed")
    if write and role not in WRITE_ROLES:
        raise Http404("Not allowed")
    request.program_role = role  # type: ignore[attr-defined]
    return program


def can_write(request: HttpRequest) -> bool:
    """After get_program_for_staff: may this user change the program's affiliates and money?"""
    return getattr(request, "program_role", None) in WRITE_ROLES


def actor(request: HttpRequest) -> Actor:
    return Actor.for_user(request.user)
