"""Paying affiliates exactly once (docs/architecture.md, "Domain rules").

The payout row, its items and the commissions' `processing` state are committed first; only then
is Stripe called, outside any transaction, with the idempotency key `payout-<id>`. Success marks
payout and commissions paid; a permanent error fails the payout and returns its commissions to
`approved`; a crash in between is healed by sending again, which Stripe answers with the transfer
it already made.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

import stripe
from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from affiliates.models import Affiliate, Program, ProgramStaff
from affiliates.portal_services import tax_details_complete
from commissions.models import Commission
from refapp.emails import send_templated
from refapp.ids import new_public_id
from refapp.models import Actor, AuditLog, audit_announce, audit_entry, audit_log, audit_watched
from refapp.money import format_amount

from .models import Payout, PayoutItem
from .reconcile_models import BalanceAdjustment


def period_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def payable_commissions(program: Program):
    """Approved live commissions of live affiliates not in any payout, minus those of orders under
    dispute. A test affiliate is never paid, whatever its rows say."""
    return (
        Commission.objects.filter(
            program=program,
            livemode=True,
            affiliate__livemode=True,
            status=Commission.Status.APPROVED,
            event__disputed=False,
        )
        # Friend rewards settled as account credit, and their clawbacks, go to the customer's
        # Stripe balance (payouts/credits.py), never into a payout. has_key first: a bare
        # exclude(inputs__reward=...) is NULL for rows without the key, which would drop them all.
        .exclude(Q(inputs__has_key="reward") & Q(inputs__reward="credit"))
        .exclude(Q(reverses__inputs__has_key="reward") & Q(reverses__inputs__reward="credit"))
    )


def destination_of(affiliate: Affiliate) -> tuple[str, str] | tuple[None, str]:
    """(method, destination) an affiliate can be paid with, or (None, why not)."""
    method = affiliate.payout_method
    if method == Affiliate.PayoutMethod.STRIPE:
        if not affiliate.stripe_account_id:
            return None, "Stripe account not connected"
        if not affiliate.stripe_payouts_enabled:
            return None, "Stripe account cannot receive payouts yet"
        return Payout.Method.STRIPE, affiliate.stripe_account_id
    if method == Affiliate.PayoutMethod.PAYPAL and affiliate.paypal_email:
        return Payout.Method.PAYPAL, affiliate.paypal_email
    if method == Affiliate.PayoutMethod.WISE and affiliate.wise_email:
        return Payout.Method.WISE, affiliate.wise_email
    if method == Affiliate.PayoutMethod.BANK:
        if not affiliate.bank_display:
            return None, "bank details missing"
        return Payout.Method.BANK, affiliate.bank_display
    return None, "no payout method"


def bank_details_of(affiliate: Affiliate) -> dict[str, str]:
    """The full bank account a bank payout is sent to, kept on the payout for its exports."""
    if affiliate.payout_method != Affiliate.PayoutMethod.BANK:
        return {}
    if affiliate.bank_iban:
        return {
            "holder": affiliate.bank_account_holder,
            "iban": affiliate.bank_iban,
            "bic": affiliate.bank_bic,
        }
    return {
        "holder": affiliate.bank_account_holder,
        "account_number": affiliate.bank_account_number,
        "routing_number": affiliate.bank_routing_number,
        "account_type": affiliate.bank_account_type,
    }


TAX_HOLD = "held: tax details missing"


@dataclass
class PlanLine:
    affiliate: Affiliate
    net_cents: int
    commissions: int
    method: str | None
    destination: str
    reason: str = ""  # why this affiliate is not paid now; empty when they are
    carried_cents: int = 0  # balance adjustments inside net_cents (a reversed transfer: negative)

    @property
    def eligible(self) -> bool:
        return not self.reason


@dataclass
class Plan:
    program: Program
    period: str
    lines: list[PlanLine] = field(default_factory=list)

    @property
    def payable(self) -> list[PlanLine]:
        return [line for line in self.lines if line.eligible]

    @property
    def total_cents(self) -> int:
        return sum(line.net_cents for line in self.payable)


def waiting_adjustments(program: Program):
    """Balance adjustments no payout has netted yet, in the program's currency (the only one its
    payouts are made in; reconciliation carries nothing in another)."""
    return BalanceAdjustment.objects.filter(program=program, payout__isnull=True, currency=program.currency)


def payout_plan(*, program: Program, now: datetime, period: str | None = None) -> Plan:
    """Who the next run would pay how much, and who it would not pay and why. Reads only."""
    plan = Plan(program=program, period=period or period_of(now))
    sums = (
        payable_commissions(program)
        .values("affiliate_id")
        .annotate(net=Sum("amount_cents"), n=Count("pk"))
        .order_by("affiliate_id")
    )
    rows = list(sums)
    carried = dict(
        waiting_adjustments(program)
        .values("affiliate_id")
        .annotate(total=Sum("amount_cents"))
        .values_list("affiliate_id", "total")
    )
    # An affiliate with a carried balance and nothing approved is listed too (with nothing to pay).
    known = {row["affiliate_id"] for row in rows}
    rows += [{"affiliate_id": pk, "net": 0, "n": 0} for pk in sorted(carried) if pk not in known]
    affiliates = Affiliate.objects.in_bulk([row["affiliate_id"] for row in rows])
    already = set(
        Payout.objects.filter(program=program, period=plan.period).values_list("affiliate_id", flat=True)
    )
    with_tax_details = tax_details_complete(list(affiliates)) if program.require_tax_details else set()
    for row in rows:
        affiliate = affiliates[row["affiliate_id"]]
        method, destination = destination_of(affiliate)
        net = (row["net"] or 0) + carried.get(affiliate.pk, 0)
        reason = ""
        if affiliate.status != Affiliate.Status.ACTIVE:
            reason = f"affiliate is {affiliate.status}"
        elif method is None:
            reason = destination
        elif program.require_tax_details and affiliate.pk not in with_tax_details:
            # Carried, not lost: the commissions stay approved and the first run after the
            # details are entered pays them.
            reason = TAX_HOLD
        elif affiliate.pk in already:
            reason = f"already has a payout for {plan.period}"
        elif net <= 0:
            reason = "nothing to pay after clawbacks"
        elif net < program.minimum_payout_cents:
            reason = f"below the minimum of {format_amount(program.minimum_payout_cents, program.currency)}; carried to next month"
        plan.lines.append(
            PlanLine(
                affiliate=affiliate,
                net_cents=net,
                commissions=row["n"],
                method=method,
                destination=destination if method else "",
                reason=reason,
                carried_cents=carried.get(affiliate.pk, 0),
            )
        )
    plan.lines.sort(key=lambda line: (not line.eligible, -line.net_cents))
    return plan


# Affiliates per transaction of a payout run: few round trips, short locks, bounded memory.
CREATE_BATCH = 500


def payouts_create(
    *, program: Program, now: datetime, actor: Actor | None = None, period: str | None = None
) -> list[Payout]:
    """Build this period's payouts, a batch of affiliates per transaction. Safe beside a twin run.

    The batch's approved commissions are locked (in primary-key order, so two runs never deadlock)
    and re-read before the payouts are written: a concurrent run either waits and then finds nothing
    left, or fails on the unique (affiliate, period) index, in which case the batch is redone one
    affiliate at a time so the others are still paid. Stripe payouts are queued after commit.
    """
    period = period or period_of(now)
    lines = payout_plan(program=program, now=now, period=period).payable
    created: list[Payout] = []
    for start in range(0, len(lines), CREATE_BATCH):
        batch = lines[start : start + CREATE_BATCH]
        try:
            created += _create_payouts(program, batch, period=period, now=now, actor=actor)
        except IntegrityError:
            for line in batch:
                try:
                    created += _create_payouts(program, [line], period=period, now=now, actor=actor)
                except IntegrityError:
                    continue  # another run created this affiliate's payout for the period first
    return created


def _create_payouts(
    program: Program, lines: list[PlanLine], *, period: str, now: datetime, actor: Actor | None
) -> list[Payout]:
    affiliates = {line.affiliate.pk: line.affiliate for line in lines}
    with transaction.atomic():
        owed: dict[int, list[tuple[int, int]]] = {}
        for pk, affiliate_id, amount in (
            payable_commissions(program)
            .filter(affiliate_id__in=list(affiliates))
            .select_for_update(of=("self",))
            .order_by("pk")
            .values_list("pk", "affiliate_id", "amount_cents")
        ):
            owed.setdefault(affiliate_id, []).append((pk, amount))
        # Carried balances (a reversed transfer) are netted under their row lock: a concurrent run
        # waits, then finds them taken by this payout.
        carried: dict[int, list[tuple[int, int]]] = {}
        for pk, affiliate_id, amount in (
            waiting_adjustments(program)
            .filter(affiliate_id__in=list(affiliates))
            .select_for_update()
            .order_by("pk")
            .values_list("pk", "affiliate_id", "amount_cents")
        ):
            carried.setdefault(affiliate_id, []).append((pk, amount))
        payouts: list[tuple[Payout, list[tuple[int, int]]]] = []
        adjusted: list[tuple[Payout, list[int]]] = []
        for affiliate_id in sorted(owed.keys() | carried.keys()):
            rows = owed.get(affiliate_id, [])
            extra = carried.get(affiliate_id, [])
            net = sum(amount for _, amount in rows) + sum(amount for _, amount in extra)
            if net <= 0 or net < program.minimum_payout_cents:
                continue  # a concurrent run took them, or a refund arrived meanwhile
            method, destination = destination_of(affiliates[affiliate_id])
            if method is None:
                continue
            payout = Payout(
                public_id=new_public_id("po"),
                program=program,
                affiliate=affiliates[affiliate_id],
                period=period,
                method=method,
                destination=destination,
                bank_details=bank_details_of(affiliates[affiliate_id]),
                amount_cents=net,
                currency=program.currency,
                created_at=now,
                status=Payout.Status.PROCESSING if method == Payout.Method.STRIPE else Payout.Status.PENDING,
            )
            payouts.append((payout, rows))
            if extra:
                adjusted.append((payout, [pk for pk, _ in extra]))
        if not payouts:
            return []
        Payout.objects.bulk_create([payout for payout, _ in payouts])
        for payout, adjustment_ids in adjusted:
            taken = BalanceAdjustment.objects.filter(pk__in=adjustment_ids, payout__isnull=True).update(
                payout=payout, applied_at=now
            )
            if taken != len(adjustment_ids):  # cannot happen under the lock: never net one twice
                raise IntegrityError("balance adjustments changed under the payout lock")
        carried_of = {payout.pk: len(ids) for payout, ids in adjusted}
        items = [
            PayoutItem(payout=payout, commission_id=pk, amount_cents=amount)
            for payout, rows in payouts
            for pk, amount in rows
        ]
        PayoutItem.objects.bulk_create(items, batch_size=5_000)
        moved = Commission.objects.filter(
            pk__in=PayoutItem.objects.filter(payout__in=[payout for payout, _ in payouts]).values(
                "commission_id"
            ),
            status=Commission.Status.APPROVED,
        ).update(status=Commission.Status.PROCESSING)
        if moved != len(items):  # cannot happen under the lock; refuse rather than pay a wrong sum
            raise IntegrityError("commissions changed under the payout lock")
        audit_announce(
            AuditLog.objects.bulk_create(
                [
                    audit_entry(
                        actor=actor,
                        action="payout.created",
                        obj=payout,
                        data={
                            "amount_cents": payout.amount_cents,
                            "commissions": len(rows),
                            "period": period,
                            **({"adjustments": carried_of[payout.pk]} if payout.pk in carried_of else {}),
                        },
                    )
                    for payout, rows in payouts
                ]
            )
        )
        send = [payout.pk for payout, _ in payouts if payout.method == Payout.Method.STRIPE]
        if send:
            transaction.on_commit(lambda: [payout_send_task.delay(payout_id) for payout_id in send])
    return [payout for payout, _ in payouts]


def transfer_params(payout: Payout) -> dict:
    return {
        "amount": payout.amount_cents,
        "currency": payout.currency.lower(),
        "destination": payout.destination,
        "transfer_group": payout.public_id,
        "description": f"{payout.program.name} affiliate payout {payout.period}",
        "metadata": {
            "payout_id": payout.public_id,
            "affiliate_id": payout.affiliate.public_id,
            "period": payout.period,
        },
    }


def payout_send(*, payout_id: int, now: datetime) -> Payout:
    """Send a processing Stripe payout. Transient errors propagate (the task retries with backoff)."""
    from .stripe_client import PERMANENT_ERRORS, stripe_client

    payout = Payout.objects.select_related("program", "affiliate").filter(pk=payout_id).first()
    if payout is None:
        raise Payout.DoesNotExist(f"No payout {payout_id}")
    if payout.status != Payout.Status.PROCESSING or payout.method != Payout.Method.STRIPE:
        return payout  # already paid or failed: a redelivered task does nothing
    try:
        transfer = stripe_client().v1.transfers.create(
            params=transfer_params(payout), options={"idempotency_key": payout.idempotency_key}
        )
    except PERMANENT_ERRORS as exc:
        reason = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
        return payout_fail(payout=payout, reason=reason[:500], actor=Actor("stripe"), now=now)
    return payout_mark_paid(payout=payout, transfer_id=transfer.id, actor=Actor("stripe"), now=now)


# Errors worth sending again (with the same idempotency key) a little later.
TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, OperationalError)


# The task lives beside the service it runs and the services that queue it (as in pretix), so that
# this module and `payouts.tasks` never import each other; its registered name stays the old one,
# which queued messages and `payouts.tasks` (re-exporting it) still use.
@shared_task(name="payouts.tasks.payout_send", bind=True, acks_late=True, max_retries=8)
def payout_send_task(self, payout_id: int) -> str:
    try:
        return payout_send(payout_id=payout_id, now=timezone.now()).status
    except Payout.DoesNotExist:
        return "missing"  # a message older than the row (a restored database): nothing to pay
    except TRANSIENT as exc:
        # Same idempotency key on every retry: Stripe answers with the transfer it already made.
        raise self.retry(exc=exc, countdown=min(3600, 5 * 2**self.request.retries)) from exc


class PayoutStateError(Exception):
    pass


def _locked(payout: Payout) -> Payout:
    """The payout again, its row locked until the transaction ends, with its program and affiliate
    read in the same query. Only the payout row is locked: every payout of a run shares one program
    row, and locking it too would make the workers' payouts wait for one another."""
    return (
        Payout.objects.select_for_update(of=("self",))
        .select_related("program", "affiliate")
        .get(pk=payout.pk)
    )


# Marking a payout paid on PostgreSQL: the conditional update of the payout, its commissions and
# the audit row in one statement (one round trip, one transaction). Its CTEs share one snapshot;
# the commissions and the audit row are written only when the payout's update applied.
_MARK_PAID_SQL = """
WITH p AS (
    UPDATE payouts_payout
       SET status = 'paid', paid_at = %(now)s,
           transfer_id = CASE WHEN %(transfer_id)s <> '' THEN %(transfer_id)s ELSE transfer_id END,
           reference = CASE WHEN %(reference)s <> '' THEN %(reference)s ELSE reference END
     WHERE id = %(payout)s AND status IN ('processing', 'pending')
    RETURNING id
), c AS (
    UPDATE commissions_commission
       SET status = 'paid', paid_at = %(now)s
     WHERE status = 'processing'
       AND id IN (SELECT i.commission_id FROM payouts_payoutitem i JOIN p ON i.payout_id = p.id
                   WHERE NOT i.released)
), a AS (
    INSERT INTO refapp_auditlog
           (created_at, actor_id, actor_label, action, program_id, object_type, object_id, data)
    SELECT %(audit_at)s, %(actor_id)s, %(actor_label)s, %(action)s, %(program_id)s, %(object_type)s,
           %(object_id)s, %(data)s
      FROM p
)
SELECT count(*) FROM p
"""


def payout_mark_paid(
    *, payout: Payout, now: datetime, actor: Actor | None, transfer_id: str = "", reference: str = ""
) -> Payout:
    """Record a payout as paid (Stripe transfer or a manual payment's reference). Idempotent.

    The conditional UPDATE takes the payout's row lock and, in READ COMMITTED, checks the status
    again after any concurrent writer commits: only a processing or pending payout becomes paid,
    once. Locking and reading the row first cost two more round trips per payout of a run; the row
    is read under lock only when the update did not apply, to tell "already paid" from an error.
    On PostgreSQL the update, the commissions and the audit row are one statement.
    """
    changes = {"status": Payout.Status.PAID, "paid_at": now}
    if transfer_id:
        changes["transfer_id"] = transfer_id
    if reference:
        changes["reference"] = reference
    audit = audit_entry(
        actor=actor,
        action="payout.paid",
        obj=payout,
        data={"transfer_id": transfer_id, "reference": reference, "amount_cents": payout.amount_cents},
    )
    if connection.vendor == "postgresql":
        # One statement is one transaction: no BEGIN and COMMIT around it unless the caller has one,
        # or a listener of the program's changes (webhooks) writes its rows with it.
        watched = audit_watched(payout.program_id)
        with transaction.atomic() if watched else nullcontext():
            with connection.cursor() as cursor:
                cursor.execute(
                    _MARK_PAID_SQL,
                    {
                        "payout": payout.pk,
                        "now": now,
                        "transfer_id": transfer_id,
                        "reference": reference,
                        "audit_at": timezone.now(),
                        "actor_id": audit.actor_id,
                        "actor_label": audit.actor_label,
                        "action": audit.action,
                        "program_id": audit.program_id,
                        "object_type": audit.object_type,
                        "object_id": audit.object_id,
                        "data": connection.ops.adapt_json_value(audit.data, None),
                    },
                )
                marked = cursor.fetchone()[0]
            if marked and watched:
                audit_announce([audit])
    else:
        with transaction.atomic():
            marked = Payout.objects.filter(
                pk=payout.pk, status__in=[Payout.Status.PROCESSING, Payout.Status.PENDING]
            ).update(**changes)
            if marked:
                Commission.objects.filter(
                    pk__in=payout.items.filter(released=False).values("commission_id"),
                    status=Commission.Status.PROCESSING,
                ).update(status=Commission.Status.PAID, paid_at=now)
                audit.save()
                audit_announce([audit])
    if not marked:
        with transaction.atomic():
            locked = _locked(payout)
        if locked.status == Payout.Status.PAID:
            return locked
        raise PayoutStateError(f"A {locked.status} payout cannot be marked paid.")
    for name, value in changes.items():
        setattr(payout, name, value)
    affiliate = payout.affiliate
    send_templated(
        "payout_sent",
        to=[affiliate.email],
        context={
            "name": affiliate.name,
            "program": payout.program.name,
            "amount": format_amount(payout.amount_cents, payout.currency),
            "method": payout.get_method_display(),
            "period": payout.period,
            "reference": payout.transfer_id or payout.reference,
        },
    )
    return payout


def payout_fail(*, payout: Payout, reason: str, actor: Actor | None, now: datetime) -> Payout:
    """Fail a payout: its commissions return to approved for the next run; admins are told."""
    with transaction.atomic():
        locked = _locked(payout)
        if locked.status not in (Payout.Status.PROCESSING, Payout.Status.PENDING):
            return locked
        locked.status = Payout.Status.FAILED
        locked.failure_reason = reason
        locked.failed_at = now
        locked.save(update_fields=["status", "failure_reason", "failed_at"])
        ids = list(locked.items.filter(released=False).values_list("commission_id", flat=True))
        locked.items.update(released=True)
        Commission.objects.filter(pk__in=ids, status=Commission.Status.PROCESSING).update(
            status=Commission.Status.APPROVED
        )
        # Balances it netted wait for the next run again (a retry pays the commissions only).
        returned = BalanceAdjustment.objects.filter(payout=locked).update(payout=None, applied_at=None)
        audit_log(
            actor=actor,
            action="payout.failed",
            obj=locked,
            data={"reason": reason, **({"adjustments_returned": returned} if returned else {})},
        )
        admins = program_admin_emails(locked.program)
        if admins:
            send_templated(
                "payout_failed",
                to=admins,
                context={
                    "program": locked.program.name,
                    "affiliate": locked.affiliate.name,
                    "payout": locked.public_id,
                    "amount": format_amount(locked.amount_cents, locked.currency),
                    "reason": reason,
                    "url": f"{settings.BASE_URL}/panel/p/{locked.program.slug}/payouts/{locked.public_id}/",
                },
            )
    return locked


def payout_retry(*, payout: Payout, actor: Actor | None, now: datetime) -> Payout:
    """Send a failed payout again with a fresh idempotency key, over its commissions still unpaid."""
    with transaction.atomic():
        locked = Payout.objects.select_for_update().select_related("affiliate").get(pk=payout.pk)
        if locked.status != Payout.Status.FAILED:
            raise PayoutStateError("Only a failed payout can be retried.")
        method, destination = destination_of(locked.affiliate)
        if method is None:
            raise PayoutStateError(f"The affiliate cannot be paid: {destination}.")
        items = list(locked.items.select_related("commission").order_by("commission_id"))
        commissions = {
            c.pk: c
            for c in Commission.objects.select_for_update()
            .filter(
                pk__in=[i.commission_id for i in items],
                status=Commission.Status.APPROVED,
                event__disputed=False,
            )
            .order_by("pk")
        }
        keep = [i for i in items if i.commission_id in commissions]
        amount = sum(i.amount_cents for i in keep)
        if amount <= 0:
            raise PayoutStateError("Nothing of this payout is still payable.")
        try:
            with transaction.atomic():
                PayoutItem.objects.filter(pk__in=[i.pk for i in keep]).update(released=False)
        except IntegrityError as exc:
            raise PayoutStateError("Some of these commissions are in another payout now.") from exc
        Commission.objects.filter(pk__in=list(commissions)).update(status=Commission.Status.PROCESSING)
        locked.attempt += 1
        locked.amount_cents = amount
        locked.method = method
        locked.destination = destination
        locked.bank_details = bank_details_of(locked.affiliate)
        locked.failure_reason = ""
        locked.failed_at = None
        locked.status = Payout.Status.PROCESSING if method == Payout.Method.STRIPE else Payout.Status.PENDING
        locked.save()
        audit_log(
            actor=actor,
            action="payout.retried",
            obj=locked,
            data={"attempt": locked.attempt, "amount_cents": amount},
        )
        if locked.status == Payout.Status.PROCESSING:
            transaction.on_commit(lambda: payout_send_task.delay(locked.pk))
    return locked


def program_admin_emails(program: Program) -> list[str]:
    emails = list(
        ProgramStaff.objects.filter(program=program, role=ProgramStaff.Role.ADMIN)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not emails:
        emails = list(
            User.objects.filter(is_superuser=True, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    return sorted(set(emails))


def processing_payouts(program: Program | None = None):
    qs = Payout.objects.filter(status=Payout.Status.PROCESSING, method=Payout.Method.STRIPE)
    return qs.filter(program=program) if program else qs
