"""Panel shell: first-run setup, sign-in with lockout, programs, keys and settings."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from affiliates.models import ApiKey, Program, ProgramStaff
from affiliates.services import hash_secret
from refapp.models import AuditLog

pytestmark = pytest.mark.django_db


def test_first_run_leads_to_setup_then_setup_is_gone(client):
    assert client.get("/panel/")["Location"] == "/panel/setup/"
    assert client.get("/panel/p/acme/")["Location"] == "/panel/setup/"
    response = client.post(
        "/panel/setup/",
        {
            "username": "boss",
            "email": "boss@acme.example",
            "password1": "a-long passphrase 42",
            "password2": "a-long passphrase 42",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/panel/programs/new/"
    user = User.objects.get(username="boss")
    assert user.is_staff and user.is_superuser
    assert client.get("/panel/setup/").status_code == 404
    assert Client().get("/panel/setup/").status_code == 404


def test_setup_form_errors(client):
    response = client.post(
        "/panel/setup/", {"username": "boss", "email": "nope", "password1": "x", "password2": "y"}
    )
    assert response.status_code == 200
    assert not User.objects.exists()
    content = response.content.decode()
    assert "Enter a valid email address" in content and "didn’t match" in content


def test_login_and_logout(staff_user):
    client = Client()
    assert client.get("/panel/p/acme/")["Location"] == "/panel/login/?next=%2Fpanel%2Fp%2Facme%2F"
    response = client.post(
        "/panel/login/", {"username": "admin", "password": "correct horse battery", "next": "/panel/p/acme/"}
    )
    assert response.status_code == 302 and response["Location"] == "/panel/p/acme/"
    assert client.get("/panel/p/acme/").status_code == 200
    client.post("/panel/logout/")
    assert client.get("/panel/p/acme/").status_code == 302


def test_login_refuses_offsite_next(staff_user):
    response = Client().post(
        "/panel/login/",
        {"username": "admin", "password": "correct horse battery", "next": "https://evil.example/"},
    )
    assert response["Location"] == "/panel/"


def test_login_locks_after_repeated_failures(staff_user):
    client = Client()
    for _ in range(5):
        response = client.post("/panel/login/", {"username": "admin", "password": "wrong"})
        assert response.status_code == 200 and "correct username and password" in response.content.decode()
    locked = client.post("/panel/login/", {"username": "admin", "password": "correct horse battery"})
    assert locked.status_code == 429 and "locked" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_non_staff_cannot_sign_in(staff_user, django_user_model):
    django_user_model.objects.create_user("plain", password="correct horse battery")
    response = Client().post("/panel/login/", {"username": "plain", "password": "correct horse battery"})
    assert response.status_code == 200 and "no access" in response.content.decode()


def test_password_change(staff_client, staff_user):
    bad = staff_client.post(
        "/panel/password/", {"old_password": "nope", "new_password1": "x", "new_password2": "y"}
    )
    assert bad.status_code == 200 and "incorrectly" in bad.content.decode()
    good = staff_client.post(
        "/panel/password/",
        {
            "old_password": "correct horse battery",
            "new_password1": "brand new passphrase 9",
            "new_password2": "brand new passphrase 9",
        },
    )
    assert good.status_code == 302
    staff_user.refresh_from_db()
    assert staff_user.check_password("brand new passphrase 9")
    assert staff_client.get("/panel/p/acme/").status_code == 200  # still signed in


def test_password_page_requires_login(client, staff_user):
    assert client.get("/panel/password/").status_code == 302


def test_create_program_makes_creator_admin(staff_client, staff_user):
    response = staff_client.post(
        "/panel/programs/new/",
        {
            "name": "Initech",
            "slug": "initech",
            "website": "https://initech.example",
            "currency": "EUR",
            "cookie_days": 60,
            "attribution_model": "first_click",
            "hold_days": 14,
            "payout_day": 5,
            "minimum_payout": "25.50",
            "allowed_origins_text": "https://initech.example\nhttps://www.initech.example/",
            "ref_params_text": "via, aff",
            "terms_url": "https://initech.example/terms",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/panel/p/initech/keys/"
    program = Program.objects.get(slug="initech")
    assert (
        program.currency,
        program.cookie_days,
        program.hold_days,
        program.payout_day,
        program.minimum_payout_cents,
    ) == ("EUR", 60, 14, 5, 2550)
    assert program.allowed_origins == ["https://initech.example", "https://www.initech.example"]
    assert program.ref_params == ["via", "aff"] and program.attribution_model == "first_click"
    assert ProgramStaff.objects.get(program=program).user == staff_user


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cookie_days", "0", "greater than or equal to 1"),
        ("payout_day", "31", "less than or equal to 28"),
        ("minimum_payout", "1.234", "decimal places"),
        ("allowed_origins_text", "acme.example/path", "not an origin"),
        ("ref_params_text", "good, b@d", "not a valid URL parameter"),
        ("slug", "acme", "already exists"),
        ("website", "nope", "valid URL"),
    ],
)
def test_program_form_errors(staff_client, field, value, message):
    data = {
        "name": "X",
        "slug": "x-prog",
        "website": "https://x.example",
        "currency": "USD",
        "cookie_days": 30,
        "attribution_model": "last_click",
        "hold_days": 30,
        "payout_day": 1,
        "minimum_payout": "50.00",
    }
    data[field] = value
    response = staff_client.post("/panel/programs/new/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Program.objects.filter(slug="x-prog").exists()


def test_settings_edit_keeps_slug_and_currency(staff_client, program):
    page = staff_client.get("/panel/p/acme/settings/")
    assert page.status_code == 200 and "50.00" in page.content.decode()
    response = staff_client.post(
        "/panel/p/acme/settings/",
        {
            "name": "Acme Inc",
            "slug": "hacked",
            "website": "https://acme.example",
            "currency": "JPY",
            "cookie_days": 45,
            "attribution_model": "last_click",
            "hold_days": 7,
            "payout_day": 1,
            "minimum_payout": "100",
            "auto_approve": "on",
        },
    )
    assert response.status_code == 302
    program.refresh_from_db()
    assert (
        program.name,
        program.slug,
        program.currency,
        program.cookie_days,
        program.hold_days,
        program.auto_approve,
        program.minimum_payout_cents,
    ) == ("Acme Inc", "acme", "USD", 45, 7, True, 10000)
    assert AuditLog.objects.filter(action="program.updated").exists()


def test_key_is_shown_once_and_stored_hashed(staff_client, program):
    response = staff_client.post("/panel/p/acme/keys/", {"mode": "test", "name": "staging"})
    assert response.status_code == 302
    page = staff_client.get("/panel/p/acme/keys/").content.decode()
    secret = re.search(r'value="(sk_test_[^"]+)"', page).group(1)
    assert ApiKey.objects.get(key_hash=hash_secret(secret)).name == "staging"
    assert secret not in staff_client.get("/panel/p/acme/keys/").content.decode()
    assert "data-program=&quot;acme&quot;" in page and "/t.js?v=" in page


def test_revoked_key_stops_working(staff_client, program, api_client):
    key = ApiKey.objects.get(program=program)
    staff_client.post(f"/panel/p/acme/keys/{key.pk}/revoke/")
    assert api_client.post("/api/v1/events", {"event": "sale"}).status_code == 401


@pytest.mark.parametrize("path", ["/panel/p/acme/", "/panel/p/acme/settings/", "/panel/p/acme/keys/"])
def test_program_pages_for_owner_outsider_and_anonymous(staff_client, other_staff_client, client, path):
    assert staff_client.get(path).status_code == 200
    assert other_staff_client.get(path).status_code == 404
    assert client.get(path)["Location"].startswith("/panel/login/")


def test_outsider_cannot_change_settings_or_keys(other_staff_client, program):
    key = ApiKey.objects.create(program=program, key_hash="x" * 64, prefix="sk_live_x")
    assert other_staff_client.post("/panel/p/acme/settings/", {"name": "Pwned"}).status_code == 404
    assert other_staff_client.post("/panel/p/acme/keys/", {"mode": "live"}).status_code == 404
    assert other_staff_client.post(f"/panel/p/acme/keys/{key.pk}/revoke/").status_code == 404
    program.refresh_from_db()
    key.refresh_from_db()
    assert program.name == "Acme" and key.revoked_at is None and ApiKey.objects.count() == 1


def test_viewer_sees_but_cannot_change(program, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    ProgramStaff.objects.create(program=program, user=viewer, role="viewer")
    client = Client()
    client.force_login(viewer)
    assert client.get("/panel/p/acme/settings/").status_code == 200
    assert client.post("/panel/p/acme/keys/", {"mode": "live"}).status_code == 404


def test_program_list_shows_only_own_programs(staff_client, other_staff_client):
    assert "Globex" not in staff_client.get("/panel/programs/").content.decode()
    assert "Acme" not in other_staff_client.get("/panel/programs/").content.decode()


def test_home_redirects_to_single_program(staff_client):
    assert staff_client.get("/panel/")["Location"] == "/panel/p/acme/"
