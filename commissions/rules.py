"""Creating and retiring commission rules, with validation that explains each mistake."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from affiliates.models import Affiliate, PartnerGroup, Program
from refapp.models import Actor, audit_log
from refapp.money import MAX_AMOUNT_MINOR

from .models import CommissionRule

EVENT_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_.-")


class RuleInvalid(Exception):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def validate_rule(
    *,
    event_name: str,
    type: str,
    rate_bp: int | None,
    amount_cents: int | None,
    tiers: list[Any] | None,
    currency: str | None = None,
    program_currency: str | None = None,
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not event_name or len(event_name) > 64 or set(event_name) - EVENT_NAME_CHARS:
        add("event", "Use 1 to 64 characters of a-z, 0-9, '_', '.' or '-', such as 'sale'.")
    if type == CommissionRule.Type.PERCENT:
        if rate_bp is None:
            add("rate_bp", "A percent rule needs rate_bp (basis points: 2000 = 20 %).")
        elif not 0 <= rate_bp <= 10_000:
            add("rate_bp", "A rate is between 0 and 10000 basis points (0 % to 100 %).")
        if amount_cents is not None:
            add("amount_cents", "A percent rule has no fixed amount; make a second, fixed rule for a hybrid.")
    elif type == CommissionRule.Type.FIXED:
        if amount_cents is None:
            add("amount_cents", "A fixed rule needs amount_cents, in the program currency's minor units.")
        elif not 0 <= amount_cents <= MAX_AMOUNT_MINOR:
            add("amount_cents", "The fixed amount must be zero or positive and not absurdly large.")
        if rate_bp is not None:
            add("rate_bp", "A fixed rule has no rate; make a second, percent rule for a hybrid.")
        if tiers:
            add("tiers", "Tiers set percent rates; they apply to percent rules only.")
        if currency and program_currency and currency.upper() != program_currency.upper():
            add("currency", f"Fixed amounts are in the program currency, {program_currency}, not {currency}.")
    else:
        add("type", "Use 'percent' or 'fixed'.")
    if tiers:
        seen: set[int] = set()
        for index, tier in enumerate(tiers):
            if not isinstance(tier, dict) or set(tier) != {"min_cents", "rate_bp"}:
                add("tiers", f'Tier {index + 1} must be {{"min_cents": int, "rate_bp": int}}.')
                continue
            min_cents, tier_rate = tier["min_cents"], tier["rate_bp"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (min_cents, tier_rate)):
                add("tiers", f"Tier {index + 1}: min_cents and rate_bp are integers.")
                continue
            if min_cents < 0 or not 0 <= tier_rate <= 10_000:
                add("tiers", f"Tier {index + 1}: min_cents is not negative and rate_bp is 0 to 10000.")
            if min_cents in seen:
                add("tiers", f"Two tiers start at {min_cents}; each threshold may appear once.")
            seen.add(min_cents)
    return errors


def rule_create(
    *,
    program: Program,
    event_name: str,
    type: str,
    rate_bp: int | None = None,
    amount_cents: int | None = None,
    group: PartnerGroup | None = None,
    affiliate: Affiliate | None = None,
    first_event_only: bool = False,
    duration_months: int | None = None,
    max_events: int | None = None,
    tiers: list[dict[str, int]] | None = None,
    currency: str | None = None,
    actor: Actor | None = None,
    livemode: bool = True,
) -> CommissionRule:
    """A new active rule. A test rule (livemode=False, made by a sk_test_ key) pays test events only."""
    errors = validate_rule(
        event_name=event_name,
        type=type,
        rate_bp=rate_bp,
        amount_cents=amount_cents,
        tiers=tiers,
        currency=currency,
        program_currency=program.currency,
    )
    if group is not None and affiliate is not None:
        errors.setdefault("group", []).append("A rule is scoped to a group or to an affiliate, not both.")
    if affiliate is not None and affiliate.livemode != livemode:
        errors.setdefault("affiliate", []).append("The affiliate is of the other mode.")
    if errors:
        raise RuleInvalid(errors)
    with transaction.atomic():
        rule = CommissionRule.objects.create(
            program=program,
            livemode=livemode,
            event_name=event_name,
            type=type,
            rate_bp=rate_bp,
            amount_cents=amount_cents,
            group=group,
            affiliate=affiliate,
            first_event_only=first_event_only,
            duration_months=duration_months,
            max_events=max_events,
            tiers=sorted(tiers or [], key=lambda t: t["min_cents"]),
        )
        audit_log(actor=actor, action="rule.created", obj=rule, data={"rule": rule.describe()})
    return rule


def rule_deactivate(*, rule: CommissionRule, actor: Actor | None = None) -> CommissionRule:
    """Rules are never deleted: commissions keep pointing at the rule that computed them."""
    with transaction.atomic():
        if CommissionRule.objects.filter(pk=rule.pk, is_active=True).update(is_active=False):
            audit_log(actor=actor, action="rule.deactivated", obj=rule)
    rule.refresh_from_db()
    return rule


# --- editing a rule ---------------------------------------------------------------------------

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
        successor = rule_create(program=locked.program, livemode=locked.livemode, actor=actor, **fields)
        rule_deactivate(rule=locked, actor=actor)
        audit_log(
            actor=actor,
            action="rule.replaced",
            obj=locked,
            data={"replaced_by": successor.public_id, "old": locked.describe(), "new": successor.describe()},
        )
    return successor
