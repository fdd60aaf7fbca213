"""Program settings and first-run setup write through affiliates.services, audited."""

import pytest
from django.contrib.auth.models import User

from affiliates.services import SetupDone, first_admin_create, program_update
from refapp.models import AuditLog

pytestmark = pytest.mark.django_db


def test_update_writes_and_audits_only_the_changed_fields(program):
    program_update(program=program, actor=None, name=program.name, hold_days=7, ref_params=["via"])
    program.refresh_from_db()
    assert (program.hold_days, program.ref_params) == (7, ["via"])
    assert AuditLog.objects.get(action="program.updated").data == {"fields": ["hold_days", "ref_params"]}


def test_update_without_changes_writes_no_audit_row(program):
    program_update(program=program, actor=None, name=program.name)
    assert not AuditLog.objects.filter(action="program.updated").exists()


def test_slug_and_currency_never_change(program):
    with pytest.raises(ValueError, match="slug"):
        program_update(program=program, actor=None, slug="other")


def test_the_settings_page_saves_through_the_service(staff_client, program):
    page = staff_client.get("/panel/p/acme/settings/")
    form = page.context["form"]
    data = {name: form[name].value() for name in form.fields if not form.fields[name].disabled}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data.update(hold_days=9, auto_approve="")
    response = staff_client.post("/panel/p/acme/settings/", data)
    assert response.status_code == 302
    program.refresh_from_db()
    assert program.hold_days == 9
    assert AuditLog.objects.get(action="program.updated").data["fields"] == ["hold_days"]


def test_first_admin_is_created_once(db):
    user = first_admin_create(username="boss", email="boss@acme.example", password="correct horse battery")
    assert user.is_staff and user.is_superuser and user.check_password("correct horse battery")
    with pytest.raises(SetupDone):
        first_admin_create(username="second", email="s@acme.example", password="correct horse battery")
    assert User.objects.count() == 1
    assert AuditLog.objects.filter(action="user.created").count() == 1
