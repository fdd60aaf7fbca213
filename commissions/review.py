"""Reviewing commissions by hand: approve or reject a selection at once, each change audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from affiliates.models import Program
from refapp.models import Actor

from .models import Commission
from .services import InvalidCommissionAction, commission_set_status


@dataclass
class BulkResult:
    changed: int
    skipped: int


REVIEWABLE = (Commission.Status.PENDING, Commission.Status.APPROVED)


def commissions_bulk_set_status(
    *, program: Program, public_ids: list[str], status: str, reason: str, actor: Actor, now: datetime
) -> BulkResult:
    """Approve or reject the selected commissions of one program, by hand, with a reason.

    Only pending or approved rows of this program change; paid or rejected rows, rows already in
    the wanted status and ids of other programs are counted as skipped. All in one transaction,
    rows taken in primary-key order so two reviewers cannot deadlock.
    """
    wanted = list(dict.fromkeys(public_ids))
    changed = 0
    with transaction.atomic():
        rows = list(
            Commission.objects.select_for_update()
            .filter(program=program, public_id__in=wanted, status__in=REVIEWABLE)
            .exclude(status=status)
            .order_by("pk")
        )
        for commission in rows:
            try:
                commission_set_status(
                    commission=commission, status=status, reason=reason, actor=actor, now=now
                )
            except InvalidCommissionAction:
                continue
            changed += 1
    return BulkResult(changed=changed, skipped=len(wanted) - changed)
