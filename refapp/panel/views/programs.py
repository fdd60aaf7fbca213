"""Panel: first-run setup, staff sign-in, and program settings and keys."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from affiliates import services
from affiliates.models import ApiKey, Program
from affiliates.rewards import program_reward
from refapp.htmx import render_page
from refapp.lockout import LOCKOUT_SECONDS, staff_sign_in
from refapp.tracker import tracker_snippet

from ..access import actor, get_program_for_staff, programs_for_staff, staff_required
from ..forms import ApiKeyForm, CustomerReferralForm, ProgramForm, SetupForm


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
        try:
            user = services.first_admin_create(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
        except services.SetupDone:
            raise Http404("Setup is done") from None
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        # `manage.py createprogram` may have made programs before anyone opened the panel.
        programs = list(Program.objects.order_by("created_at", "pk")[:2])
        if not programs:
            messages.success(request, "Your admin account is ready. Now create your first program.")
            return redirect("panel:program-create")
        if len(programs) == 1:
            messages.success(request, f"Your admin account is ready. Here is {programs[0].name}.")
            return redirect("panel:dashboard", programs[0].slug)
        messages.success(request, "Your admin account is ready. Here are your programs.")
        return redirect("panel:program-list")
    return render_page(request, "panel/setup.html", {"form": form})


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
    return render_page(
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
        user = services.staff_password_change(user=request.user, password=form.cleaned_data["new_password1"])
        update_session_auth_hash(request, user)
        messages.success(request, "Your password was changed.")
        return redirect("panel:home")
    return render_page(request, "panel/password.html", {"form": form})


@require_http_methods(["GET"])
@staff_required
def program_list(request: HttpRequest) -> HttpResponse:
    return render_page(
        request, "panel/programs.html", {"programs": programs_for_staff(request.user).order_by("name")}
    )


@require_http_methods(["GET", "POST"])
@staff_required
def program_create(request: HttpRequest) -> HttpResponse:
    form = ProgramForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            program = services.program_create(
                actor=actor(request), user=request.user, **form.program_fields()
            )
        except services.Conflict as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request, f"{program.name} is ready. Create an API key and paste the tracker tag on your site."
            )
            return redirect("panel:program-keys", program.slug)
    return render_page(request, "panel/program_form.html", {"form": form, "creating": True})


@require_http_methods(["GET", "POST"])
@staff_required
def program_settings(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=request.method == "POST")
    form = ProgramForm(request.POST or None, instance=program)
    if request.method == "POST" and form.is_valid():
        program = services.program_update(program=program, actor=actor(request), **form.program_fields())
        messages.success(request, "Settings saved.")
        return redirect("panel:program-settings", program.slug)
    return render_page(
        request,
        "panel/program_form.html",
        {
            "form": form,
            "program": program,
            "creating": False,
            "snippet": snippet(program),
            "referral_form": CustomerReferralForm(program=program),
            "friend_reward": program_reward(program),
        },
    )


@require_http_methods(["GET", "POST"])
@staff_required
def program_customer_referrals(request: HttpRequest, slug: str) -> HttpResponse:
    """Save the program's refer-a-friend settings (the second form of the settings page, which a
    GET here shows as well)."""
    program = get_program_for_staff(request, slug, admin=request.method == "POST")
    if request.method == "GET":
        referral_form = CustomerReferralForm(program=program)
    else:
        referral_form = CustomerReferralForm(request.POST, program=program)
    if request.method == "POST" and referral_form.is_valid():
        services.program_update(program=program, actor=actor(request), **referral_form.program_fields())
        messages.success(request, "Refer-a-friend settings saved.")
        return redirect("panel:program-settings", program.slug)
    context = {
        "form": ProgramForm(instance=program),
        "program": program,
        "creating": False,
        "snippet": snippet(program),
        "referral_form": referral_form,
        "friend_reward": program_reward(program),
    }
    return render_page(
        request, "panel/program_form.html", context, status=400 if request.method == "POST" else 200
    )


def snippet(program) -> str:
    return tracker_snippet(slug=program.slug, params=program.ref_params, cookie_days=program.cookie_days)


SECRET_SESSION_KEY = "panel_new_secret"


@require_http_methods(["GET", "POST"])
@staff_required
def program_keys(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=request.method == "POST")
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        key, secret = services.apikey_create(
            program=program,
            mode=form.cleaned_data["mode"],
            name=form.cleaned_data["name"],
            actor=actor(request),
        )
        # Shown exactly once: kept in the session for the next page view, then dropped.
        request.session[SECRET_SESSION_KEY] = {"program": program.slug, "secret": secret, "mode": key.mode}
        return redirect("panel:program-keys", program.slug)
    new_secret = request.session.pop(SECRET_SESSION_KEY, None)
    if new_secret and new_secret.get("program") != program.slug:
        new_secret = None
    return render_page(
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
    services.apikey_revoke(key=key, actor=actor(request))
    messages.success(request, f"Key {key.prefix}… was revoked; requests with it now get 401.")
    return redirect("panel:program-keys", program.slug)
