"""affiliates.services.program_create: the one way a program comes to exist (panel and command)."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from affiliates.models import ApiKey, Program, ProgramStaff
from affiliates.services import Conflict, program_create
from refapp.models import Actor, AuditLog

pytestmark = pytest.mark.django_db


def test_creates_the_program_with_an_audit_row_and_its_creator_as_admin(django_user_model):
    user = django_user_model.objects.create_user("boss", is_staff=True)
    program = program_create(
        name="Acme",
        slug="acme",
        website="https://acme.example",
        currency="eur",
        actor=Actor.for_user(user),
        user=user,
        hold_days=14,
    )
    assert (program.currency, program.hold_days) == ("EUR", 14)
    assert ProgramStaff.objects.get(program=program).user == user
    assert ProgramStaff.objects.get(program=program).role == ProgramStaff.Role.ADMIN
    row = AuditLog.objects.get(action="program.created")
    assert row.actor == user and row.actor_label == f"user:{user.pk}" and row.data == {"slug": "acme"}


def test_without_a_user_no_staff_row_is_made():
    program = program_create(name="Acme", slug="acme", website="https://acme.example", actor=None)
    assert not ProgramStaff.objects.filter(program=program).exists()
    assert AuditLog.objects.filter(action="program.created").count() == 1


def test_a_taken_slug_is_a_conflict_and_writes_nothing(program):
    with pytest.raises(Conflict) as exc:
        program_create(name="Other", slug=program.slug, website="https://other.example", actor=None)
    assert exc.value.field == "slug"
    assert Program.objects.count() == 1 and not AuditLog.objects.filter(action="program.created").exists()


def test_invalid_settings_write_nothing():
    with pytest.raises(ValidationError):
        program_create(name="Acme", slug="acme", website="https://acme.example", actor=None, payout_day=31)
    assert not Program.objects.exists() and not AuditLog.objects.exists()


def test_the_panel_creates_through_the_service(staff_client, staff_user):
    response = staff_client.post(
        "/panel/programs/new/",
        {
            "name": "Globex",
            "slug": "globex",
            "website": "https://globex.example",
            "currency": "USD",
            "cookie_days": 30,
            "attribution_model": "last_click",
            "hold_days": 30,
            "payout_day": 1,
            "minimum_payout": "25.00",
            "allowed_origins_text": "https://globex.example",
            "ref_params_text": "via",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/panel/p/globex/keys/"
    program = Program.objects.get(slug="globex")
    assert (program.minimum_payout_cents, program.allowed_origins, program.ref_params) == (
        2500,
        ["https://globex.example"],
        ["via"],
    )
    assert ProgramStaff.objects.get(program=program).user == staff_user
    assert AuditLog.objects.get(action="program.created", object_id=str(program.pk)).actor == staff_user


def test_the_command_creates_through_the_service(capsys):
    call_command("createprogram", name="Acme", slug="acme", website="https://acme.example", currency="gbp")
    program = Program.objects.get(slug="acme")
    assert program.currency == "GBP"
    assert AuditLog.objects.filter(action="program.created").count() == 1
    assert ApiKey.objects.filter(program=program).count() == 2
    with pytest.raises(CommandError, match="already exists"):
        call_command("createprogram", name="Acme", slug="acme", website="https://acme.example")
