"""Panel: first-run setup, staff sign-in, and program settings and keys."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.models import User
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from refapp.lockout import LOCKOUT_SECONDS, staff_sign_in
from refapp.models import Actor, audit_log
from tracking.views.public import tracker_url

from ..access import get_program_for_staff, programs_for_staff, staff_required
from ..forms_programs import ApiKeyForm, ProgramForm, SetupForm
from ..models import ApiKey, ProgramStaff
from ..services import apikey_create, apikey_revoke


@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    if not User.objects.filter(is_staff=True).exists():
        return redirect("panel:setup")
    if not (request.user.is_authenticated and request.user.is_staff):
        return redirect("panel:login")
    programs = list(programs_for_staff(request.user)[:2])
    if len(programs) == 1:
        return redirect("panel:dashboard", programs[0].slug)
    return redirect("panel:program-list")


@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Create the first admin. The page exists only while there is no staff user at all."""
    if User.objects.filter(is_staff=True).exists():
        raise Http404("Setup is done")
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Re-check under the write: two browsers racing through setup create one admin.
            if User.objects.select_for_update().filter(is_staff=True).exists():
                raise Http404("Setup is done")
            user = form.save(commit=False)
            user.email = form.cleaned_data["email"]
            user.is_staff = True
            user.is_superuser = True
            user.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Your admin account is ready. Now create your first program.")
        return redirect("panel:program-create")
    return render(request, "panel/setup.html", {"form": form})


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if not User.objects.filter(is_staff=True).exists():
        return redirect("panel:setup")
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}
    ) or not next_url.startswith(("/panel/", "/admin/")):  # the admin signs in here too (refapp/urls.py)
        next_url = "/panel/"
    form = AuthenticationForm(request, data=request.POST or None)
    locked = False
    if request.method == "POST":
        attempt = staff_sign_in(
            request, username=request.POST.get("username", ""), password=request.POST.get("password", "")
        )
        locked = attempt.locked
        if locked:
            form = AuthenticationForm(request)
            form.errors.clear()
        elif attempt.ok:
            login(request, attempt.user)
            return redirect(next_url)
        else:
            form.is_valid()  # fills the "please enter a correct username and password" error
            if attempt.user is not None and not attempt.user.is_staff:
                form.add_error(None, "This account has no access to the panel.")
    status = 429 if locked else 200
    return render(
        request,
        "panel/login.html",
        {"form": form, "next": next_url, "locked": locked, "lock_minutes": LOCKOUT_SECONDS // 60},
        status=status,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("panel:login")


@require_http_methods(["GET", "POST"])
@staff_required
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        audit_log(actor=Actor.for_user(user), action="user.password_changed", obj=user)
        messages.success(request, "Your password was changed.")
        return redirect("panel:home")
    return render(request, "panel/password.html", {"form": form})


@require_http_methods(["GET"])
@staff_required
def program_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "panel/programs.html", {"programs": programs_for_staff(request.user).order_by("name")}
    )


@require_http_methods(["GET", "POST"])
@staff_required
def program_create(request: HttpRequest) -> HttpResponse:
    form = ProgramForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        actor = Actor.for_user(request.user)
        with transaction.atomic():
            program = form.save()
            ProgramStaff.objects.get_or_create(
                program=program, user=request.user, defaults={"role": ProgramStaff.Role.ADMIN}
            )
            audit_log(actor=actor, action="program.created", obj=program, data={"slug": program.slug})
        messages.success(
            request, f"{program.name} is ready. Create an API key and paste the tracker tag on your site."
        )
        return redirect("panel:program-keys", program.slug)
    return render(request, "panel/program_form.html", {"form": form, "creating": True})


@require_http_methods(["GET", "POST"])
@staff_required
def program_settings(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=request.method == "POST")
    form = ProgramForm(request.POST or None, instance=program)
    if request.method == "POST" and form.is_valid():
        changed = form.changed_data
        form.save()
        audit_log(
            actor=Actor.for_user(request.user),
            action="program.updated",
            obj=program,
            data={"fields": changed},
        )
        messages.success(request, "Settings saved.")
        return redirect("panel:program-settings", program.slug)
    return render(
        request,
        "panel/program_form.html",
        {"form": form, "program": program, "creating": False, "snippet": snippet(program)},
    )


def snippet(program) -> str:
    return f'<script async src="{tracker_url()}" data-program="{program.slug}"></script>'


SECRET_SESSION_KEY = "panel_new_secret"


@require_http_methods(["GET", "POST"])
@staff_required
def program_keys(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=request.method == "POST")
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        key, secret = apikey_create(
            program=program,
            mode=form.cleaned_data["mode"],
            name=form.cleaned_data["name"],
            actor=Actor.for_user(request.user),
        )
        # Shown exactly once: kept in the session for the next page view, then dropped.
        request.session[SECRET_SESSION_KEY] = {"program": program.slug, "secret": secret, "mode": key.mode}
        return redirect("panel:program-keys", program.slug)
    new_secret = request.session.pop(SECRET_SESSION_KEY, None)
    if new_secret and new_secret.get("program") != program.slug:
        new_secret = None
    return render(
        request,
        "panel/keys.html",
        {
            "program": program,
            "form": form,
            "keys": ApiKey.objects.filter(program=program).order_by("revoked_at", "-created_at"),
            "new_secret": new_secret,
            "snippet": snippet(program),
            "base_url": settings.BASE_URL,
        },
    )


@require_POST
@staff_required
def program_key_revoke(request: HttpRequest, slug: str, key_id: int) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=True)
    key = get_object_or_404(ApiKey, pk=key_id, program=program)
    apikey_revoke(key=key, actor=Actor.for_user(request.user))
    messages.success(request, f"Key {key.prefix}… was revoked; requests with it now get 401.")
    return redirect("panel:program-keys", program.slug)
