"""The login and join forms do the same work in the request for known and unknown emails.

Measured from outside, a known email used to take about twice as long to answer: the request looked
the email up, stored a link and rendered the email. Now the request only queues a task, and the
worker does the rest; these tests pin that the request's database work and queued tasks are the
same for an affiliate's email and a stranger's.
"""

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from affiliates import magic, portal_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """Tasks queued by the request, kept instead of run, so only the request's own work is seen."""
    calls = []
    monkeypatch.setattr(magic.login_link_send, "delay", lambda *args: calls.append(("login", args)))
    monkeypatch.setattr(
        portal_services.join_application_send, "delay", lambda *args: calls.append(("join", args))
    )
    return calls


def _request_work(django_capture_on_commit_callbacks, queued, path, data):
    queued.clear()
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        response = Client().post(path, data)
    tables = sorted(q["sql"].split(" WHERE ")[0] for q in queries.captured_queries)
    return response.status_code, response.get("Location"), tables, [kind for kind, _ in queued]


def test_portal_login_does_the_same_work_for_known_and_unknown_emails(
    affiliate, queued, django_capture_on_commit_callbacks
):
    known = _request_work(
        django_capture_on_commit_callbacks, queued, "/portal/login/", {"email": affiliate.email}
    )
    unknown = _request_work(
        django_capture_on_commit_callbacks, queued, "/portal/login/", {"email": "nobody@example.com"}
    )
    assert known == unknown
    assert known[3] == ["login"]
    assert mail.outbox == []  # nothing rendered or sent inside the request


def test_join_form_does_the_same_work_for_members_and_new_applicants(
    affiliate, queued, django_capture_on_commit_callbacks
):
    form = {"name": "Nia", "website": "https://nia.example", "promotion": ""}
    member = _request_work(
        django_capture_on_commit_callbacks, queued, "/join/acme/", {**form, "email": affiliate.email}
    )
    new = _request_work(
        django_capture_on_commit_callbacks, queued, "/join/acme/", {**form, "email": "nia@example.com"}
    )
    assert member == new
    assert member[3] == ["join"]
    assert mail.outbox == []


def test_the_worker_still_emails_only_affiliates(affiliate, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/portal/login/", {"email": "nobody@example.com"})
        Client().post("/portal/login/", {"email": affiliate.email})
    assert [m.to for m in mail.outbox] == [[affiliate.email]]
