import smtplib

from celery import shared_task


@shared_task(bind=True, acks_late=True, max_retries=8)
def send_email(self, name: str, to: list[str], context: dict) -> None:
    from refapp.emails import deliver

    try:
        deliver(name, to, context)
    except (smtplib.SMTPException, OSError) as exc:  # the mail server is down or refused: retry later
        raise self.retry(exc=exc, countdown=min(3600, 30 * 2**self.request.retries)) from exc
