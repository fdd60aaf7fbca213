"""Writes that only the panel needs: partner groups, editing a rule, and bulk commission review.

Each is one transaction, audited with its actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from affiliates.models import PartnerGroup, Program
from affiliates.services import Conflict
from refapp.models import Actor, audit_log

from .models import Commission, CommissionRule
from .rules import rule_create, rule_deactivate
from .services import InvalidCommissionAction, commission_set_status

# --- partner groups ----------------------------------------------------------------------------


def group_create(*, program: Program, name: str, is_active: bool = True, actor: Actor | None) -> PartnerGroup:
    try:
        with transaction.atomic():
            group = PartnerGroup.objects.create(program=program, name=name, is_active=is_active)
            audit_log(actor=actor, action="group.created", obj=group, data={"name": name})
    except IntegrityError as exc:  # the unique (program, name) index, raced by a concurrent request
        raise Conflict("name", "Another group of this program already has this name.") from exc
    return group


def group_update(*, group: PartnerGroup, name: str, is_active: bool, actor: Actor | None) -> PartnerGroup:
    """Rename or (de)activate a group. Deactivating keeps its members; its rules stop applying."""
    try:
        with transaction.atomic():
            locked = PartnerGroup.objects.select_for_update().get(pk=group.pk)
            changes = {
                field: [getattr(locked, field), value]
                for field, value in (("name", name), ("is_active", is_active))
                if getattr(locked, field) != value
            }
            if not changes:
                return locked
            locked.name, locked.is_active = name, is_active
            locked.save(update_fields=["name", "is_active"])
            audit_log(actor=actor, action="group.updated", obj=locked, data=changes)
    except IntegrityError as exc:
        raise Conflict("name", "Another group of this program already has this name.") from exc
    return locked


# --- commission rules --------------------------------------------------------------------------

_RULE_FIELDS = (
    "event_name",
    "type",
    "rate_bp",
    "amount_cents",
    "group",
    "affiliate",
    "first_event_only",
    "duration_months",
    "max_events",
    "tiers",
)


def rule_unchanged(rule: CommissionRule, fields: dict[str, Any]) -> bool:
    wanted = {**fields, "tiers": sorted(fields.get("tiers") or [], key=lambda t: t["min_cents"])}
    return all(getattr(rule, name) == wanted.get(name) for name in _RULE_FIELDS)


class RuleNotEditable(Exception):
    pass


def rule_replace(*, rule: CommissionRule, actor: Actor | None, **fields: Any) -> CommissionRule:
    """Edit a rule without rewriting history: retire it and create its successor, all or nothing.

    Commissions already computed keep pointing at the old rule (and its inputs), so the past reads
    exactly as it was paid. Raises rules.RuleInvalid (nothing written) when the new values are
    invalid, and RuleNotEditable when the rule was retired meanwhile. Unchanged values are a no-op
    that returns the rule itself.
    """
    with transaction.atomic():
        locked = CommissionRule.objects.select_for_update().get(pk=rule.pk)
        if not locked.is_active:
            raise RuleNotEditable("This rule is no longer active; create a new rule instead.")
        if rule_unchanged(locked, fields):
            return locked
        # Create first: an invalid successor raises before the old rule is touched.
        successor = rule_create(program=locked.program, actor=actor, **fields)
        rule_deactivate(rule=locked, actor=actor)
        audit_log(
            actor=actor,
            action="rule.replaced",
            obj=locked,
            data={"replaced_by": successor.public_id, "old": locked.describe(), "new": successor.describe()},
        )
    return successor


# --- bulk review of commissions ----------------------------------------------------------------


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
