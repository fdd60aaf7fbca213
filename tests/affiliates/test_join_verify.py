import re

import pytest
import time_machine
from django.core import mail
from django.test import Client

from affiliates.access import PORTAL_EMAIL
from affiliates.models import Affiliate, MagicLink, PortalSession, ProgramStaff
from refapp.models import AuditLog
from tests.factories import AffiliateFactory, ProgramFactory

pytestmark = pytest.mark.django_db

FORM = {"name": "Nia", "email": "nia@example.com", "website": "https://nia.example", "promotion": "Blog"}


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Deliver what a block queues on commit (emails), as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def verify_link(program, committed):
    """Apply to `program` and return the path of the emailed verification link."""

    def make(**data):
        with committed():
            Client().post(f"/join/{program.slug}/", {**FORM, **data})
        match = re.search(r"https?://[^/\s]+(/join/[a-z0-9-]+/verify/\S+/)", mail.outbox[-1].body)
        assert match
        mail.outbox.clear()
        return match.group(1)

    return make


def test_link_opens_a_confirm_page_and_the_post_creates_a_pending_affiliate(
    client, program, staff_user, verify_link, committed
):
    link = verify_link()
    page = client.get(link)
    assert page.status_code == 200 and b"Confirm my email" in page.content
    assert not Affiliate.objects.exists()  # a mail scanner's GET creates nothing
    with committed():
        response = client.post(link)
    assert response.status_code == 302 and response["Location"] == "/join/acme/thanks/"
    nia = Affiliate.objects.get()
    assert (nia.email, nia.name, nia.status, nia.website, nia.promotion) == (
        "nia@example.com",
        "Nia",
        "pending",
        "https://nia.example",
        "Blog",
    )
    thanks = client.get("/join/acme/thanks/")
    assert b"Application received" in thanks.content
    # Verified means signed in: the portal shows the review notice, with no links yet.
    assert client.session[PORTAL_EMAIL] == "nia@example.com"
    assert PortalSession.objects.filter(affiliate=nia).count() == 1
    dashboard = client.get("/portal/")
    assert b"being reviewed" in dashboard.content and b"?ref=" not in dashboard.content


def test_admins_and_applicant_are_emailed(
    client, program, staff_user, django_user_model, verify_link, committed
):
    manager = django_user_model.objects.create_user("m", "manager@acme.example", "pw", is_staff=True)
    ProgramStaff.objects.create(program=program, user=manager, role=ProgramStaff.Role.MANAGER)
    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    link = verify_link()
    with committed():
        client.post(link)
    nia = Affiliate.objects.get()
    by_recipient = {tuple(m.to): m for m in mail.outbox}
    assert set(by_recipient) == {("admin@acme.example",), ("nia@example.com",)}
    notice = by_recipient[("admin@acme.example",)]
    assert "Nia" in notice.subject and "Acme" in notice.subject
    assert f"/panel/p/acme/affiliates/{nia.public_id}/" in notice.body
    assert f"/panel/p/acme/affiliates/{nia.public_id}/" in notice.alternatives[0][0]
    received = by_recipient[("nia@example.com",)]
    assert "received" in received.subject and received.alternatives[0][1] == "text/html"


def test_superusers_hear_of_applications_when_the_program_has_no_admin(
    client, program, django_user_model, verify_link, committed
):
    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    link = verify_link()
    with committed():
        client.post(link)
    assert ["root@example.com"] in [m.to for m in mail.outbox]


def test_auto_approve_creates_an_active_affiliate_and_welcomes_them(client, program, verify_link, committed):
    program.auto_approve = True
    program.save()
    link = verify_link()
    with committed():
        client.post(link)
    nia = Affiliate.objects.get()
    assert nia.status == "active" and nia.approved_at is not None
    [welcome] = [m for m in mail.outbox if m.to == ["nia@example.com"]]
    assert "Welcome" in welcome.subject and "/portal/login/" in welcome.body
    assert welcome.alternatives[0][1] == "text/html"
    assert b"Welcome to the Acme partner program" in client.get("/join/acme/thanks/").content
    assert f"?ref={nia.code}".encode() in client.get("/portal/").content


def test_replayed_link_is_refused_and_creates_nothing_more(client, program, verify_link, committed):
    link = verify_link()
    with committed():
        client.post(link)
    sent = len(mail.outbox)
    again = Client()
    assert again.get(link).status_code == 400
    with committed():
        replay = again.post(link)
    assert replay.status_code == 400 and b"no longer works" in replay.content
    assert Affiliate.objects.count() == 1 and len(mail.outbox) == sent
    assert PORTAL_EMAIL not in again.session


def test_expired_link_is_refused(client, program, verify_link):
    with time_machine.travel("2026-03-01T10:00:00Z", tick=False):
        link = verify_link()
    with time_machine.travel("2026-03-03T09:59:00Z", tick=False):
        assert Client().get(link).status_code == 200
    with time_machine.travel("2026-03-03T10:00:01Z", tick=False):
        assert client.get(link).status_code == 400
        assert client.post(link).status_code == 400
    assert not Affiliate.objects.exists()


def test_tampered_link_is_refused(client, program, verify_link):
    link = verify_link()
    prefix, token = link.rstrip("/").rsplit("/", 1)
    forged = f"{prefix}/{token[:-2]}{'A' if token[-2] != 'A' else 'B'}{token[-1]}/"
    assert client.get(forged).status_code == 400
    assert client.post(forged).status_code == 400
    assert client.post("/join/acme/verify/garbage/").status_code == 400
    assert not Affiliate.objects.exists()
    assert client.post(link).status_code == 302  # the real link still works


def test_link_of_another_program_is_refused(client, program, verify_link):
    ProgramFactory(slug="globex", name="Globex")
    link = verify_link().replace("/join/acme/", "/join/globex/")
    assert client.get(link).status_code == 400
    assert client.post(link).status_code == 400
    assert not Affiliate.objects.exists()


def test_email_that_joined_meanwhile_is_not_created_twice(client, program, verify_link, committed):
    link = verify_link()
    AffiliateFactory(program=program, email="nia@example.com", status="pending", name="Nia (invited)")
    with committed():
        response = client.post(link)
    assert response.status_code == 302
    assert Affiliate.objects.count() == 1 and mail.outbox == []
    assert MagicLink.objects.get(purpose="verify").used_at is not None


def test_terms_acceptance_is_recorded(client, program, verify_link):
    program.terms_url = "https://acme.example/terms"
    program.save()
    client.post(verify_link(accept_terms="on"))
    log = AuditLog.objects.get(action="affiliate.terms_accepted")
    assert log.data["terms_url"] == "https://acme.example/terms" and log.data["accepted"] is True
    assert log.object_id == Affiliate.objects.get().public_id


def test_unknown_program_is_404(client, db):
    assert client.get("/join/nope/verify/abc/").status_code == 404
    assert client.get("/join/nope/thanks/").status_code == 404


def test_thanks_page_of_another_program_shows_no_application(client, program, verify_link):
    ProgramFactory(slug="globex", name="Globex")
    client.post(verify_link())
    page = client.get("/join/globex/thanks/")
    # Not a bare b"Nia": the page's random CSRF token holds those three letters now and then.
    assert b"Check your email" in page.content and b"Thanks, Nia" not in page.content
