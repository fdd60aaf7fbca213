import re

import pytest
from django.core import mail
from django.test import Client

from affiliates.models import Affiliate, MagicLink
from tests.factories import AffiliateFactory, ProgramFactory

pytestmark = pytest.mark.django_db

FORM = {"name": "Nia", "email": "nia@example.com", "website": "https://nia.example", "promotion": ""}


@pytest.fixture
def apply(django_capture_on_commit_callbacks):
    """POST the join form; emails queued on commit are delivered as a real commit would."""

    def post(client, slug="acme", **data):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"/join/{slug}/", {**FORM, **data})

    return post


def test_form_renders_without_terms_when_the_program_has_none(client, program):
    response = client.get("/join/acme/")
    assert response.status_code == 200
    assert b'name="email"' in response.content and b"accept_terms" not in response.content


def test_unknown_program_is_404(client, db):
    assert client.get("/join/nope/").status_code == 404
    assert client.post("/join/nope/", FORM).status_code == 404


def test_application_emails_a_verification_link_and_creates_no_affiliate(client, program, apply):
    response = apply(client)
    assert response.status_code == 302 and response["Location"] == "/join/acme/thanks/"
    assert not Affiliate.objects.exists()
    link = MagicLink.objects.get()
    assert (link.purpose, link.email, link.program) == ("verify", "nia@example.com", program)
    [message] = mail.outbox
    assert message.to == ["nia@example.com"] and "Acme" in message.subject
    assert re.search(r"http://\S+/join/acme/verify/\S+/", message.body)
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "/join/acme/verify/" in html
    thanks = client.get("/join/acme/thanks/")
    assert b"Check your email" in thanks.content


def test_terms_are_required_only_when_the_program_has_terms(client, program, apply):
    program.terms_url = "https://acme.example/partner-terms"
    program.save()
    page = client.get("/join/acme/")
    assert b'name="accept_terms"' in page.content and b"https://acme.example/partner-terms" in page.content
    refused = apply(client)
    assert refused.status_code == 200 and b"errorlist" in refused.content
    assert mail.outbox == [] and not MagicLink.objects.exists()
    accepted = apply(client, accept_terms="on")
    assert accepted.status_code == 302 and len(mail.outbox) == 1


def test_website_or_promotion_is_required(client, program, apply):
    response = apply(client, website="", promotion="  ")
    assert response.status_code == 200 and b"website or how you will promote" in response.content
    assert mail.outbox == []
    assert apply(client, website="", promotion="A newsletter for 5k developers").status_code == 302


def test_invalid_fields_are_shown(client, program, apply):
    response = apply(client, name="", email="nope", website="not a url")
    assert response.status_code == 200
    assert response.content.count(b'class="errorlist"') >= 3
    assert mail.outbox == []


def test_existing_affiliate_gets_the_same_answer_and_a_sign_in_link(client, affiliate, apply):
    new = apply(Client(), email="nia@example.com")
    known = apply(client, email="John@Partner.example")
    assert (known.status_code, known["Location"], known.content) == (
        new.status_code,
        new["Location"],
        new.content,
    )
    assert Affiliate.objects.count() == 1
    assert MagicLink.objects.filter(purpose="verify").count() == 1  # only Nia's
    john = [m for m in mail.outbox if m.to == ["john@partner.example"]]
    assert len(john) == 1 and "/portal/login/" in john[0].body and "/join/" not in john[0].body


def test_rejected_applicant_gets_the_same_answer_and_no_email(client, program, apply):
    AffiliateFactory(program=program, email="gone@example.com", status="rejected")
    response = apply(client, email="gone@example.com")
    assert response.status_code == 302 and response["Location"] == "/join/acme/thanks/"
    assert mail.outbox == [] and not MagicLink.objects.exists()


def test_member_of_another_program_may_apply(client, program, apply):
    AffiliateFactory(program=ProgramFactory(slug="globex"), email="nia@example.com")
    apply(client)
    assert MagicLink.objects.filter(purpose="verify", program=program).count() == 1


def test_applications_are_rate_limited_per_ip(program, apply):
    client = Client(REMOTE_ADDR="10.2.0.1")
    for i in range(10):
        assert apply(client, email=f"a{i}@example.com").status_code == 302
    response = apply(client, email="late@example.com")
    assert response.status_code == 429 and b"Too many applications" in response.content
    assert len(mail.outbox) == 10


def test_applications_are_rate_limited_per_email(program, apply):
    for i in range(3):
        assert apply(Client(REMOTE_ADDR=f"10.3.0.{i}")).status_code == 302
    assert apply(Client(REMOTE_ADDR="10.3.0.9")).status_code == 429
    assert len(mail.outbox) == 3
