"""Emails are templates under templates/emails/: <name>.subject.txt, <name>.txt and <name>.html.

`send_templated` queues the send on Celery after the surrounding transaction commits, so an email
never goes out for a change that rolled back, and no SMTP call ever runs inside a transaction.
"""

from __future__ import annotations

from typing import Any

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


def send_templated(name: str, *, to: list[str], context: dict[str, Any]) -> None:
    """Queue an email; context must be JSON-serialisable (strings, numbers, lists, dicts)."""
    from .tasks import send_email

    render_email(name, context)  # fail now, in the request, if a template or variable is broken
    transaction.on_commit(lambda: send_email.delay(name, list(to), context))
