from celery import shared_task
from django.db import OperationalError


@shared_task(bind=True, acks_late=True, max_retries=3)
def refresh_click_rollups(self) -> int:
    from tracking.rollups import refresh

    try:
        return refresh()
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=10) from exc


@shared_task(acks_late=True, ignore_result=True)
def drain_click_buffer() -> int:
    from tracking import buffer
    from tracking.services import dropped_clicks_fold

    if not buffer.enabled():
        return 0
    stored = buffer.drain()
    dropped_clicks_fold()  # the dropped-click counts buffered in Redis meanwhile
    return stored


@shared_task(acks_late=True, ignore_result=True)
def ensure_click_partitions() -> list[str]:
    from django.utils import timezone

    from tracking.partitions import ensure_ahead

    return ensure_ahead(now=timezone.now())


@shared_task(bind=True, acks_late=True, max_retries=3)
def apply_click_retention(self) -> dict:
    from django.utils import timezone

    from tracking.retention import retention_apply

    try:
        return retention_apply(now=timezone.now())
    except OperationalError as exc:
        raise self.retry(exc=exc, countdown=60) from exc
