"""What a newcomer meets in the first hour after `make run`: the port ties every link, the root
answers, the first-run setup says the right thing, and unknown pages answer a designed 404."""

import io
import os
import re
import shutil
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings

from affiliates.models import Program
from tests.conftest import portal_login
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db

PORT = "34567"


def make_run_env(port: str) -> dict[str, str]:
    """The environment `make run PORT=port` gives its processes, read from the Makefile's dry run."""
    env = {k: v for k, v in os.environ.items() if k not in {"BASE_URL", "DEBUG", "MAKEFLAGS", "MFLAGS"}}
    out = subprocess.run(
        ["make", "-n", "run", f"PORT={port}"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    ).stdout
    line = next(line for line in out.splitlines() if "honcho start" in line)
    return dict(re.findall(r"(\w+)=(\S+)", line.split("honcho")[0]))


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.skipif((settings.BASE_DIR / ".env").exists(), reason="a .env file sets its own BASE_URL")
def test_make_run_port_points_the_tag_the_portal_and_the_api_at_that_port(affiliate, api_client, client):
    env = make_run_env(PORT)
    assert env["BASE_URL"] == f"http://127.0.0.1:{PORT}"
    # the settings of every process started that way (and of the banner's createprogram command)
    child = {**os.environ, **env, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "refapp.settings"}
    base_url = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.BASE_URL)",
        ],
        cwd=settings.BASE_DIR,
        env=child,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert base_url == f"http://127.0.0.1:{PORT}"
    with override_settings(BASE_URL=base_url):
        out = io.StringIO()
        call_command(
            "createprogram",
            "--name",
            "Beta",
            "--slug",
            "beta",
            "--website",
            "https://beta.example",
            stdout=out,
        )
        assert f'src="http://127.0.0.1:{PORT}/t.js' in out.getvalue()

        links = api_client.get(f"/api/v1/affiliates/{affiliate.public_id}").json()["links"]
        assert links["go"].startswith(f"http://127.0.0.1:{PORT}/go/acme/JOHN")

        portal = portal_login(client, affiliate).get("/portal/")
        assert f"http://127.0.0.1:{PORT}/go/acme/JOHN" in portal.text
        assert "http://127.0.0.1:8000" not in portal.text


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_banner_names_the_pages_and_migrate_is_development():
    out = subprocess.run(
        ["make", "-n", "run", f"PORT={PORT}"], cwd=settings.BASE_DIR, capture_output=True, text=True
    ).stdout
    for page in ("/panel/", "/portal/", "/join/<slug>/", "/api/v1/docs"):
        assert page in out
    migrate = next(line for line in out.splitlines() if "manage.py migrate" in line)
    assert "DEBUG=${DEBUG:-1}" in migrate  # DATABASE_URL=… make run needs no SECRET_KEY


def test_root_goes_to_setup_on_a_fresh_install_then_to_sign_in(client, django_user_model):
    first = client.get("/", follow=True)
    assert first.redirect_chain[-1][0] == "/panel/setup/"
    django_user_model.objects.create_user("admin", "a@example.com", "pw", is_staff=True)
    then = client.get("/", follow=True)
    assert then.redirect_chain[-1][0] == "/panel/login/" and then.status_code == 200


SETUP = {
    "username": "admin",
    "email": "admin@example.com",
    "password1": "a long Passphrase 7",
    "password2": "a long Passphrase 7",
}


def test_setup_after_createprogram_goes_to_that_program(client):
    call_command(
        "createprogram",
        "--name",
        "Acme",
        "--slug",
        "acme",
        "--website",
        "https://acme.example",
        stdout=io.StringIO(),
    )
    response = client.post("/panel/setup/", SETUP, follow=True)
    assert response.redirect_chain[-1][0] == "/panel/p/acme/"
    assert "Now create your first program" not in response.text
    assert "Here is Acme" in response.text


def test_setup_with_no_program_asks_for_one(client):
    response = client.post("/panel/setup/", SETUP, follow=True)
    assert response.redirect_chain[-1][0] == "/panel/programs/new/"
    assert "Now create your first program" in response.text
    assert User.objects.filter(is_superuser=True).count() == 1 and not Program.objects.exists()


@pytest.mark.parametrize("url", ["/join/nope/", "/no/such/page", "/panel/p/nope/x/y/z"])
def test_unknown_pages_answer_the_designed_404_with_debug_off(client, url):
    ProgramFactory(slug="acme")
    assert settings.DEBUG is False
    response = client.get(url)
    assert response.status_code == 404
    assert "Page not found" in response.text and "Affiliate portal" in response.text
    assert "Using the URLconf" not in response.text  # not Django's debug page


def test_sqlite_index_warning_is_silenced_only_on_sqlite():
    from django.core.checks import run_checks
    from django.db import connection

    assert not [m for m in run_checks(databases=["default"]) if m.id == "models.W040" and not m.is_silenced()]
    assert ("models.W040" in settings.SILENCED_SYSTEM_CHECKS) == (connection.vendor == "sqlite")
