"""Files an admin takes to the bank or to Wise to pay a manual run, and the yearly tax report.

- SEPA credit transfer (pain.001.001.03, built and validated against its XML schema by `sepaxml`):
  the EUR program's bank payouts to an IBAN, the program's own account as the debtor.
- Wise batch payment CSV: Wise payouts (to an email; Wise asks the recipient for the bank) and the
  bank payouts the SEPA file cannot carry (US ACH accounts, or an IBAN in a non-EUR program).
  No payout is in both files, so nobody is paid twice for using both.
- Tax report: a year's paid payouts per affiliate with their tax details (1099 or VAT data).

These are the only places a full bank number or tax id leaves refapp; every CSV cell goes through
`safe_cell` (tracking/csv_export.py) like every other export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

from django.db.models import Count, Min, QuerySet, Sum
from sepaxml import SepaTransfer
from sepaxml.validation import ValidationError as SepaValidationError

from affiliates.models import Affiliate, Program, TaxForm, TaxProfile
from tracking.csv_export import decimal_amount

from .models import Payout

SEPA_SCHEMA = "pain.001.001.03"


class ExportRefused(Exception):
    """The file cannot be made for this program or these payouts; the message says why."""


def _end_to_end_id(payout: Payout) -> str:
    # SEPA's character set has no underscore: "po_3kq…" goes out as "po-3kq…" (19 characters).
    return payout.public_id.replace("_", "-")


def sepa_payouts(program: Program, status: str) -> QuerySet[Payout]:
    """The bank payouts a SEPA file carries: to an IBAN, in EUR."""
    return (
        Payout.objects.filter(
            program=program,
            method=Payout.Method.BANK,
            status=status,
            currency="EUR",
            bank_details__has_key="iban",
        )
        .select_related("affiliate")
        .order_by("pk")
    )


def sepa_transfer_file(*, program: Program, payouts: Iterable[Payout], execution_date: date) -> bytes:
    """A pain.001 credit transfer of these payouts from the program's account, schema-validated.

    Raises ExportRefused for a non-EUR program, a missing debtor account, no payouts, or a file the
    schema refuses (sepaxml's own validation), so that nothing half-valid is handed out.
    """
    if program.currency != "EUR":
        raise ExportRefused(
            f"SEPA transfers are in euros; this program pays in {program.currency}. Use the Wise CSV instead."
        )
    if not (program.sepa_debtor_name and program.sepa_debtor_iban):
        raise ExportRefused("Set the program's SEPA debtor (name, IBAN, BIC) in the settings first.")
    config = {
        "name": program.sepa_debtor_name,
        "IBAN": program.sepa_debtor_iban,
        "batch": True,
        "currency": "EUR",
    }
    if program.sepa_debtor_bic:
        config["BIC"] = program.sepa_debtor_bic
    transfer = SepaTransfer(config, schema=SEPA_SCHEMA, clean=True)
    count = 0
    for payout in payouts:
        details = payout.bank_details
        payment = {
            "name": details.get("holder") or payout.affiliate.name,
            "IBAN": details["iban"],
            "amount": payout.amount_cents,
            "execution_date": execution_date,
            "description": f"{program.name} affiliate payout {payout.period}",
            "endtoend_id": _end_to_end_id(payout),
        }
        if details.get("bic"):
            payment["BIC"] = details["bic"]
        transfer.add_payment(payment)
        count += 1
    if not count:
        raise ExportRefused("No bank payouts to an IBAN are waiting to be paid.")
    try:
        return transfer.export(validate=True)
    except SepaValidationError as exc:
        raise ExportRefused(f"The SEPA file did not pass the {SEPA_SCHEMA} schema: {exc}") from exc


# Wise's batch payment template: the "send by email" columns, then the bank columns of the "send to
# bank accounts" template (IBAN/BIC, and abartn/accountNumber/accountType for USD). See
# docs/decisions.md, issue 18 item 2.
WISE_HEADER = (
    "name",
    "recipientEmail",
    "paymentReference",
    "receiverType",
    "amountCurrency",
    "amount",
    "sourceCurrency",
    "targetCurrency",
    "IBAN",
    "BIC",
    "accountNumber",
    "abartn",
    "accountType",
)


def wise_payouts(program: Program, status: str) -> QuerySet[Payout]:
    """Wise payouts, and the bank payouts that are not in the SEPA file."""
    payouts = Payout.objects.filter(program=program, status=status).select_related("affiliate__tax_profile")
    wise = payouts.filter(method=Payout.Method.WISE)
    bank = payouts.filter(method=Payout.Method.BANK).exclude(
        pk__in=sepa_payouts(program, status).values("pk")
    )
    return (wise | bank).order_by("pk")


def _is_business(affiliate: Affiliate) -> bool:
    try:
        return affiliate.tax_profile.is_business
    except TaxProfile.DoesNotExist:
        return False


def wise_rows(payouts: Iterable[Payout]) -> Iterator[list]:
    for payout in payouts:
        details = payout.bank_details
        affiliate = payout.affiliate
        yield [
            details.get("holder") or affiliate.name,
            payout.destination if payout.method == Payout.Method.WISE else "",
            f"{_end_to_end_id(payout)} {payout.period}",
            "INSTITUTION" if _is_business(affiliate) else "PERSON",
            # "target": the affiliate receives the exact amount; Wise's fee is the program's.
            "target",
            decimal_amount(payout.amount_cents, payout.currency),
            payout.currency,
            payout.currency,
            details.get("iban", ""),
            details.get("bic", ""),
            details.get("account_number", ""),
            details.get("routing_number", ""),
            details.get("account_type", "").upper(),
        ]


# --- yearly tax report ----------------------------------------------------------------------------

TAX_HEADER = (
    "affiliate_id",
    "code",
    "name",
    "email",
    "legal_name",
    "country",
    "business",
    "tax_id",
    "tax_id_type",
    "form_type",
    "form_on_file",
    "currency",
    "paid_total",
    "payouts",
    "first_paid_at",
)


def tax_year_rows(*, program: Program, year: int) -> Iterator[list]:
    """One row per affiliate paid in the calendar year (UTC) with their total and tax details."""
    totals = (
        Payout.objects.filter(program=program, status=Payout.Status.PAID, paid_at__year=year)
        .values("affiliate_id", "currency")
        .annotate(total=Sum("amount_cents"), n=Count("pk"), first=Min("paid_at"))
        .order_by("affiliate_id", "currency")
    )
    rows = list(totals)
    ids = [row["affiliate_id"] for row in rows]
    affiliates = Affiliate.objects.in_bulk(ids)
    profiles = {p.affiliate_id: p for p in TaxProfile.objects.filter(affiliate_id__in=ids)}
    forms = set(TaxForm.objects.filter(affiliate_id__in=ids).values_list("affiliate_id", flat=True))
    for row in rows:
        affiliate = affiliates[row["affiliate_id"]]
        profile = profiles.get(affiliate.pk)
        yield [
            affiliate.public_id,
            affiliate.code,
            affiliate.name,
            affiliate.email,
            profile.legal_name if profile else "",
            profile.country if profile else "",
            (profile.is_business if profile else ""),
            profile.tax_id if profile else "",
            profile.tax_id_kind if profile else "",
            profile.get_form_type_display() if profile and profile.form_type else "",
            affiliate.pk in forms,
            row["currency"],
            decimal_amount(row["total"], row["currency"]),
            row["n"],
            row["first"],
        ]
