import re

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from affiliates.access import PORTAL_AFFILIATE, PORTAL_EMAIL
from affiliates.models import PortalSession
from refapp.hashing import salted_hash
from tests.conftest import portal_login
from tests.factories import AffiliateFactory, ProgramFactory

pytestmark = pytest.mark.django_db

LINK_RE = re.compile(r"https?://[^/\s]+(/portal/login/[A-Za-z0-9_-]+/(?:\?next=\S+)?)")


@pytest.fixture
def request_link(django_capture_on_commit_callbacks):
    """POST the login form; emails queued on commit are delivered as a real commit would."""

    def post(client, email, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/portal/login/", {"email": email, **extra})

    return post


def emailed_link(message) -> str:
    """The path of the sign-in link in an email's text part."""
    match = LINK_RE.search(message.body)
    assert match, message.body
    return match.group(1)


def test_login_page_renders(client, db):
    response = client.get("/portal/login/")
    assert response.status_code == 200
    assert b'name="email"' in response.content


def test_known_email_gets_a_link_with_text_and_html(client, affiliate, request_link):
    response = request_link(client, "John@Partner.example ")
    assert response.status_code == 302 and response["Location"] == "/portal/login/?sent=1"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["john@partner.example"]
    assert LINK_RE.search(message.body)
    assert message.alternatives and message.alternatives[0][1] == "text/html"
    assert "/portal/login/" in message.alternatives[0][0]
    page = client.get(response["Location"])
    assert b"Check your email" in page.content


def test_unknown_email_is_answered_identically_and_gets_no_email(client, affiliate, request_link):
    known = request_link(client, "john@partner.example")
    unknown = request_link(Client(), "nobody@partner.example")
    assert (known.status_code, known["Location"], known.content) == (
        unknown.status_code,
        unknown["Location"],
        unknown.content,
    )
    assert [m.to for m in mail.outbox] == [["john@partner.example"]]


def test_rejected_affiliate_gets_no_email(client, program, request_link):
    AffiliateFactory(program=program, email="gone@partner.example", status="rejected")
    response = request_link(client, "gone@partner.example")
    assert response.status_code == 302
    assert mail.outbox == []


def test_invalid_email_shows_the_form_again(client, db, request_link):
    response = request_link(client, "not-an-email")
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert mail.outbox == []


def test_login_emails_are_rate_limited_per_email(affiliate, request_link):
    for _ in range(5):
        assert request_link(Client(REMOTE_ADDR="10.0.0.1"), "john@partner.example").status_code == 302
    # A sixth from another address is still limited: the bucket is the email.
    response = request_link(Client(REMOTE_ADDR="10.0.0.2"), "john@partner.example")
    assert response.status_code == 429
    assert b"Too many sign-in emails" in response.content
    assert len(mail.outbox) == 5


def test_login_emails_are_rate_limited_per_ip(affiliate, request_link):
    client = Client(REMOTE_ADDR="10.0.0.9")
    for i in range(5):
        assert request_link(client, f"someone{i}@example.com").status_code == 302
    response = request_link(client, "john@partner.example")
    assert response.status_code == 429
    assert mail.outbox == []


def test_magic_link_signs_in_once_and_records_the_session(client, affiliate, request_link):
    request_link(client, "john@partner.example")
    link = emailed_link(mail.outbox[0])
    confirm = client.get(link)
    assert confirm.status_code == 200 and b"Sign in" in confirm.content
    assert PORTAL_EMAIL not in client.session  # the GET alone (a mail scanner) signs nobody in
    old_key = client.session.session_key
    response = client.post(link, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 302 and response["Location"] == "/portal/"
    assert client.session[PORTAL_EMAIL] == "john@partner.example"
    assert client.session.session_key != old_key
    session = PortalSession.objects.get()
    assert session.affiliate == affiliate and session.ip_hash == salted_hash("ip", "203.0.113.7")
    assert client.get("/portal/").status_code == 200

    again = Client().post(link)
    assert again.status_code == 400
    assert b"no longer works" in again.content
    assert Client().get(link).status_code == 400


def test_magic_link_expires_after_30_minutes(client, affiliate, request_link):
    with time_machine.travel("2026-03-01T10:00:00Z", tick=False):
        request_link(client, "john@partner.example")
    link = emailed_link(mail.outbox[0])
    with time_machine.travel("2026-03-01T10:29:00Z", tick=False):
        assert Client().get(link).status_code == 200
    with time_machine.travel("2026-03-01T10:30:01Z", tick=False):
        fresh = Client()
        assert fresh.get(link).status_code == 400
        response = fresh.post(link)
        assert response.status_code == 400 and b"Email me a new link" in response.content
        assert PORTAL_EMAIL not in fresh.session
    assert PortalSession.objects.count() == 0


def test_unknown_token_is_a_clear_400(client, db):
    assert client.get("/portal/login/not-a-token/").status_code == 400
    assert client.post("/portal/login/not-a-token/").status_code == 400


def test_next_inside_the_portal_is_followed(client, affiliate, request_link):
    request_link(client, "john@partner.example", next="/portal/commissions/")
    link = emailed_link(mail.outbox[0])
    assert "next=%2Fportal%2Fcommissions%2F" in link
    assert client.post(link)["Location"] == "/portal/commissions/"


def test_next_outside_the_portal_is_ignored(client, affiliate):
    from affiliates.magic import link_create

    token = link_create(purpose="login", email="john@partner.example", now=timezone.now())
    response = client.post(f"/portal/login/{token}/?next=https://evil.example/portal/")
    assert response["Location"] == "/portal/"


def test_link_of_an_affiliate_rejected_since_does_not_sign_in(client, affiliate):
    from affiliates.magic import link_create

    token = link_create(purpose="login", email="john@partner.example", now=timezone.now())
    affiliate.status = "rejected"
    affiliate.save()
    assert client.post(f"/portal/login/{token}/").status_code == 400
    assert PORTAL_EMAIL not in client.session


def test_signed_in_visitor_of_the_login_page_goes_to_the_dashboard(portal_client):
    assert portal_client.get("/portal/login/")["Location"] == "/portal/"


def test_anonymous_portal_pages_redirect_to_login(client, db):
    for path in (
        "/portal/",
        "/portal/conversions/",
        "/portal/commissions/",
        "/portal/payouts/",
        "/portal/settings/payout/",
        "/portal/profile/",
        "/portal/switch/acme/",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/portal/login/?next="), path


def test_logout_needs_post_and_ends_the_portal_session(portal_client):
    assert portal_client.get("/portal/logout/").status_code == 405
    response = portal_client.post("/portal/logout/")
    assert response.status_code == 302 and response["Location"] == "/portal/login/"
    assert PORTAL_EMAIL not in portal_client.session
    assert portal_client.get("/portal/").status_code == 302


def test_logout_keeps_a_panel_sign_in(staff_user, affiliate):
    client = Client()
    client.force_login(staff_user)
    portal_login(client, affiliate)
    client.post("/portal/logout/")
    assert "_auth_user_id" in client.session


def test_one_sign_in_records_every_membership(client, affiliate, request_link):
    other = ProgramFactory(slug="globex", name="Globex")
    second = AffiliateFactory(program=other, email="john@partner.example", code="JOHNG")
    request_link(client, "john@partner.example")
    client.post(emailed_link(mail.outbox[0]))
    assert set(PortalSession.objects.values_list("affiliate_id", flat=True)) == {affiliate.pk, second.pk}


def test_switch_between_two_memberships_of_one_email(portal_client, affiliate):
    other = ProgramFactory(slug="globex", name="Globex")
    second = AffiliateFactory(program=other, email="john@partner.example", code="JOHNG", name="John G")
    page = portal_client.get("/portal/")
    assert b"Switch program" in page.content and b"/portal/switch/globex/" in page.content
    response = portal_client.get("/portal/switch/globex/")
    assert response.status_code == 302 and response["Location"] == "/portal/"
    assert portal_client.session[PORTAL_AFFILIATE] == second.pk
    assert b"JOHNG" in portal_client.get("/portal/").content
    portal_client.get("/portal/switch/acme/")
    assert portal_client.session[PORTAL_AFFILIATE] == affiliate.pk


def test_switch_to_a_program_of_another_email_is_404(portal_client, db):
    other = ProgramFactory(slug="globex", name="Globex")
    AffiliateFactory(program=other, email="mary@partner.example", code="MARYG")
    assert portal_client.get("/portal/switch/globex/").status_code == 404
    assert portal_client.get("/portal/switch/nope/").status_code == 404


def test_switch_to_a_rejected_membership_is_404(portal_client, affiliate):
    other = ProgramFactory(slug="globex", name="Globex")
    AffiliateFactory(program=other, email="john@partner.example", code="JOHNG", status="rejected")
    assert portal_client.get("/portal/switch/globex/").status_code == 404


def test_link_consumption_is_rate_limited_per_ip(affiliate):
    client = Client(REMOTE_ADDR="10.1.1.1")
    for _ in range(30):
        client.post("/portal/login/nope/")
    assert client.post("/portal/login/nope/").status_code == 429


def test_a_test_mode_affiliate_gets_no_sign_in_link(client, program, request_link):
    """Test affiliates are API test data whose address may be anyone's: the portal ignores them."""
    AffiliateFactory(program=program, email="testy@partner.example", livemode=False)
    request_link(client, "testy@partner.example")
    assert mail.outbox == []
