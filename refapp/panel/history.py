"""Audit rows as people read them: what happened, who did it, what changed, and a link to the object.

The audit log stores machine keys (`commission.approved`), actor labels (`api:sk_live_Mg2U`,
`user:3`) and the service's data dict. Pages show them through `readable_rows`, which resolves the
labels of one page of rows with a few batched queries (users, API keys, affiliates, endpoints).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.urls import reverse

from affiliates.models import Affiliate, ApiKey, Program
from refapp.models import AuditLog
from refapp.money import format_amount
from webhooks.models import WebhookEndpoint

# What each action key means, in the words of the panel. Keys not listed are shown humanised.
ACTION_LABELS = {
    "affiliate.created": "Affiliate joined",
    "affiliate.active": "Affiliate approved or reactivated",
    "affiliate.pending": "Affiliate back to pending",
    "affiliate.rejected": "Affiliate rejected",
    "affiliate.suspended": "Affiliate suspended",
    "affiliate.code_changed": "Referral code changed",
    "affiliate.group_changed": "Partner group changed",
    "affiliate.payout_method_changed": "Payout method changed",
    "affiliate.profile_changed": "Profile changed",
    "affiliate.stripe_account_updated": "Stripe account updated",
    "affiliate.stripe_connected": "Stripe account connected",
    "affiliate.stripe_payouts_enabled": "Stripe payouts enabled",
    "affiliate.terms_accepted": "Program terms accepted",
    "apikey.created": "API key created",
    "apikey.revoked": "API key revoked",
    "commission.created": "Commissions created",
    "commission.pending": "Commission back to pending",
    "commission.approved": "Commission approved",
    "commission.rejected": "Commission rejected",
    "commission.reversed": "Commission reversed (clawback)",
    "digest.sent": "Approval digest emailed",
    "fraud_flag.confirmed": "Fraud flag confirmed",
    "fraud_flag.dismissed": "Fraud flag dismissed",
    "group.created": "Partner group created",
    "group.updated": "Partner group changed",
    "order.disputed": "Order disputed",
    "order.refunded": "Order refunded",
    "payout.created": "Payout created",
    "payout.failed": "Payout failed",
    "payout.paid": "Payout paid",
    "payout.retried": "Payout retried",
    "privacy.erased": "Personal data erased",
    "program.created": "Program created",
    "program.test_data_wiped": "Test data wiped",
    "program.updated": "Program settings changed",
    "referral.created": "Referral created",
    "rule.created": "Commission rule created",
    "rule.deactivated": "Commission rule deactivated",
    "rule.replaced": "Commission rule edited",
    "staff.invited": "Team member invited",
    "staff.removed": "Team member removed",
    "staff.role_changed": "Team role changed",
    "webhook_endpoint.created": "Webhook endpoint created",
    "webhook_endpoint.deleted": "Webhook endpoint deleted",
    "webhook_endpoint.secret_rotated": "Webhook secret rotated",
    "webhook_endpoint.test_sent": "Webhook test event sent",
    "webhook_endpoint.updated": "Webhook endpoint changed",
    "webhook_message.replayed": "Webhook message replayed",
}

# "What" filter of the activity log: the object families an action key starts with.
ACTION_FAMILIES = {
    "affiliate": "Affiliates",
    "commission": "Commissions",
    "order": "Orders (refunds, disputes)",
    "fraud_flag": "Fraud flags",
    "payout": "Payouts",
    "rule": "Commission rules",
    "group": "Partner groups",
    "program": "Program settings",
    "apikey": "API keys",
    "webhook": "Webhooks",
    "staff": "Team",
    "referral": "Referrals",
    "privacy": "Privacy",
}

# Which field a status-like change is about, for data shaped {"from": old} or {"from": old, "to": new}.
CHANGED_FIELD = {
    "affiliate.code_changed": "code",
    "affiliate.payout_method_changed": "payout method",
    "staff.role_changed": "role",
}

# object_type → (what it is called, URL name taking the program slug and the object id, or None).
OBJECT_KINDS = {
    "affiliates.affiliate": ("Affiliate", "panel:affiliate-detail"),
    "commissions.commission": ("Commission", "panel:commission-detail"),
    "payouts.payout": ("Payout", "panel:payout-detail"),
    "tracking.event": ("Event", None),
    "tracking.referral": ("Referral", None),
    "commissions.commissionrule": ("Rule", None),
    "affiliates.partnergroup": ("Group", None),
    "affiliates.program": ("Program", None),
    "affiliates.programstaff": ("Team member", None),
    "webhooks.webhookendpoint": ("Webhook endpoint", "panel:webhook-detail"),
}

SYSTEM_ACTORS = {
    "system": "System (scheduled job)",
    "stripe": "Stripe",
}


@dataclass
class Change:
    field: str
    old: str | None
    new: str


@dataclass
class Row:
    entry: AuditLog
    label: str
    actor: str
    actor_url: str = ""
    object_kind: str = ""
    object_name: str = ""
    object_url: str = ""
    changes: list[Change] = field(default_factory=list)

    @property
    def created_at(self):
        return self.entry.created_at

    @property
    def action(self) -> str:
        return self.entry.action

    @property
    def object_id(self) -> str:
        return self.entry.object_id


def action_label(action: str) -> str:
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    return action.replace(".", ": ").replace("_", " ").capitalize()


def _humanise(key: str) -> str:
    key = key.removesuffix("_cents")
    return key.replace("_", " ")


def _show(value: Any, key: str, currency: str) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_cents") and isinstance(value, int):
        return format_amount(value, currency)
    if key == "amounts" and isinstance(value, list):
        return ", ".join(format_amount(v, currency) if isinstance(v, int) else str(v) for v in value)
    if isinstance(value, list):
        return ", ".join(_show(v, "", currency) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{_humanise(k)} {_show(v, k, currency)}" for k, v in value.items())
    return str(value)


def changes_of(entry: AuditLog, currency: str) -> list[Change]:
    """The row's data as "field: old → new" (or "field: value") lines, in a stable order."""
    data = dict(entry.data or {})
    changes: list[Change] = []
    family, _, verb = entry.action.partition(".")
    if "from" in data:
        old = data.pop("from")
        # affiliate.suspended with {"from": "active"}: the new status is the action's verb.
        new = data.pop("to") if "to" in data else verb
        name = CHANGED_FIELD.get(entry.action, "status")
        changes.append(Change(name, _show(old, "", currency), _show(new, "", currency)))
    if "old" in data and "new" in data:
        changes.append(
            Change("rule", _show(data.pop("old"), "", currency), _show(data.pop("new"), "", currency))
        )
    for key, value in data.items():
        if isinstance(value, list) and len(value) == 2 and family == "group":
            changes.append(
                Change(_humanise(key), _show(value[0], key, currency), _show(value[1], key, currency))
            )
        else:
            changes.append(Change(_humanise(key), None, _show(value, key, currency)))
    return changes


def readable_rows(entries: Iterable[AuditLog], program: Program) -> list[Row]:
    """One page of audit rows of `program`, readable: labels, actor names, changes and links."""
    entries = list(entries)
    user_ids = set()
    key_prefixes = set()
    affiliate_ids = set()
    endpoint_ids = set()
    for e in entries:
        label = e.actor_label or ""
        if e.actor_id:
            user_ids.add(e.actor_id)
        elif label.startswith("user:") and label[5:].isdigit():
            user_ids.add(int(label[5:]))
        elif label.startswith("api:"):
            key_prefixes.add(label[4:])
        elif label.startswith("affiliate:"):
            affiliate_ids.add(label[10:])
        if e.object_type == "affiliates.affiliate":
            affiliate_ids.add(e.object_id)
        elif e.object_type == "webhooks.webhookendpoint":
            endpoint_ids.add(e.object_id)
    users = User.objects.in_bulk(user_ids) if user_ids else {}
    keys = (
        {k.prefix: k for k in ApiKey.objects.filter(program=program, prefix__in=key_prefixes)}
        if key_prefixes
        else {}
    )
    affiliates = (
        {
            a.public_id: a
            for a in Affiliate.objects.filter(program=program, public_id__in=affiliate_ids).only(
                "public_id", "name", "livemode"
            )
        }
        if affiliate_ids
        else {}
    )
    endpoints = (
        set(
            WebhookEndpoint.objects.filter(program=program, public_id__in=endpoint_ids).values_list(
                "public_id", flat=True
            )
        )
        if endpoint_ids
        else set()
    )

    rows = []
    for e in entries:
        actor, actor_url = _actor(e, program, users, keys, affiliates)
        kind, url_name = OBJECT_KINDS.get(e.object_type, (e.object_type.split(".")[-1].capitalize(), None))
        name, url = "", ""
        if e.object_type == "affiliates.affiliate":
            found = affiliates.get(e.object_id)
            if found is not None:
                name = found.name
                if found.livemode:
                    url = reverse(url_name, args=[program.slug, e.object_id])
        elif e.object_type == "tracking.event":
            url = reverse("panel:commission-list", args=[program.slug]) + f"?order={e.object_id}"
        elif e.object_type == "commissions.commissionrule":
            url = reverse("panel:rule-list", args=[program.slug])
        elif e.object_type == "affiliates.partnergroup":
            url = reverse("panel:group-list", args=[program.slug])
        elif e.object_type == "affiliates.program":
            url = reverse("panel:program-settings", args=[program.slug])
        elif e.object_type == "affiliates.programstaff":
            url = reverse("panel:team", args=[program.slug])
        elif e.object_type == "webhooks.webhookendpoint":
            if e.object_id in endpoints:
                url = reverse(url_name, args=[program.slug, e.object_id])
        elif url_name:
            url = reverse(url_name, args=[program.slug, e.object_id])
        rows.append(
            Row(
                entry=e,
                label=action_label(e.action),
                actor=actor,
                actor_url=actor_url,
                object_kind=kind,
                object_name=name,
                object_url=url,
                changes=changes_of(e, program.currency),
            )
        )
    return rows


def _actor(
    entry: AuditLog,
    program: Program,
    users: dict[int, User],
    keys: dict[str, ApiKey],
    affiliates: dict[str, Affiliate],
) -> tuple[str, str]:
    label = entry.actor_label or ""
    user_id = entry.actor_id
    if user_id is None and label.startswith("user:") and label[5:].isdigit():
        user_id = int(label[5:])
    if user_id is not None:
        user = users.get(user_id)
        if user is None:
            return f"a deleted user (#{user_id})", ""
        return user.email or user.get_username(), ""
    if label.startswith("api:"):
        prefix = label[4:]
        key = keys.get(prefix)
        if key is None:
            return f"API key ({prefix}…)", ""
        name = key.name or "unnamed"
        return f"API key ‘{name}’ ({prefix}…)", reverse("panel:program-keys", args=[program.slug])
    if label.startswith("affiliate:"):
        affiliate = affiliates.get(label[10:])
        if affiliate is None:
            return f"the affiliate ({label[10:]})", ""
        url = reverse("panel:affiliate-detail", args=[program.slug, affiliate.public_id])
        return f"{affiliate.name} (affiliate)", url if affiliate.livemode else ""
    if label.startswith("applicant:"):
        return f"Applicant {label[10:]}", ""
    if label.startswith("command:"):
        return f"Command manage.py {label[8:]}", ""
    return SYSTEM_ACTORS.get(label, label or "System"), ""
