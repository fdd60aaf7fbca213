"""Account credit for customer referrers, into their Stripe customer balance exactly once.

A friend reward settled as credit (`commissions.friends`, inputs `reward: credit`) is a commission
like any other until it is approved (the hold passed, by the hourly job or by hand). Then:

1. `credit_open` locks the commission, re-checks that it is an approved credit reward, and writes its
   `CustomerCredit` row (one per commission: the unique index makes "once" a database fact). The
   amount nets the reversals made before it (a partial refund during the hold); the commission and
   those reversals become `processing`. One transaction, no Stripe call.
2. `credit_send` claims the row (a compare-and-set from `pending`, or from a `sending` claim older
   than STALE_CLAIM, left by a killed worker), then, outside any transaction, creates the customer
   balance transaction with the idempotency key `customer-credit-<public_id>` and the row's id in
   its metadata. A stale claim first looks for a transaction carrying that id (Stripe forgets
   idempotency keys after a day). Success marks the row `done` and its commissions `paid`; a
   permanent error marks it `failed` and returns the commissions to `approved` (the referrer is
   still owed them; the panel shows why); a transient error releases the claim for a retry.

A refund of the friend's order after the credit makes the usual negative clawback rows (the reward is
`paid`, or `processing` while the credit is in flight). `debit_open` gives each its own `debit` row,
never more than the credit that landed minus the debits before it, and `credit_send` sends it only
once the credit is `done`, so the balance is never debited before it was credited.

`credits_sync` (every few minutes, by beat) opens the rows of everything due and sends what is open;
every step is safe to run twice, at once, in any number of workers. Test-mode rewards are never
credited: a test key's data never reaches Stripe, as it never reaches payouts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import stripe
from celery import shared_task
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from affiliates.models import Affiliate, CustomerRewardKind
from commissions.models import Commission
from refapp.models import Actor, audit_log
from refapp.money import format_amount

from .models import CustomerCredit

STALE_CLAIM = timedelta(minutes=10)
TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, OperationalError)
_STRIPE = Actor("stripe")


def credit_rewards_due():
    """Approved live credit rewards without a ledger row."""
    # Through the customer referrers (few) and the (affiliate, status) index: no scan of all
    # approved commissions every few minutes.
    return Commission.objects.filter(
        affiliate__kind=Affiliate.Kind.CUSTOMER,
        kind=Commission.Kind.COMMISSION,
        livemode=True,
        status=Commission.Status.APPROVED,
        inputs__reward=CustomerRewardKind.CREDIT,
        customer_credit__isnull=True,
        event__disputed=False,
    )


def credit_reversals_due():
    """Approved clawbacks of credited rewards without a ledger row."""
    return Commission.objects.filter(
        affiliate__kind=Affiliate.Kind.CUSTOMER,
        kind=Commission.Kind.REVERSAL,
        livemode=True,
        status=Commission.Status.APPROVED,
        reverses__inputs__reward=CustomerRewardKind.CREDIT,
        reverses__customer_credit__isnull=False,
        customer_credit__isnull=True,
    )


def credit_open(*, commission_id: int, now: datetime) -> CustomerCredit | None:
    """The ledger row of an approved credit reward, written once; None when it is not one (any
    more). Safe beside a twin: the commission's row lock orders them, the unique index decides."""
    try:
        with transaction.atomic():
            commission = (
                Commission.objects.select_for_update(of=("self",))
                .select_related("affiliate")
                .get(pk=commission_id)
            )
            existing = CustomerCredit.objects.filter(commission=commission).first()
            if existing is not None:
                return existing
            if not (
                commission.kind == Commission.Kind.COMMISSION
                and commission.livemode
                and commission.status == Commission.Status.APPROVED
                and (commission.inputs or {}).get("reward") == CustomerRewardKind.CREDIT
            ):
                return None
            reversals = list(
                commission.reversals.select_for_update()
                .exclude(status=Commission.Status.REJECTED)
                .order_by("pk")
            )
            amount = commission.amount_cents + sum(r.amount_cents for r in reversals)
            customer_id = commission.affiliate.customer_id or ""
            status, reason = CustomerCredit.Status.PENDING, ""
            if amount <= 0:
                status, reason = CustomerCredit.Status.SKIPPED, "nothing left after the refunds"
            elif not customer_id:
                status, reason = CustomerCredit.Status.FAILED, "the referrer has no customer id"
            row = CustomerCredit.objects.create(
                program_id=commission.program_id,
                affiliate_id=commission.affiliate_id,
                commission=commission,
                kind=CustomerCredit.Kind.CREDIT,
                netted=[r.pk for r in reversals],
                amount_cents=max(amount, 0),
                currency=commission.currency,
                stripe_customer_id=customer_id,
                status=status,
                reason=reason,
                created_at=now,
            )
            settled = [commission.pk, *row.netted]
            if status == CustomerCredit.Status.PENDING:
                Commission.objects.filter(pk__in=settled).update(status=Commission.Status.PROCESSING)
            elif status == CustomerCredit.Status.SKIPPED:
                Commission.objects.filter(pk__in=settled).update(status=Commission.Status.PAID, paid_at=now)
            audit_log(
                actor=Actor.system(),
                action="customer_credit.created",
                obj=row,
                data={"commission": commission.public_id, "amount_cents": row.amount_cents, "status": status},
            )
    except IntegrityError:  # a twin without the lock (none today) wrote it first: theirs stands
        return CustomerCredit.objects.filter(commission_id=commission_id).first()
    return row


def debit_open(*, commission_id: int, now: datetime) -> CustomerCredit | None:
    """The ledger row of one clawback of a credited reward: a debit of at most what is left of the
    credit after the debits before it. None when the row is not such a clawback."""
    try:
        with transaction.atomic():
            # Lock the reward, then its clawback: the order the refund locks them in; the reward's
            # lock also serialises the debits of one credit, so their sum cannot overrun it.
            reverses_id = (
                Commission.objects.filter(pk=commission_id).values_list("reverses_id", flat=True).first()
            )
            original = (
                Commission.objects.select_for_update().filter(pk=reverses_id).first() if reverses_id else None
            )
            reversal = (
                Commission.objects.select_for_update(of=("self",))
                .select_related("affiliate")
                .get(pk=commission_id)
            )
            existing = CustomerCredit.objects.filter(commission=reversal).first()
            if existing is not None:
                return existing
            if (
                original is None
                or reversal.kind != Commission.Kind.REVERSAL
                or reversal.status != Commission.Status.APPROVED
                or not reversal.livemode
            ):
                return None
            # Read, not locked: marking the credit done locks it and then the reward, the other way round.
            credit = CustomerCredit.objects.filter(commission=original).first()
            if credit is None:
                return None
            credited = credit.amount_cents if credit.status != CustomerCredit.Status.FAILED else 0
            if credit.status == CustomerCredit.Status.SKIPPED:
                credited = 0
            debited = (
                CustomerCredit.objects.filter(commission__reverses=original, kind=CustomerCredit.Kind.DEBIT)
                .exclude(status__in=[CustomerCredit.Status.FAILED, CustomerCredit.Status.SKIPPED])
                .aggregate(total=Sum("amount_cents"))["total"]
                or 0
            )
            amount = min(-reversal.amount_cents, credited - debited)
            status, reason = CustomerCredit.Status.PENDING, ""
            if amount <= 0:
                amount, status = 0, CustomerCredit.Status.SKIPPED
                reason = "nothing credited is left to take back"
            row = CustomerCredit.objects.create(
                program_id=reversal.program_id,
                affiliate_id=reversal.affiliate_id,
                commission=reversal,
                kind=CustomerCredit.Kind.DEBIT,
                amount_cents=amount,
                currency=reversal.currency,
                stripe_customer_id=credit.stripe_customer_id,
                status=status,
                reason=reason,
                created_at=now,
            )
            new_status = Commission.Status.PROCESSING if amount else Commission.Status.PAID
            Commission.objects.filter(pk=reversal.pk).update(
                status=new_status, paid_at=None if amount else now
            )
            audit_log(
                actor=Actor.system(),
                action="customer_credit.created",
                obj=row,
                data={"commission": reversal.public_id, "amount_cents": amount, "kind": "debit"},
            )
    except IntegrityError:
        return CustomerCredit.objects.filter(commission_id=commission_id).first()
    return row


def _claim(row_id: int, now: datetime) -> tuple[bool, bool]:
    """(claimed, resumed): take the row for sending, from pending or from a stale claim."""
    fresh = CustomerCredit.objects.filter(pk=row_id, status=CustomerCredit.Status.PENDING).update(
        status=CustomerCredit.Status.SENDING, claimed_at=now
    )
    if fresh:
        return True, False
    stale = CustomerCredit.objects.filter(
        pk=row_id, status=CustomerCredit.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    ).update(claimed_at=now)
    return bool(stale), bool(stale)


def _release(row: CustomerCredit) -> None:
    CustomerCredit.objects.filter(pk=row.pk, status=CustomerCredit.Status.SENDING).update(
        status=CustomerCredit.Status.PENDING
    )


def _settled_ids(row: CustomerCredit) -> list[int]:
    return [row.commission_id, *(row.netted or [])]


def _find_landed(client, row: CustomerCredit) -> str | None:
    """The id of a balance transaction of this row made by an earlier claim, if Stripe has one."""
    for txn in client.v1.customers.balance_transactions.list(
        row.stripe_customer_id, params={"limit": 100}
    ).auto_paging_iter():
        metadata = txn.metadata.to_dict() if txn.metadata else {}
        if metadata.get("refapp_credit") == row.public_id:
            return txn.id
    return None


def credit_send(*, row_id: int, now: datetime) -> CustomerCredit:
    """Move one ledger row's money in Stripe, once. Transient errors propagate after the claim is
    released (the task retries); everything else is recorded on the row."""
    from .stripe_client import PERMANENT_ERRORS, stripe_client

    claimed, resumed = _claim(row_id, now)
    row = CustomerCredit.objects.select_related("program", "affiliate").get(pk=row_id)
    if not claimed:
        return row  # done, failed, or another worker is sending it right now
    if row.kind == CustomerCredit.Kind.DEBIT:
        credit = CustomerCredit.objects.get(commission_id=row.commission.reverses_id)
        if credit.status in (CustomerCredit.Status.FAILED, CustomerCredit.Status.SKIPPED):
            return _skip(row=row, reason="the credit it would take back never landed", now=now)
        if credit.status != CustomerCredit.Status.DONE:
            _release(row)  # the credit has not landed yet: debit after it, on a later pass
            return row
    client = stripe_client()
    try:
        landed = _find_landed(client, row) if resumed else None
        if landed is None:
            txn = client.v1.customers.balance_transactions.create(
                row.stripe_customer_id,
                params={
                    "amount": row.stripe_amount,
                    "currency": row.currency.lower(),
                    "description": _description(row),
                    "metadata": {
                        "refapp_credit": row.public_id,
                        "commission": row.commission.public_id,
                        "referrer": row.affiliate.public_id,
                    },
                },
                options={"idempotency_key": row.idempotency_key},
            )
            landed = txn.id
    except PERMANENT_ERRORS as exc:
        reason = (getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__)[:500]
        return _fail(row=row, reason=reason, now=now)
    except Exception:
        _release(row)
        raise
    return _done(row=row, transaction_id=landed, now=now)


def _description(row: CustomerCredit) -> str:
    amount = format_amount(row.amount_cents, row.currency)
    if row.kind == CustomerCredit.Kind.CREDIT:
        return f"{row.program.name}: {amount} credit for referring a friend"
    return f"{row.program.name}: {amount} of a referral credit taken back (the friend's order was refunded)"


def _done(*, row: CustomerCredit, transaction_id: str, now: datetime) -> CustomerCredit:
    with transaction.atomic():
        marked = CustomerCredit.objects.filter(pk=row.pk, status=CustomerCredit.Status.SENDING).update(
            status=CustomerCredit.Status.DONE, stripe_transaction_id=transaction_id, done_at=now
        )
        if marked:
            Commission.objects.filter(pk__in=_settled_ids(row), status=Commission.Status.PROCESSING).update(
                status=Commission.Status.PAID, paid_at=now
            )
            audit_log(
                actor=_STRIPE,
                action="customer_credit.done",
                obj=row,
                data={"kind": row.kind, "amount_cents": row.amount_cents, "transaction": transaction_id},
            )
    row.refresh_from_db()
    return row


def _fail(*, row: CustomerCredit, reason: str, now: datetime) -> CustomerCredit:
    with transaction.atomic():
        marked = CustomerCredit.objects.filter(pk=row.pk, status=CustomerCredit.Status.SENDING).update(
            status=CustomerCredit.Status.FAILED, reason=reason
        )
        if marked:
            Commission.objects.filter(pk__in=_settled_ids(row), status=Commission.Status.PROCESSING).update(
                status=Commission.Status.APPROVED, status_reason=f"account credit failed: {reason}"[:500]
            )
            audit_log(actor=_STRIPE, action="customer_credit.failed", obj=row, data={"reason": reason})
    row.refresh_from_db()
    return row


def _skip(*, row: CustomerCredit, reason: str, now: datetime) -> CustomerCredit:
    with transaction.atomic():
        marked = CustomerCredit.objects.filter(pk=row.pk, status=CustomerCredit.Status.SENDING).update(
            status=CustomerCredit.Status.SKIPPED, reason=reason, amount_cents=0
        )
        if marked:
            Commission.objects.filter(pk__in=_settled_ids(row), status=Commission.Status.PROCESSING).update(
                status=Commission.Status.PAID, paid_at=now
            )
            audit_log(
                actor=Actor.system(), action="customer_credit.skipped", obj=row, data={"reason": reason}
            )
    row.refresh_from_db()
    return row


def credit_issue(*, commission_id: int, now: datetime) -> CustomerCredit | None:
    """Open and send the credit (or debit) of one commission row: what a job for one commission does."""
    commission = Commission.objects.filter(pk=commission_id).values_list("kind", flat=True).first()
    opener = debit_open if commission == Commission.Kind.REVERSAL else credit_open
    row = opener(commission_id=commission_id, now=now)
    if row is None or row.status != CustomerCredit.Status.PENDING:
        return row
    return credit_send(row_id=row.pk, now=now)


def credits_sync(*, now: datetime) -> dict[str, int]:
    """Open the ledger rows of everything due, then send every open row (credits before debits)."""
    opened = 0
    for commission_id in credit_rewards_due().order_by("pk").values_list("pk", flat=True)[:1000]:
        opened += credit_open(commission_id=commission_id, now=now) is not None
    for commission_id in credit_reversals_due().order_by("pk").values_list("pk", flat=True)[:1000]:
        opened += debit_open(commission_id=commission_id, now=now) is not None
    sent = 0
    open_rows = CustomerCredit.objects.filter(
        Q(status=CustomerCredit.Status.PENDING)
        | Q(status=CustomerCredit.Status.SENDING, claimed_at__lt=now - STALE_CLAIM)
    ).order_by("kind", "pk")  # "credit" sorts before "debit"
    for row_id in open_rows.values_list("pk", flat=True)[:1000]:
        try:
            row = credit_send(row_id=row_id, now=now)
        except TRANSIENT:
            continue  # released; the next pass tries again
        sent += row.status == CustomerCredit.Status.DONE
    return {"opened": opened, "sent": sent}


@shared_task(name="payouts.credits.sync_customer_credits", acks_late=True)
def sync_customer_credits() -> dict[str, int]:
    """Every few minutes (refapp/celery.py): credit approved rewards, debit refunded ones."""
    return credits_sync(now=timezone.now())
