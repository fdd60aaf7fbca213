"""Emails are templates under templates/emails/: <name>.subject.txt, <name>.txt and <name>.html.

`send_templated` queues the send on Celery after the surrounding transaction commits, so an email
never goes out for a change that rolled back, and no SMTP call ever runs inside a transaction. The
task lives here, next to the helper that queues it, so that the two never import each other.
"""

from __future__ import annotations

import smtplib
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string


def render_email(name: str, context: dict[str, Any]) -> tuple[str, str, str]:
    context = {"base_url": settings.BASE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{name}.subject.txt", context).split())
    text = render_to_string(f"emails/{name}.txt", context)
    html = render_to_string(f"emails/{name}.html", context)
    return subject, text, html


def deliver(name: str, to: list[str], context: dict[str, Any]) -> None:
    subject, text, html = render_email(name, context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, to)
    message.attach_alternative(html, "text/html")
    message.send()


# The registered name is the one the task had when it lived in refapp/tasks.py, so that messages
# already queued by an older release are still understood by the new worker.
@shared_task(bind=True, acks_late=True, max_retries=8, name="refapp.tasks.send_email")
def send_email(self, name: str, to: list[str], context: dict) -> None:
    try:
        deliver(name, to, context)
    except (smtplib.SMTPException, OSError) as exc:  # the mail server is down or refused: retry later
        raise self.retry(exc=exc, countdown=min(3600, 30 * 2**self.request.retries)) from exc


def send_templated(name: str, *, to: list[str], context: dict[str, Any]) -> None:
    """Queue an email; context must be JSON-serialisable (strings, numbers, lists, dicts)."""
    render_email(name, context)  # fail now, in the request, if a template or variable is broken
    transaction.on_commit(lambda: send_email.delay(name, list(to), context))
