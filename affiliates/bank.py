"""Bank details and tax ids: validated by the libraries that know the rules, masked for display.

IBAN and BIC go through `schwifty` (checksum, country length, the bank registry), US routing
numbers through `python-stdnum`'s ABA checksum (`stdnum.us.rtn`), tax ids through `python-stdnum`
(`stdnum.eu.vat` for EU VAT ids, else the country's `vat` or `tin` module). Every check raises
Django's ValidationError with a message a person can act on, so forms and services share them.

Masking: after entry a bank number is only ever shown as its last four characters (the portal,
the panel, audit rows and emails); the exports to the bank or Wise are the only place the full
number appears.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum import get_cc_module
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.us import rtn

MASK = "•"


def clean_iban(value: str) -> IBAN:
    try:
        iban = IBAN(value or "")
    except SchwiftyException as exc:
        raise ValidationError(
            f"This is not a valid IBAN ({str(exc).lower()}). Check it against your bank statement."
        ) from exc
    if not iban.in_sepa_zone:
        raise ValidationError(
            f"{iban.country_code} accounts cannot be paid by SEPA transfer; use Wise instead."
        )
    return iban


def clean_bic(value: str, iban: IBAN | None = None) -> str:
    """The BIC as entered, else the one the IBAN's bank registry gives; '' when neither knows one."""
    value = (value or "").strip()
    if not value:
        return str(iban.bic.compact) if iban is not None and iban.bic is not None else ""
    try:
        bic = BIC(value)
    except SchwiftyException as exc:
        raise ValidationError(f"This is not a valid BIC ({str(exc).lower()}).") from exc
    if iban is not None and bic.country_code != iban.country_code:
        # A SEPA bank's BIC names its own country; a mismatch is a typo or a pasted wrong line.
        raise ValidationError(
            f"This BIC is of a bank in {bic.country_code}, but the IBAN is of {iban.country_code}."
        )
    return str(bic.compact)


def clean_routing_number(value: str) -> str:
    try:
        return rtn.validate(value or "")
    except StdnumError as exc:
        raise ValidationError(
            "This is not a valid US routing number (9 digits with a valid ABA checksum)."
        ) from exc


def clean_account_number(value: str) -> str:
    compact = "".join((value or "").split()).replace("-", "")
    if not compact.isdigit() or not 4 <= len(compact) <= 17:
        raise ValidationError("A US account number has 4 to 17 digits.")
    return compact


def mask_tail(value: str, visible: int = 4) -> str:
    """'DE89370400440532013000' → '•••• 3000'; empty stays empty."""
    if not value:
        return ""
    return f"{MASK * 4} {value[-visible:]}" if len(value) > visible else MASK * len(value)


def mask_iban(value: str) -> str:
    """The country code and the last four characters: enough to recognise one's own account."""
    if not value:
        return ""
    return f"{value[:2]}{MASK * 2} {MASK * 4} {value[-4:]}"


# --- tax ids --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaxId:
    number: str  # compact form
    kind: str  # the python-stdnum module that accepted it, e.g. "eu.vat", "us.tin"; "" when unchecked


def _module_name(module) -> str:
    return module.__name__.removeprefix("stdnum.")


def clean_tax_id(value: str, country: str) -> TaxId:
    """A VAT id or national tax number of `country` (ISO 3166 alpha-2), checked by python-stdnum.

    EU VAT ids are tried first (with or without their country prefix), then the country's own
    `vat` and `tin` modules. A country python-stdnum has no module for is accepted after a shape
    check only (docs/decisions.md, issue 18 item 3).
    """
    raw = " ".join((value or "").split())
    if not raw:
        raise ValidationError("Enter your VAT id or tax number.")
    cc = (country or "").lower()
    candidates = []
    if cc in eu_vat.MEMBER_STATES or cc == "gr":
        prefix = "el" if cc == "gr" else cc
        prefixed = raw if raw[:2].lower() in (cc, prefix) else prefix.upper() + raw
        candidates.append((eu_vat, prefixed))
    for kind in ("vat", "tin"):
        module = get_cc_module(cc, kind) if cc else None
        if module is not None:
            candidates.append((module, raw))
    for module, number in candidates:
        try:
            return TaxId(number=module.validate(number), kind=_module_name(module))
        except StdnumError:
            continue
    if candidates:
        raise ValidationError(
            f"This is not a valid VAT id or tax number for {country.upper()}; check the digits and the country."
        )
    compact = "".join(ch for ch in raw if ch.isalnum())
    if not 4 <= len(compact) <= 30 or any(not (ch.isalnum() or ch in " -./") for ch in raw):
        raise ValidationError("A tax number has 4 to 30 letters and digits.")
    return TaxId(number=compact.upper(), kind="")
