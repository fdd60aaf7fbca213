"""The daily email telling each affiliate what was approved for them (one digest, not one per row)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum

from affiliates.models import Affiliate
from refapp.emails import send_templated
from refapp.money import format_amount

from .models import Commission, SentDigest


def approval_digests(*, now: datetime) -> int:
    """Email every affiliate whose commissions were approved in the 24 hours before `now`.

    One digest per affiliate and UTC day, decided by the unique (affiliate, day) index of
    `SentDigest`: the row is inserted first, and the email is queued when that insert commits. A
    second run the same day, or a twin run at the same moment (its INSERT waits for the first
    one's commit, then fails), sends nothing again. Returns how many digests this run sent.
    """
    day = now.date()
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
        try:
            with transaction.atomic():
                SentDigest.objects.create(affiliate=affiliate, day=day, commissions=row["n"], created_at=now)
                # Queued on commit (send_templated): a rolled-back ledger row sends nothing.
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
        except IntegrityError:
            continue  # this affiliate's digest of the day is already sent (or being sent)
        sent += 1
    return sent
