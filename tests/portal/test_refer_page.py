"""The public refer-a-friend page: a customer asks for their link by email, and the emailed link
opens a page with their referral link and code (issue 16, item 4)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from affiliates.referrers import referrer_enrol
from refapp.models import Actor
from tests.factories import AffiliateFactory, ProgramFactory

pytestmark = pytest.mark.django_db

LINK_RE = re.compile(r"https?://[^/\s]+(/refer/acme/[A-Za-z0-9_-]+/)")


@pytest.fixture
def friends_program(program):
    program.customer_referrals = True
    program.save()
    return program


@pytest.fixture
def referrer(friends_program):
    return referrer_enrol(
        program=friends_program,
        livemode=True,
        email="ann@customer.example",
        customer_id="cus_ann",
        name="Ann",
        actor=Actor("test"),
    )[0]


@pytest.fixture
def ask(django_capture_on_commit_callbacks):
    def post(client, email, slug="acme"):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"/refer/{slug}/", {"email": email})

    return post


def test_the_emailed_link_opens_a_page_with_the_referrers_link_and_code(client, referrer, ask):
    response = ask(client, "Ann@Customer.example")
    assert response.status_code == 302 and response["Location"] == "/refer/acme/?sent=1"
    assert b"Check your email" in client.get(response["Location"]).content
    [message] = mail.outbox
    assert message.to == ["ann@customer.example"]
    path = LINK_RE.search(message.body).group(1)

    page = Client().get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert referrer.code in html
    assert f"https://acme.example?ref={referrer.code}" in html
    assert f"/go/acme/{referrer.code}" in html
    assert page["Referrer-Policy"] == "no-referrer"
    # Mail scanners open links first: the page still opens for the customer afterwards.
    assert Client().get(path).status_code == 200


def test_the_link_expires_after_30_minutes(client, referrer, ask):
    ask(client, "ann@customer.example")
    path = LINK_RE.search(mail.outbox[0].body).group(1)
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        page = Client().get(path)
    assert page.status_code == 400 and referrer.code not in page.content.decode()


def test_an_unknown_email_is_answered_the_same_and_gets_nothing(client, referrer, ask):
    known = ask(client, "ann@customer.example")
    unknown = ask(Client(), "nobody@customer.example")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [m.to for m in mail.outbox] == [["ann@customer.example"]]


def test_an_affiliate_of_the_program_gets_no_referrer_link(client, friends_program, ask):
    AffiliateFactory(program=friends_program, email="john@partner.example", code="JOHN")
    ask(client, "john@partner.example")
    assert mail.outbox == []


def test_a_link_of_another_program_or_a_made_up_token_opens_nothing(client, referrer, ask):
    other = ProgramFactory(slug="other", customer_referrals=True)
    ask(client, "ann@customer.example")
    token = LINK_RE.search(mail.outbox[0].body).group(1).split("/")[3]
    assert Client().get(f"/refer/{other.slug}/{token}/").status_code == 400
    assert Client().get("/refer/acme/made-up-token/").status_code == 400


def test_the_page_is_not_there_for_a_program_without_customer_referrals(client, program):
    assert client.get("/refer/acme/").status_code == 404


def test_a_bad_email_is_a_form_error(client, friends_program, ask):
    response = ask(client, "not an email")
    assert response.status_code == 200 and b"errorlist" in response.content
    assert mail.outbox == []
