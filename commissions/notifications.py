"""The daily email telling each affiliate what was approved for them (one digest, not one per row)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Sum

from affiliates.models import Affiliate
from refapp.emails import send_templated
from refapp.models import AuditLog
from refapp.money import format_amount

from .models import Commission

DIGEST_TYPE = "affiliates.digest"


def digest_sent(object_id: str):
    """The audit rows of one affiliate's digest of one day. By object type and id: the audit
    log's index on both serves it, where the action and id alone read the whole log, which grows
    by a row per conversion."""
    return AuditLog.objects.filter(object_type=DIGEST_TYPE, object_id=object_id, action="digest.sent")


def approval_digests(*, now: datetime) -> int:
    """Email every affiliate whose commissions were approved in the 24 hours before `now`.

    A digest is recorded in the audit log per affiliate and day, so a second run the same day
    sends nothing again.
    """
    day = now.date().isoformat()
    rows = (
        Commission.objects.filter(
            livemode=True,
            status__in=[Commission.Status.APPROVED, Commission.Status.PROCESSING, Commission.Status.PAID],
            kind=Commission.Kind.COMMISSION,
            approved_at__gte=now - timedelta(days=1),
            approved_at__lt=now,
        )
        .values("affiliate_id")
        .annotate(n=Count("pk"), total=Sum("amount_cents"))
        .order_by("affiliate_id")
    )
    sent = 0
    for row in rows:
        affiliate = Affiliate.objects.select_related("program").get(pk=row["affiliate_id"])
        object_id = f"{affiliate.public_id}:{day}"
        if digest_sent(object_id).exists():
            continue
        send_templated(
            "commissions_approved",
            to=[affiliate.email],
            context={
                "name": affiliate.name,
                "program": affiliate.program.name,
                "count": row["n"],
                "total": format_amount(row["total"] or 0, affiliate.program.currency),
                "url": f"{settings.BASE_URL}/portal/commissions/",
            },
        )
        AuditLog.objects.create(
            actor_label="system",
            action="digest.sent",
            program_id=affiliate.program_id,
            object_type=DIGEST_TYPE,
            object_id=object_id,
            data={"count": row["n"]},
        )
        sent += 1
    return sent
