import re

import pytest
from django.core import mail

from affiliates.models import MagicLink
from affiliates.services import affiliate_invite, affiliate_set_status
from tests.factories import AffiliateFactory

pytestmark = pytest.mark.django_db


def test_invite_creates_active_affiliate_and_emails_a_single_use_link(
    program, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        affiliate = affiliate_invite(program=program, email="Nia@Example.com", name="Nia & Co", code="NIA")
    assert affiliate.status == "active" and affiliate.email == "nia@example.com"
    [message] = mail.outbox
    assert message.to == ["nia@example.com"] and "Acme" in message.subject
    assert "Nia & Co" in message.body  # the text part is not HTML-escaped
    html = message.alternatives[0][0]
    assert "Nia &amp; Co" in html
    link = re.search(r"http://\S+/portal/login/(\S+)/", message.body)
    assert link and MagicLink.objects.filter(email="nia@example.com", used_at__isnull=True).count() == 1


def test_approval_and_rejection_email_the_applicant(program, django_capture_on_commit_callbacks):
    approved = AffiliateFactory(program=program, status="pending", email="a@example.com")
    rejected = AffiliateFactory(program=program, status="pending", email="r@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=approved, status="active")
        affiliate_set_status(affiliate=rejected, status="rejected", reason="No website yet")
    assert [(m.to, "approved" in m.subject) for m in mail.outbox] == [
        (["a@example.com"], True),
        (["r@example.com"], False),
    ]
    assert "No website yet" in mail.outbox[1].body


def test_suspension_sends_no_applicant_email(affiliate, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        affiliate_set_status(affiliate=affiliate, status="suspended", reason="spam")
    assert mail.outbox == []
