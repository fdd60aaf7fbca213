from celery import shared_task
from django.db import OperationalError
from django.utils import timezone


@shared_task(bind=True, acks_late=True, max_retries=5)
def approve_due_commissions(self) -> int:
    from commissions.services import approve_due_commissions as approve

    try:
        return approve(now=timezone.now())
    except OperationalError as exc:  # a lock timeout or lost connection: try again shortly
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc


@shared_task(acks_late=True)
def send_approval_digests() -> int:
    from commissions.notifications import approval_digests

    return approval_digests(now=timezone.now())


@shared_task(bind=True, acks_late=True, max_retries=3)
def fold_conversion_rollups(self) -> int:
    from commissions.rollups import fold

    try:
        return fold()
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=5) from exc
