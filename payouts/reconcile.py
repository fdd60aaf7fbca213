"""Reconciliation: refapp's Stripe payouts against the platform's Stripe Connect transfers.

A check covers one UTC month. It lists every transfer created in the month (Stripe's paging, by
`starting_after`), matches each to a payout by the `payout_id` its metadata carries
(`services.transfer_params`), and looks up the transfer of each payout marked paid in the month
that the listing did not bring (so a transfer made just across the month's edge still matches).
It finds four kinds of difference:

- a paid payout with no transfer behind it;
- a transfer with no paid payout (no payout named, an unknown one, a failed or manual one, or a
  second transfer for a payout already paid by another);
- a transfer whose amount or currency is not the payout's;
- a transfer reversed in Stripe after refapp marked its payout paid.

Everything is read from Stripe first, outside any transaction; the findings are then written in
one transaction. Each finding is keyed by its kind and the payout or transfer it is about, so a
second check of the same month finds the same rows again instead of adding new ones. A reversal
waits for an admin like every other finding (the reversal already took the money back from the
affiliate's Stripe account, so nothing is carried by itself): "pay it again" turns each Stripe
reversal (`trr_…`) into one positive balance adjustment that the affiliate's next payout run adds
(`services._create_payouts`), keyed by the reversal's id so it is never paid twice; "keep it
recovered" carries nothing. Other findings are acknowledged or resolved in the panel with a note;
admins are emailed the new ones.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from affiliates.models import Affiliate, Program
from refapp.emails import send_templated
from refapp.models import Actor, audit_log
from refapp.money import MoneyError, format_amount

from .models import Payout
from .reconcile_models import BalanceAdjustment, ReconciliationFinding, ReconciliationRun
from .services import TRANSIENT, program_admin_emails

logger = logging.getLogger(__name__)

Kind = ReconciliationFinding.Kind
Status = ReconciliationFinding.Status

_PERIOD = re.compile(r"(\d{4})-(\d{2})")
# A run still `running` after this long lost its worker; the nightly job marks it failed.
STALE_RUN = timedelta(hours=1)


class ReconciliationError(Exception):
    pass


def period_window(period: str) -> tuple[datetime, datetime]:
    """The UTC month "YYYY-MM" as [start, end). ValueError for anything else."""
    match = _PERIOD.fullmatch(period or "")
    if not match:
        raise ValueError("A period is a month written YYYY-MM.")
    year, month = int(match.group(1)), int(match.group(2))
    if not (2000 <= year <= 9998 and 1 <= month <= 12):
        raise ValueError("A period is a month written YYYY-MM.")
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def period_of(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def page_size() -> int:
    """Transfers per listing request (Stripe allows 1 to 100); tests make it small to page."""
    return max(1, min(100, int(getattr(settings, "REFAPP_RECONCILE_PAGE_SIZE", 100))))


# --- reading Stripe ---------------------------------------------------------------------------


def _client() -> stripe.StripeClient:
    from .stripe_client import stripe_client

    return stripe_client()


def _with_all_reversals(client: stripe.StripeClient, transfer: dict[str, Any]) -> dict[str, Any]:
    """The transfer with every reversal in `reversals.data`: a transfer object embeds only the
    newest few, the rest are listed."""
    embedded = transfer.get("reversals") or {}
    if embedded.get("has_more"):
        listing = client.v1.transfers.reversals.list(transfer["id"], params={"limit": page_size()})
        transfer["reversals"] = {
            "data": [reversal.to_dict() for reversal in listing.auto_paging_iter()],
            "has_more": False,
        }
    return transfer


def fetch_transfers(client: stripe.StripeClient, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every transfer created in [start, end), page by page (the library's auto-paging sends
    `starting_after` with the last id of each page and keeps the `created` bounds)."""
    listing = client.v1.transfers.list(
        params={
            "created": {"gte": int(start.timestamp()), "lt": int(end.timestamp())},
            "limit": page_size(),
        }
    )
    return [_with_all_reversals(client, transfer.to_dict()) for transfer in listing.auto_paging_iter()]


def _retrieve_transfer(client: stripe.StripeClient, transfer_id: str) -> dict[str, Any] | None:
    try:
        transfer = client.v1.transfers.retrieve(transfer_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise
    return _with_all_reversals(client, transfer.to_dict())


# --- comparing ----------------------------------------------------------------------------------


@dataclass
class Observed:
    """One difference seen by this check, before it is written."""

    kind: str
    key: str
    period: str
    detail: str
    program_id: int | None
    payout: Payout | None = None
    affiliate_id: int | None = None
    transfer_id: str = ""
    expected_cents: int | None = None
    expected_currency: str = ""
    actual_cents: int | None = None
    actual_currency: str = ""
    reversals: list[dict[str, Any]] = field(default_factory=list)


def _money(cents: int | None, currency: str) -> str:
    try:
        return format_amount(cents or 0, currency)
    except (MoneyError, KeyError, ValueError):  # a currency refapp does not know: show it plainly
        return f"{cents} {currency} (minor units)"


def _owner_of_destination(destination: str) -> tuple[int | None, int | None]:
    """(program id, affiliate id) of the one affiliate paid at this Stripe account, when only one
    affiliate uses it; otherwise as much of it as is unambiguous."""
    rows = list(
        Affiliate.objects.filter(stripe_account_id=destination)
        .exclude(stripe_account_id="")
        .values_list("program_id", "pk")[:2]
    )
    if len(rows) == 1:
        return rows[0]
    programs = {program_id for program_id, _ in rows}
    return (programs.pop() if len(programs) == 1 else None), None


def _transfer_period(transfer: dict[str, Any]) -> str:
    return period_of(datetime.fromtimestamp(int(transfer["created"]), tz=UTC))


def check_transfer(transfer: dict[str, Any], payout: Payout | None) -> list[Observed]:
    """The differences between one Stripe transfer and the payout its metadata names."""
    tid = transfer["id"]
    amount, currency = int(transfer["amount"]), str(transfer["currency"]).upper()
    period = _transfer_period(transfer)
    named = str((transfer.get("metadata") or {}).get("payout_id") or "")
    seen = {"transfer_id": tid, "actual_cents": amount, "actual_currency": currency}
    what = f"Transfer {tid} of {_money(amount, currency)} to {transfer.get('destination') or 'an unknown account'}"
    if payout is None:
        program_id, affiliate_id = _owner_of_destination(str(transfer.get("destination") or ""))
        why = f"names payout {named}, which refapp does not have" if named else "names no refapp payout"
        return [
            Observed(
                kind=Kind.UNKNOWN_TRANSFER,
                key=tid,
                period=period,
                detail=f"{what} {why}.",
                program_id=program_id,
                affiliate_id=affiliate_id,
                **seen,
            )
        ]
    mine = {
        "program_id": payout.program_id,
        "payout": payout,
        "affiliate_id": payout.affiliate_id,
        "expected_cents": payout.amount_cents,
        "expected_currency": payout.currency.upper(),
        **seen,
    }
    if payout.status == Payout.Status.PROCESSING and payout.method == Payout.Method.STRIPE:
        return []  # still being sent: the resume job records the transfer
    if payout.method != Payout.Method.STRIPE or payout.status != Payout.Status.PAID:
        return [
            Observed(
                kind=Kind.UNKNOWN_TRANSFER,
                key=tid,
                period=period,
                detail=f"{what} names payout {payout.public_id}, which refapp has as "
                f"{payout.get_status_display().lower()} ({payout.get_method_display()}).",
                **mine,
            )
        ]
    if payout.transfer_id and payout.transfer_id != tid:
        return [
            Observed(
                kind=Kind.UNKNOWN_TRANSFER,
                key=tid,
                period=period,
                detail=f"{what} names payout {payout.public_id}, which was paid by transfer "
                f"{payout.transfer_id}: a second transfer for one payout.",
                **mine,
            )
        ]
    found: list[Observed] = []
    if amount != payout.amount_cents or currency != payout.currency.upper():
        found.append(
            Observed(
                kind=Kind.AMOUNT_MISMATCH,
                key=tid,
                period=period,
                detail=f"{what} pays payout {payout.public_id} of "
                f"{_money(payout.amount_cents, payout.currency)}.",
                **mine,
            )
        )
    reversed_cents = int(transfer.get("amount_reversed") or 0)
    if reversed_cents > 0:
        reversals = sorted(
            (transfer.get("reversals") or {}).get("data") or [], key=lambda r: (r["created"], r["id"])
        )
        found.append(
            Observed(
                kind=Kind.REVERSED,
                key=tid,
                period=period,
                detail=f"{_money(reversed_cents, currency)} of {what.lower()} for payout "
                f"{payout.public_id} was reversed in Stripe after refapp marked it paid.",
                reversals=reversals,
                **{**mine, "actual_cents": reversed_cents},
            )
        )
    return found


def compare(
    client: stripe.StripeClient, transfers: list[dict[str, Any]], start: datetime, end: datetime
) -> tuple[list[Observed], int]:
    """Every difference between the month's transfers and the month's paid Stripe payouts, and how
    many payouts were looked at. Reads the database and, for a payout the listing did not bring,
    Stripe."""
    names = {str((t.get("metadata") or {}).get("payout_id") or "") for t in transfers} - {""}
    payouts = {
        payout.public_id: payout
        for payout in Payout.objects.filter(public_id__in=names).select_related("program", "affiliate")
    }
    observed: list[Observed] = []
    matched: set[int] = set()
    for transfer in transfers:
        payout = payouts.get(str((transfer.get("metadata") or {}).get("payout_id") or ""))
        if payout is not None:
            matched.add(payout.pk)
        observed += check_transfer(transfer, payout)
    paid = (
        Payout.objects.filter(
            method=Payout.Method.STRIPE, status=Payout.Status.PAID, paid_at__gte=start, paid_at__lt=end
        )
        .exclude(pk__in=matched)
        .select_related("program", "affiliate")
        .order_by("pk")
    )
    seen = len(matched)
    for payout in paid.iterator(chunk_size=500):
        seen += 1
        transfer = _retrieve_transfer(client, payout.transfer_id) if payout.transfer_id else None
        names_it = (
            transfer is not None and (transfer.get("metadata") or {}).get("payout_id") == payout.public_id
        )
        if names_it:
            observed += check_transfer(transfer, payout)
            continue
        if not payout.transfer_id:
            why = "refapp recorded no transfer for it"
        elif transfer is None:
            why = f"Stripe has no transfer {payout.transfer_id}"
        else:
            why = f"transfer {payout.transfer_id} names another payout"
        observed.append(
            Observed(
                kind=Kind.MISSING_TRANSFER,
                key=payout.public_id,
                period=period_of(payout.paid_at),
                detail=f"Payout {payout.public_id} of {_money(payout.amount_cents, payout.currency)} "
                f"is marked paid, but {why}.",
                program_id=payout.program_id,
                payout=payout,
                affiliate_id=payout.affiliate_id,
                transfer_id=payout.transfer_id,
                expected_cents=payout.amount_cents,
                expected_currency=payout.currency.upper(),
            )
        )
    return observed, seen


# --- writing ------------------------------------------------------------------------------------

RECONCILER = Actor("reconciliation")


def _finding_fields(seen: Observed) -> dict[str, Any]:
    return {
        "program_id": seen.program_id,
        "period": seen.period,
        "payout": seen.payout,
        "affiliate_id": seen.affiliate_id,
        "transfer_id": seen.transfer_id,
        "expected_cents": seen.expected_cents,
        "expected_currency": seen.expected_currency,
        "actual_cents": seen.actual_cents,
        "actual_currency": seen.actual_currency,
        "detail": seen.detail[:500],
        "reversals": [
            {
                "id": str(r["id"]),
                "amount": int(r["amount"]),
                "currency": str(r["currency"]).lower(),
                "created": int(r.get("created") or 0),
            }
            for r in seen.reversals
        ],
    }


def record_findings(
    *, run: ReconciliationRun, observed: list[Observed], now: datetime
) -> list[ReconciliationFinding]:
    """Write what a check saw, in one transaction; returns the findings that are new. Safe to run
    again and beside a twin: (kind, key) and each reversal's id are unique."""
    new: list[ReconciliationFinding] = []
    keys = set()
    with transaction.atomic():
        for seen in sorted(observed, key=lambda o: (o.kind, o.key)):
            keys.add((seen.kind, seen.key))
            finding = (
                ReconciliationFinding.objects.select_for_update().filter(kind=seen.kind, key=seen.key).first()
            )
            if finding is None:
                try:
                    with transaction.atomic():
                        finding = ReconciliationFinding.objects.create(
                            kind=seen.kind,
                            key=seen.key,
                            first_seen_at=now,
                            last_seen_at=now,
                            **_finding_fields(seen),
                        )
                except IntegrityError:  # a concurrent check wrote it first
                    finding = ReconciliationFinding.objects.select_for_update().get(
                        kind=seen.kind, key=seen.key
                    )
                else:
                    new.append(finding)
                    audit_log(
                        actor=RECONCILER,
                        action="reconciliation.finding_opened",
                        obj=finding,
                        data={"kind": finding.kind, "key": finding.key, "run": run.pk},
                    )
            if finding not in new:
                finding.last_seen_at = now
                if finding.waits_for_admin:  # a decided finding keeps the figures it was decided on
                    for name, value in _finding_fields(seen).items():
                        setattr(finding, name, value)
                finding.save()
        # What an earlier check of this month saw and this one no longer does (Stripe caught up, a
        # late transfer arrived) needs no decision any more.
        gone = (
            ReconciliationFinding.objects.select_for_update()
            .filter(period=run.period, status__in=[Status.OPEN, Status.ACKNOWLEDGED])
            .exclude(kind=Kind.REVERSED)
            .order_by("pk")
        )
        for finding in gone:
            if (finding.kind, finding.key) in keys:
                continue
            finding.status = Status.RESOLVED
            finding.decided_by = RECONCILER.label
            finding.decided_at = now
            finding.note = f"No longer seen by the check of {now:%Y-%m-%d %H:%M} UTC."
            finding.save(update_fields=["status", "decided_by", "decided_at", "note"])
            audit_log(
                actor=RECONCILER, action="reconciliation.finding_cleared", obj=finding, data={"run": run.pk}
            )
        run.status = ReconciliationRun.Status.DONE
        run.finished_at = timezone.now()
        run.findings_new = len(new)
        run.save(update_fields=["status", "finished_at", "findings_new", "transfers_seen", "payouts_seen"])
        _email_admins(run, new)
    return new


def _superuser_emails() -> list[str]:
    return sorted(
        set(
            User.objects.filter(is_superuser=True, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )


def _email_admins(run: ReconciliationRun, new: list[ReconciliationFinding]) -> None:
    """The new findings, per program, to its admins (superusers for transfers of no program);
    queued to go out after commit."""
    by_program: dict[int | None, list[ReconciliationFinding]] = {}
    for finding in new:
        by_program.setdefault(finding.program_id, []).append(finding)
    programs = Program.objects.in_bulk([pk for pk in by_program if pk is not None])
    for program_id, findings in sorted(by_program.items(), key=lambda item: item[0] or 0):
        program = programs.get(program_id) if program_id is not None else None
        to = program_admin_emails(program) if program is not None else _superuser_emails()
        if not to:
            continue
        slug = program.slug if program is not None else ""
        send_templated(
            "reconciliation_findings",
            to=to,
            context={
                "program": program.name if program is not None else "No program",
                "period": run.period,
                "findings": [
                    {"kind": f.get_kind_display(), "status": f.get_status_display(), "detail": f.detail}
                    for f in findings
                ],
                "waiting": sum(1 for f in findings if f.waits_for_admin),
                "url": f"{settings.BASE_URL}/panel/p/{slug}/reconciliation/"
                if slug
                else f"{settings.BASE_URL}/panel/",
            },
        )


# --- the check ----------------------------------------------------------------------------------


def reconciliation_start(*, period: str, actor: Actor | None, now: datetime) -> ReconciliationRun:
    """Record a check of `period` and queue it on the worker (after commit). ValueError for a
    period that is not a month up to the current one."""
    start, _ = period_window(period)
    if start > now:
        raise ValueError("That month has not begun yet.")
    with transaction.atomic():
        run = ReconciliationRun.objects.create(
            period=period, actor_label=(actor or Actor.system()).label[:100], started_at=now
        )
        audit_log(actor=actor, action="reconciliation.requested", obj=run, data={"period": period})
        transaction.on_commit(lambda: reconcile_run_task.delay(run.pk))
    return run


def reconcile_run(*, run: ReconciliationRun, now: datetime) -> ReconciliationRun:
    """Carry out a recorded check. Stripe is read first, outside any transaction; a Stripe or
    network error marks the run failed (and is raised again, for the task to retry a transient
    one) without writing any finding."""
    if run.status == ReconciliationRun.Status.DONE:
        return run  # a redelivered task
    start, end = period_window(run.period)
    try:
        client = _client()
        transfers = fetch_transfers(client, start, end)
        observed, payouts_seen = compare(client, transfers, start, end)
    except Exception as exc:
        run.status = ReconciliationRun.Status.FAILED
        run.finished_at = timezone.now()
        run.error = (getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__)[:500]
        run.save(update_fields=["status", "finished_at", "error"])
        raise
    run.transfers_seen = len(transfers)
    run.payouts_seen = payouts_seen
    record_findings(run=run, observed=observed, now=now)
    return run


def reconcile_period(*, period: str, actor: Actor | None, now: datetime) -> ReconciliationRun:
    """Check `period` now, in this process (the nightly job, tests, a shell)."""
    period_window(period)
    run = ReconciliationRun.objects.create(
        period=period, actor_label=(actor or Actor.system()).label[:100], started_at=now
    )
    return reconcile_run(run=run, now=now)


def carried_balance(affiliate: Affiliate) -> int:
    """What waits to be added to the affiliate's next payout: reversed transfers an admin decided to
    pay again."""
    total = BalanceAdjustment.objects.filter(
        affiliate=affiliate, payout__isnull=True, currency=affiliate.program.currency
    ).aggregate(total=Sum("amount_cents"))["total"]
    return total or 0


# The decisions on a finding, by what the panel posts: the status each leaves the finding in.
ACKNOWLEDGE, RESOLVE, PAY_AGAIN, KEEP_RECOVERED = "acknowledged", "resolved", "pay_again", "keep_recovered"
DECISIONS = {
    ACKNOWLEDGE: Status.ACKNOWLEDGED,
    RESOLVE: Status.RESOLVED,
    PAY_AGAIN: Status.CARRIED,
    KEEP_RECOVERED: Status.RECOVERED,
}


def reversal_carry(finding: ReconciliationFinding) -> tuple[int, str, str]:
    """(cents, currency, why not) of what "pay it again" would carry for a reversal finding: the
    reversals the latest check saw, in the payout's currency. `why not` is empty when it can."""
    payout = finding.payout
    if finding.kind != Kind.REVERSED or payout is None:
        return 0, "", "Only a reversed transfer of a refapp payout can be paid again."
    currency = payout.currency.upper()
    reversals = finding.reversals or []
    if not reversals:
        return 0, currency, "The check recorded no reversal to pay again."
    if any(str(r["currency"]).upper() != currency for r in reversals) or (
        currency != payout.program.currency.upper()
    ):
        return (
            0,
            currency,
            (
                f"The reversal is not in the payout's currency ({currency}): it cannot be carried into a "
                "payout; keep it recovered or pay it by hand."
            ),
        )
    return sum(int(r["amount"]) for r in reversals), currency, ""


def _pay_reversal_again(finding: ReconciliationFinding, note: str, actor: Actor | None, now: datetime) -> int:
    """One positive balance adjustment per reversal of the (locked) finding not carried before;
    how many were written."""
    payout = finding.payout
    _, _, why_not = reversal_carry(finding)
    if why_not:
        raise ReconciliationError(why_not)
    written = 0
    for reversal in finding.reversals:
        if BalanceAdjustment.objects.filter(
            kind=BalanceAdjustment.Kind.TRANSFER_REVERSAL, source_id=reversal["id"]
        ).exists():
            continue
        try:
            with transaction.atomic():
                adjustment = BalanceAdjustment.objects.create(
                    program_id=payout.program_id,
                    affiliate_id=payout.affiliate_id,
                    kind=BalanceAdjustment.Kind.TRANSFER_REVERSAL,
                    source_id=reversal["id"],
                    amount_cents=int(reversal["amount"]),
                    currency=payout.currency,
                    reason=f"Stripe reversed {_money(int(reversal['amount']), payout.currency)} of transfer "
                    f"{finding.transfer_id} (payout {payout.public_id}) after it was paid; paid again: "
                    f"{note}"[:500],
                    finding=finding,
                    created_at=now,
                )
        except IntegrityError:
            continue
        audit_log(
            actor=actor,
            action="payout.balance_carried",
            obj=adjustment,
            data={
                "amount_cents": adjustment.amount_cents,
                "currency": adjustment.currency,
                "affiliate": payout.affiliate.public_id,
                "payout": payout.public_id,
                "transfer": finding.transfer_id,
                "reversal": reversal["id"],
                "finding": finding.public_id,
                "note": note,
            },
        )
        written += 1
    return written


def finding_decide(
    *, finding: ReconciliationFinding, status: str, note: str, actor: Actor | None, now: datetime
) -> ReconciliationFinding:
    """An admin decides a finding that waits, with a note. Any finding can be acknowledged (seen,
    being handled). A reversal is then either paid again (`pay_again`: carried into the affiliate's
    next payout, positive) or kept recovered (`keep_recovered`: nothing carried); any other finding
    is resolved. A decided finding cannot be decided again; acknowledging twice is refused."""
    if status not in DECISIONS:
        raise ReconciliationError("Choose one of the decisions offered.")
    note = (note or "").strip()[:1000]
    if not note:
        raise ReconciliationError("Write a note with your decision.")
    with transaction.atomic():
        locked = (
            ReconciliationFinding.objects.select_for_update(of=("self",))
            .select_related("payout__program", "payout__affiliate")
            .get(pk=finding.pk)
        )
        if not locked.waits_for_admin or locked.status == DECISIONS[status]:
            raise ReconciliationError(f"This finding is already {locked.get_status_display().lower()}.")
        reversal = locked.kind == Kind.REVERSED
        if reversal and status == RESOLVE:
            raise ReconciliationError("A reversal is decided by paying it again or keeping it recovered.")
        if not reversal and status in (PAY_AGAIN, KEEP_RECOVERED):
            raise ReconciliationError("Only a reversed transfer can be paid again or kept recovered.")
        previous = locked.status
        data: dict[str, Any] = {"from": previous, "note": note}
        if status == PAY_AGAIN:
            cents, currency, _ = reversal_carry(locked)
            data.update(carried=_pay_reversal_again(locked, note, actor, now), amount_cents=cents)
            data["currency"] = currency
        locked.status = DECISIONS[status]
        locked.note = note
        locked.decided_by = (actor or Actor.system()).label[:100]
        locked.decided_at = now
        locked.save(update_fields=["status", "note", "decided_by", "decided_at"])
        audit_log(actor=actor, action=f"reconciliation.finding_{locked.status}", obj=locked, data=data)
    return locked


def fail_stale_runs(*, now: datetime) -> int:
    return ReconciliationRun.objects.filter(
        status=ReconciliationRun.Status.RUNNING, started_at__lt=now - STALE_RUN
    ).update(
        status=ReconciliationRun.Status.FAILED, finished_at=now, error="Interrupted: the worker stopped."
    )


def nightly_periods(now: datetime) -> list[str]:
    """The month so far and the one before: last month's transfers can still be reversed, and a
    payout sent on the 1st may have been paid just before midnight."""
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return [period_of(first - timedelta(days=1)), period_of(first)]


# Tasks beside the services they run (as `payout_send_task` in services.py), imported by the worker
# through refapp/celery.py's `imports`.
@shared_task(name="payouts.reconcile.reconcile_run", bind=True, acks_late=True, max_retries=5)
def reconcile_run_task(self, run_id: int) -> str:
    run = ReconciliationRun.objects.filter(pk=run_id).first()
    if run is None:
        return "missing"
    try:
        return reconcile_run(run=run, now=timezone.now()).status
    except TRANSIENT as exc:
        # The failed run stays in the history; the retry records its own.
        retry = ReconciliationRun.objects.create(
            period=run.period, actor_label=run.actor_label, started_at=timezone.now()
        )
        raise self.retry(args=[retry.pk], exc=exc, countdown=min(3600, 30 * 2**self.request.retries)) from exc


@shared_task(name="payouts.reconcile.reconcile_nightly", acks_late=True)
def reconcile_nightly() -> list[str]:
    """Each night: check last month and this month against Stripe. A month whose check fails is
    recorded as a failed run (shown in the panel) and the other month is still checked."""
    from .stripe_client import stripe_enabled

    now = timezone.now()
    fail_stale_runs(now=now)
    if not stripe_enabled():
        return []  # no Stripe Connect payouts, nothing to compare
    statuses = []
    for period in nightly_periods(now):
        try:
            statuses.append(reconcile_period(period=period, actor=Actor.system(), now=now).status)
        except Exception:
            logger.exception("Reconciliation of %s failed", period)
            statuses.append(ReconciliationRun.Status.FAILED)
    return statuses
