"""Destructive panel actions ask first (data-confirm, static/js/app.js): a dismissed question sends
nothing, an accepted one sends the form; a confirmation page's own button is not asked again."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from affiliates.models import ApiKey
from affiliates.services import apikey_create
from tests.browser.test_flows import ADMIN_PASSWORD, make_admin
from tests.factories import ProgramFactory

from .flows_helpers import panel_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_revoking_a_key_asks_and_a_no_keeps_it(page, live_server):
    program = ProgramFactory(slug="acme", name="Acme")
    make_admin(program)
    key, _ = apikey_create(program=program, name="Zapier")
    panel_login(page, live_server, "admin", ADMIN_PASSWORD, path="/panel/p/acme/keys/")
    questions: list[str] = []

    def answer(dialog, accept: bool):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_timeout(300)
    assert questions and "‘Zapier’" in questions[0] and "cannot be undone" in questions[0]
    key.refresh_from_db()
    assert key.revoked_at is None

    page.once("dialog", lambda dialog: answer(dialog, True))
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("revoked", exact=False).first).to_be_visible()
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
