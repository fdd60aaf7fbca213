"""Importing affiliates, their referred customers and their commission history from a CSV file.

Three formats (docs/import.md): Rewardful's import sheet (one row per referred customer),
FirstPromoter's promoter export, and refapp's own format, which also carries historical
commissions. Every format is read into the same `Row`; one planner decides each row against the
database and the rows before it; one writer lands the plan.

The contract:
- A file lands whole or not at all: one transaction, under the program's row lock (two imports of
  one program run one after the other, and each plans against what the other committed). With
  `skip_invalid`, every valid row lands and the refused ones are listed.
- Re-importing a file changes nothing: affiliates are matched by email, customers by their id,
  orders by their id; what already holds the same values is "unchanged".
- Nothing already in refapp is overwritten silently: a customer bound to another affiliate, an
  order already recorded, a token taken by someone else, an email whose affiliate has another
  code: each refuses its row with the reason.
- Bulk writes (COPY on PostgreSQL, bulk_create elsewhere) and set-based lookups: 100,000 rows
  import in under a minute on PostgreSQL (bench/imports.py). Audit rows are written in bulk too: `affiliate.created` /
  `affiliate.updated` per affiliate and `commission.imported` per historical order, as the
  services would, plus one `affiliates.imported` row per import with the counts; listeners
  (webhooks) hear of them, and of each new customer binding, like they hear of the services' rows.
- Imported paid commissions are `paid` without a payout row: the payout run only takes
  `approved` ones, so they are never paid again; imported `approved` ones are in the next run.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import EmailValidator
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from affiliates.models import _FORMULA_PREFIXES, CODE_RE, PARAM_RE, Affiliate, Program
from affiliates.portal_services import payout_destination_notify
from affiliates.services import program_update
from refapp.hashing import email_hash
from refapp.ids import new_public_ids
from refapp.instances import unsaved
from refapp.models import Actor, AuditLog, audit_announce, audit_entry, audit_watched
from tracking import lookup
from tracking.models import Event, Referral

from .models import Commission, ImportUpload
from .pipeline import response_body

FORMATS = ("rewardful", "firstpromoter", "refapp")
FORMAT_LABELS = {"rewardful": "Rewardful", "firstpromoter": "FirstPromoter", "refapp": "refapp"}
# The parameter each platform's links carried, offered as the program's extra parameter name.
FORMAT_PARAMS = {"rewardful": "via", "firstpromoter": "fpr", "refapp": ""}
BATCH = 2000  # rows per INSERT: large enough to amortise a round trip, small enough for SQLite's limits
REFERRAL_METHOD = "import"
EVENT_SOURCE = "import"
MAX_CUSTOMER_ID = 255
MAX_ORDER_ID = 255
MAX_NAME = 200
MAX_AMOUNT = 10**12  # minor units: ten billion in a two-decimal currency, far beyond any real order
# The fields of an affiliate that decide where their money goes.
PAYOUT_FIELDS = frozenset({"paypal_email", "wise_email", "payout_method"})


@functools.lru_cache(maxsize=4096)
def _domain_ok(domain_part: str) -> bool:
    return EmailValidator().validate_domain_part(domain_part)


class _EmailValidator(EmailValidator):
    """Django's EmailValidator, remembering which domains it accepted: the domain check was most
    of a row's validation, and a file names the same few domains over and over."""

    def validate_domain_part(self, domain_part: str) -> bool:
        return _domain_ok(domain_part)


_email_validator = _EmailValidator()
_EVENT_NAME_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
_HEADER_CLEAN_RE = re.compile(r"[^a-z0-9]+")


class ImportFileError(Exception):
    """The file as a whole cannot be read: encoding, headers, not CSV. Nothing was written."""


class ImportConflict(Exception):
    """The program changed under the import (a concurrent join took an email or a code). Nothing
    was written; importing again plans against the new state."""


# --- reading ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Order:
    order_id: str
    event: str
    amount_cents: int
    commission_cents: int
    status: str
    occurred_at: datetime
    paid_at: datetime | None


@dataclass(slots=True)
class Row:
    line: int
    email: str
    name: str
    code: str = ""
    status: str = ""
    paypal_email: str = ""
    wise_email: str = ""
    customer_id: str = ""
    customer_since: datetime | None = None
    order: Order | None = None


@dataclass(slots=True)
class Refusal:
    line: int
    reason: str


def decode(data: bytes | str) -> str:
    """The file's text: UTF-8 (a byte-order mark is allowed, as spreadsheets write one)."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). "
                "Save it as CSV UTF-8 and try again."
            ) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise ImportFileError("The file contains NUL bytes: it is not a CSV text file.")
    return text


def normalise_header(name: str) -> str:
    """'Stripe Customer ID' and 'stripe_customer_id' name the same column."""
    return _HEADER_CLEAN_RE.sub("_", name.strip().lower()).strip("_")


def _records(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The normalised header and an iterator of (line number where the row starts, row). Line 1 is
    the header; blank lines are skipped; a quoted cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("The file is empty: it needs a header row and at least one row.") from None
    except csv.Error as exc:
        raise ImportFileError(f"Line 1 is not valid CSV: {exc}.") from exc
    names = [normalise_header(h) for h in header]
    if not any(names):
        raise ImportFileError("The first line must be the header row (the column names).")
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    if duplicated:
        raise ImportFileError(f"Columns named twice in the header: {', '.join(duplicated)}.")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        start = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(f"Line {start} is not valid CSV: {exc}.") from exc
            line, start = start, reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) > len(names):
                extra = cells[len(names) :]
                if any(c.strip() for c in extra):
                    yield (
                        line,
                        {"__error__": f"has {len(cells)} cells but the header has {len(names)} columns"},
                    )
                    continue
            yield line, {n: (cells[i].strip() if i < len(cells) else "") for i, n in enumerate(names) if n}

    return names, rows()


# Columns per format: required, optional; None = any other column is ignored (exports carry many).
_REWARDFUL = (
    {"email", "first_name", "last_name"},
    {"stripe_customer_id", "paypal_email", "wise_email", "token"},
)
_REFAPP = (
    {"email", "first_name", "last_name"},
    {
        "code",
        "status",
        "paypal_email",
        "customer_id",
        "customer_since",
        "order_id",
        "event",
        "amount_cents",
        "currency",
        "commission_cents",
        "commission_status",
        "occurred_at",
        "paid_at",
    },
)
# FirstPromoter's promoter export: see docs/decisions.md for where these names come from. The first
# name present in each group is read.
_FP_EMAIL = ("email", "promoter_email")
_FP_FIRST = ("first_name", "profile_first_name")
_FP_LAST = ("last_name", "profile_last_name")
_FP_NAME = ("name", "full_name", "promoter_name")
_FP_CODE = ("ref_id", "default_ref_id", "referral_id", "ref_token", "cust_ref")
_FP_LINK = ("referral_link", "ref_link", "link")
_FP_PAYPAL = ("paypal_email", "profile_paypal_email")
_FP_STATUS = ("status", "state")
_FP_STATES = {
    "": Affiliate.Status.ACTIVE,
    "active": Affiliate.Status.ACTIVE,
    "approved": Affiliate.Status.ACTIVE,
    "accepted": Affiliate.Status.ACTIVE,
    "pending": Affiliate.Status.PENDING,
    "not_set": Affiliate.Status.PENDING,
    "denied": Affiliate.Status.REJECTED,
    "rejected": Affiliate.Status.REJECTED,
    "blocked": Affiliate.Status.SUSPENDED,
    "inactive": Affiliate.Status.SUSPENDED,
}
_REFAPP_STATES = {
    "": Affiliate.Status.ACTIVE,
    "active": Affiliate.Status.ACTIVE,
    "pending": Affiliate.Status.PENDING,
    "suspended": Affiliate.Status.SUSPENDED,
    "rejected": Affiliate.Status.REJECTED,
}
_COMMISSION_STATES = {
    "pending": Commission.Status.PENDING,
    "approved": Commission.Status.APPROVED,
    "paid": Commission.Status.PAID,
}


def _check_header(fmt: str, names: list[str]) -> None:
    present = {n for n in names if n}
    if fmt == "firstpromoter":
        if not present & set(_FP_EMAIL):
            raise ImportFileError(
                "This is not a FirstPromoter promoter export: it has no email column "
                f"(columns found: {', '.join(sorted(present)) or 'none'})."
            )
        return
    required, optional = _REWARDFUL if fmt == "rewardful" else _REFAPP
    missing = sorted(required - present)
    unknown = sorted(present - required - optional)
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    if problems:
        expected = ", ".join([*sorted(required), *sorted(optional)])
        raise ImportFileError(
            f"The header does not fit the {FORMAT_LABELS[fmt]} format: {'; '.join(problems)}. "
            f"Expected columns: {expected}."
        )


class _RowError(Exception):
    pass


@functools.lru_cache(maxsize=65536)
def _email_ok(value: str) -> bool:
    """The validator's verdict, remembered: a file names each affiliate's address on every row of
    theirs (ten rows per affiliate is common in refapp's format)."""
    try:
        _email_validator(value)
    except ValidationError:
        return False
    return True


def _email(value: str, column: str) -> str:
    value = value.strip().lower()
    if not value:
        raise _RowError(f"{column} is empty")
    if len(value) > 254:
        raise _RowError(f"{column} is longer than 254 characters")
    if not _email_ok(value):
        raise _RowError(f"{column} {value!r} is not a valid email address")
    return value


def _payout_email(value: str, column: str) -> str:
    # affiliates.models.validate_paypal_email's two checks, with the faster validator above.
    value = value.strip().lower()
    if not value:
        return ""
    if not _email_ok(value):
        raise _RowError(f"{column} {value!r} is not a valid email address")
    if value.startswith(_FORMULA_PREFIXES):
        raise _RowError(f"{column} {value!r} may not start with =, +, -, @, a tab or a line break")
    return value


def _code(value: str, column: str) -> str:
    if value and not CODE_RE.match(value):
        raise _RowError(
            f"{column} {value!r} is not a usable code (1 to 64 letters, digits, '-' or '_', "
            "starting with a letter or digit)"
        )
    return value


def _name(first: str, last: str, email: str, *, required: bool) -> str:
    name = " ".join(part for part in (first.strip(), last.strip()) if part)
    if not name:
        if required:
            raise _RowError("first_name and last_name are both empty")
        name = email.split("@")[0]
    if len(name) > MAX_NAME:
        raise _RowError(f"the name is longer than {MAX_NAME} characters")
    return name


def _customer(value: str, column: str) -> str:
    if len(value) > MAX_CUSTOMER_ID:
        raise _RowError(f"{column} is longer than {MAX_CUSTOMER_ID} characters")
    return value


def _moment(value: str, column: str, *, now: datetime) -> datetime:
    parsed: datetime | None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            parsed = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise _RowError(f"{column} {value!r} is not a date (use 2026-01-31 or 2026-01-31T10:00:00Z)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > now:
        raise _RowError(f"{column} {value!r} is in the future")
    return parsed


def _cents(value: str, column: str, *, required: bool) -> int:
    if not value:
        if required:
            raise _RowError(f"{column} is empty")
        return 0
    if not value.isdigit():
        raise _RowError(f"{column} {value!r} is not a whole number of minor units (e.g. 2500 for 25.00)")
    cents = int(value)
    if cents > MAX_AMOUNT:
        raise _RowError(f"{column} {value!r} is too large")
    return cents


def _link_code(link: str) -> str:
    """The code in a FirstPromoter referral link: its ?fpr= (or ?via=, ?ref=) value."""
    query = parse_qs(urlsplit(link).query)
    for name in ("fpr", "via", "ref"):
        if query.get(name):
            return query[name][0]
    return ""


def _first(record: dict[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        if record.get(name):
            return record[name]
    return ""


def _row_rewardful(line: int, r: dict[str, str], program: Program, now: datetime) -> Row:
    email = _email(r["email"], "email")
    return Row(
        line=line,
        email=email,
        name=_name(r["first_name"], r["last_name"], email, required=True),
        code=_code(r.get("token", ""), "token"),
        paypal_email=_payout_email(r.get("paypal_email", ""), "paypal_email"),
        wise_email=_payout_email(r.get("wise_email", ""), "wise_email"),
        customer_id=_customer(r.get("stripe_customer_id", ""), "stripe_customer_id"),
    )


def _row_firstpromoter(line: int, r: dict[str, str], program: Program, now: datetime) -> Row:
    email = _email(_first(r, _FP_EMAIL), "email")
    first, last = _first(r, _FP_FIRST), _first(r, _FP_LAST)
    # No name at all (FirstPromoter profiles often have none): "" leaves an existing affiliate's
    # name alone, and a new one is named after the email's local part.
    full = _first(r, _FP_NAME)
    name = _name(first, last, email, required=False) if first or last else full.strip()[:MAX_NAME]
    code = _first(r, _FP_CODE) or _link_code(_first(r, _FP_LINK))
    state = _first(r, _FP_STATUS).strip().lower()
    if state not in _FP_STATES:
        raise _RowError(f"status {state!r} is not one of {', '.join(s for s in _FP_STATES if s)}")
    return Row(
        line=line,
        email=email,
        name=name,
        code=_code(code, "ref_id"),
        status=_FP_STATES[state],
        paypal_email=_payout_email(_first(r, _FP_PAYPAL), "paypal_email"),
    )


def _row_refapp(line: int, r: dict[str, str], program: Program, now: datetime) -> Row:
    email = _email(r["email"], "email")
    state = r.get("status", "").lower()
    if state not in _REFAPP_STATES:
        raise _RowError(f"status {state!r} is not one of active, pending, suspended, rejected")
    customer_id = _customer(r.get("customer_id", ""), "customer_id")
    since = r.get("customer_since", "")
    if since and not customer_id:
        raise _RowError("customer_since is given without a customer_id")
    row = Row(
        line=line,
        email=email,
        name=_name(r["first_name"], r["last_name"], email, required=True),
        code=_code(r.get("code", ""), "code"),
        status=_REFAPP_STATES[state],
        paypal_email=_payout_email(r.get("paypal_email", ""), "paypal_email"),
        customer_id=customer_id,
        customer_since=_moment(since, "customer_since", now=now) if since else None,
    )
    order_columns = (
        "event",
        "amount_cents",
        "currency",
        "commission_cents",
        "commission_status",
        "occurred_at",
        "paid_at",
    )
    order_id = r.get("order_id", "")
    if not order_id:
        given = [c for c in order_columns if r.get(c)]
        if given:
            raise _RowError(f"{', '.join(given)} given without an order_id")
        return row
    if len(order_id) > MAX_ORDER_ID:
        raise _RowError(f"order_id is longer than {MAX_ORDER_ID} characters")
    event = (r.get("event") or "sale").lower()
    if not _EVENT_NAME_RE.match(event):
        raise _RowError(f"event {event!r} is not an event name ([a-z0-9_.-], at most 64)")
    currency = (r.get("currency") or program.currency).upper()
    if currency != program.currency:
        raise _RowError(f"currency {currency} is not the program's currency {program.currency}")
    status = r.get("commission_status", "").lower()
    if status not in _COMMISSION_STATES:
        raise _RowError(f"commission_status {status!r} is not one of pending, approved, paid")
    if not r.get("occurred_at"):
        raise _RowError("occurred_at is empty (the date of the order)")
    occurred_at = _moment(r["occurred_at"], "occurred_at", now=now)
    paid_at = None
    if r.get("paid_at"):
        if status != Commission.Status.PAID:
            raise _RowError("paid_at is given but commission_status is not paid")
        paid_at = _moment(r["paid_at"], "paid_at", now=now)
    row.order = Order(
        order_id=order_id,
        event=event,
        amount_cents=_cents(r.get("amount_cents", ""), "amount_cents", required=False),
        commission_cents=_cents(r.get("commission_cents", ""), "commission_cents", required=True),
        status=_COMMISSION_STATES[status],
        occurred_at=occurred_at,
        paid_at=paid_at or (occurred_at if status == Commission.Status.PAID else None),
    )
    return row


_READERS = {"rewardful": _row_rewardful, "firstpromoter": _row_firstpromoter, "refapp": _row_refapp}


def read_rows(
    fmt: str, data: bytes | str, *, program: Program, now: datetime
) -> tuple[list[Row], list[Refusal], int]:
    """The valid rows, the refused ones (bad cells), and the number of data rows read.
    Raises ImportFileError when the file as a whole cannot be read."""
    if fmt not in FORMATS:
        raise ImportFileError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")
    names, records = _records(decode(data))
    _check_header(fmt, names)
    reader = _READERS[fmt]
    rows: list[Row] = []
    refused: list[Refusal] = []
    count = 0
    for line, record in records:
        count += 1
        if "__error__" in record:
            refused.append(Refusal(line, record["__error__"]))
            continue
        try:
            rows.append(reader(line, record, program, now))
        except _RowError as exc:
            refused.append(Refusal(line, str(exc)))
    if count == 0:
        raise ImportFileError("The file has a header but no rows.")
    return rows, refused, count


# --- planning ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Known:
    """An affiliate as the planner sees it: from the database (pk set) or new in this file."""

    email: str
    code: str
    name: str
    paypal_email: str
    wise_email: str
    payout_method: str
    status: str
    first_line: int = 0  # the first row of this file that names it (0: none yet)
    pk: int | None = None
    public_id: str = ""
    livemode: bool = True
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    rows: int
    refused: list[Refusal]
    new_affiliates: list[_Known] = field(default_factory=list)
    updated_affiliates: list[_Known] = field(default_factory=list)
    referrals: list[tuple[str, str, datetime | None]] = field(default_factory=list)  # email, customer, since
    orders: list[tuple[str, str, Order, int]] = field(default_factory=list)  # email, customer, order, line
    known: dict[str, _Known] = field(default_factory=dict)  # by email: the program's and the file's
    bound_referrals: dict[str, tuple[int, str]] = field(default_factory=dict)  # customer -> (pk, public id)
    row_counts: dict[str, int] = field(default_factory=lambda: {"new": 0, "updated": 0, "unchanged": 0})
    unchanged: dict[str, int] = field(
        default_factory=lambda: {"affiliates": 0, "customers": 0, "commissions": 0}
    )
    notes: list[str] = field(default_factory=list)


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# The file's customers and orders already in the program, found by joining a table of the file's
# keys. On PostgreSQL the keys go in by COPY into a temporary table: an IN list of 100,000 values
# spent most of its time in the driver quoting them one by one. Elsewhere, IN lists of 500.
_REFERRALS_SQL = (
    "SELECT r.customer_id, a.email, r.id, r.public_id FROM tracking_referral r {keys} "
    "JOIN affiliates_affiliate a ON a.id = r.affiliate_id "
    "WHERE r.program_id = %s AND r.livemode AND r.customer_id {match}"
)
_ORDERS_SQL = (
    "SELECT e.order_id, e.source, a.email, e.name, e.amount_cents, c.amount_cents, c.status "
    "FROM tracking_event e {keys} "
    "LEFT JOIN affiliates_affiliate a ON a.id = e.affiliate_id "
    "LEFT JOIN commissions_commission c ON c.event_id = e.id "
    "WHERE e.program_id = %s AND e.livemode AND e.order_id {match} ORDER BY e.order_id, c.id"
)


def _keyed_rows(sql: str, program_id: int, keys: list[str]) -> list[tuple]:
    if not keys:
        return []
    # One transaction (nested in the import's when there is one): the temporary table lives and
    # dies with it, also behind a pooler that hands each transaction another server connection.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS refapp_import_keys (k text PRIMARY KEY) ON COMMIT DROP"
            )
            cursor.execute("TRUNCATE refapp_import_keys")
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy("COPY refapp_import_keys (k) FROM STDIN") as copy,
            ):
                for key in keys:
                    copy.write_row((key,))
            cursor.execute(sql.format(keys="JOIN refapp_import_keys k ON true", match="= k.k"), [program_id])
            return cursor.fetchall()
        found: list[tuple] = []
        for chunk in _chunks(keys):
            match = f"IN ({', '.join(['%s'] * len(chunk))})"
            cursor.execute(sql.format(keys="", match=match), [program_id, *chunk])
            found.extend(cursor.fetchall())
        return found


def _insert(model: type[models.Model], objs: list[Any], now: datetime) -> None:
    """Insert unsaved rows and give each its primary key. On PostgreSQL: the ids drawn from the
    table's sequence in one statement, then COPY (Django's bulk INSERT spent most of its time
    quoting parameters in the driver; row triggers, such as the conversion rollups', fire on COPY
    all the same). Elsewhere: bulk_create."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=BATCH)
        return
    table = model._meta.db_table
    fields = model._meta.concrete_fields
    for f in fields:
        if getattr(f, "auto_now_add", False):
            for obj in objs:
                if getattr(obj, f.attname) is None:
                    setattr(obj, f.attname, now)
    alias = connection.alias
    for obj, pk in zip(objs, _next_ids(model, len(objs)), strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = alias
    with connection.cursor() as cursor:
        plain = [f for f in fields if not isinstance(f, models.JSONField)]
        as_json = [f for f in fields if isinstance(f, models.JSONField)]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in plain + as_json)
        plain_names = [f.attname for f in plain]
        json_names = [f.attname for f in as_json]
        encode = DjangoJSONEncoder().encode
        # A value shared by many rows (the events' metadata) is encoded once. Keyed by id(): every
        # value stays alive in objs for the whole call, so no two of them share an id.
        encoded: dict[int, str] = {}

        def dumps(value: Any) -> str:
            text = encoded.get(id(value))
            if text is None:
                text = encoded[id(value)] = encode(value)
            return text

        copy_sql = f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN"
        # The raw cursor's errors are psycopg's: wrapped, a unique violation is Django's IntegrityError.
        with connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
            for obj in objs:
                values = obj.__dict__
                copy.write_row([values[n] for n in plain_names] + [dumps(values[n]) for n in json_names])


def _next_ids(model: type[models.Model], count: int) -> list[int]:
    """`count` ids drawn from the table's sequence in one statement (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [pk for (pk,) in cursor.fetchall()]


def _copy(model: type[models.Model], varying: tuple[str, ...], rows: Iterable[tuple], **same: Any) -> None:
    """COPY rows given as tuples (PostgreSQL): `varying` names their columns (attnames, JSON ones
    already encoded), `same` the values every row shares; every other column takes its field's
    default, as the model's constructor would give it, and the primary key unless named is drawn
    by the table. No model instance per row."""
    encode = DjangoJSONEncoder().encode
    fields = {f.attname: f for f in model._meta.concrete_fields}
    unknown = (set(varying) | set(same)) - fields.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    for name, f in fields.items():
        if name in varying or name in same or f.primary_key:
            continue
        per_row = f.has_default() and callable(f.default) and f.default not in (dict, list)
        if per_row or getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
            raise TypeError(f"{model.__name__}.{name} has a value made per row: give it one")
        same[name] = f.get_default()
    tail = tuple(encode(v) if isinstance(fields[n], models.JSONField) else v for n, v in same.items())
    columns = ", ".join(connection.ops.quote_name(fields[n].column) for n in (*varying, *same))
    copy_sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(row + tail)


def _generated_code(name: str, taken: set[str]) -> str:
    """A code from the affiliate's first name, as Rewardful makes one when the token is empty."""
    base = "".join(ch for ch in name.split(" ")[0].lower() if ch.isascii() and ch.isalnum())[:20] or "partner"
    candidate = base
    while candidate in taken:
        candidate = f"{base}{secrets.randbelow(900_000) + 100_000}"
    return candidate


def plan_import(
    *, program: Program, rows: list[Row], refused: list[Refusal], count: int, now: datetime
) -> Plan:
    """Decide every row against the database and the rows before it. Reads only: three set-based
    queries (the program's affiliates, the file's customers, the file's orders)."""
    plan = Plan(rows=count, refused=list(refused))
    known = plan.known
    by_code: dict[str, str] = {}  # code_key -> email, database and file
    for a in Affiliate.objects.filter(program=program).values(
        "pk",
        "public_id",
        "email",
        "code",
        "name",
        "paypal_email",
        "wise_email",
        "payout_method",
        "status",
        "livemode",
    ):
        known[a["email"]] = _Known(
            email=a["email"],
            code=a["code"],
            name=a["name"],
            paypal_email=a["paypal_email"],
            wise_email=a["wise_email"],
            payout_method=a["payout_method"],
            status=a["status"],
            pk=a["pk"],
            public_id=a["public_id"],
            livemode=a["livemode"],
        )
        by_code[a["code"].lower()] = a["email"]

    bound: dict[str, str] = {}  # customer id -> affiliate email
    customers_in_file = sorted({r.customer_id for r in rows if r.customer_id})
    for customer_id, email, pk, public_id in _keyed_rows(_REFERRALS_SQL, program.pk, customers_in_file):
        bound[customer_id] = email
        plan.bound_referrals[customer_id] = (pk, public_id)
    recorded: dict[str, dict[str, Any]] = {}
    orders_in_file = sorted({r.order.order_id for r in rows if r.order})
    for order_id, source, email, name, amount, c_amount, c_status in _keyed_rows(
        _ORDERS_SQL, program.pk, orders_in_file
    ):
        old = recorded.setdefault(
            order_id,
            {"source": source, "email": email, "name": name, "amount_cents": amount, "commissions": []},
        )
        if c_status is not None:
            old["commissions"].append((c_amount, c_status))

    # Codes named in the file are reserved before any code is generated, so that a generated code
    # never takes a token that a later row asks for.
    reserved = set(by_code) | {r.code.lower() for r in rows if r.code}
    order_lines: dict[str, int] = {}

    for row in rows:
        reason = None
        current = known.get(row.email)
        changes: dict[str, Any] = {}
        if current is None:
            code_key = row.code.lower()
            if row.code and code_key in by_code:
                other = known[by_code[code_key]]
                where = f"line {other.first_line}" if other.pk is None else "an affiliate already in refapp"
                reason = f"token {row.code!r} is already the code of {other.email} ({where})"
        elif not current.livemode:
            reason = f"{row.email} is a test-mode affiliate of this program"
        elif row.code and row.code.lower() != current.code.lower():
            where = f"on line {current.first_line}" if current.pk is None else "in refapp"
            reason = f"{row.email} already has the code {current.code!r} {where}, not {row.code!r}"
        elif current.first_line:  # named by an earlier row of this file: the rows must agree
            if row.name and row.name != current.name:
                reason = f"the name {row.name!r} differs from {current.name!r} on line {current.first_line}"
            elif row.paypal_email and current.paypal_email and row.paypal_email != current.paypal_email:
                reason = f"paypal_email differs from line {current.first_line}"
            elif row.wise_email and current.wise_email and row.wise_email != current.wise_email:
                reason = f"wise_email differs from line {current.first_line}"
        else:  # the first row naming an affiliate already in refapp
            if row.name and row.name != current.name:
                changes["name"] = (current.name, row.name)
            if (
                row.paypal_email
                and row.paypal_email != current.paypal_email
                and current.payout_method in (Affiliate.PayoutMethod.NONE, Affiliate.PayoutMethod.PAYPAL)
            ):
                changes["paypal_email"] = (current.paypal_email, row.paypal_email)
            # Wise as PayPal: the address of an affiliate paid by Wise or by nothing yet; one paid
            # by Stripe, bank or PayPal keeps their method (moving money is a person's decision).
            if (
                row.wise_email
                and row.wise_email != current.wise_email
                and current.payout_method in (Affiliate.PayoutMethod.NONE, Affiliate.PayoutMethod.WISE)
            ):
                changes["wise_email"] = (current.wise_email, row.wise_email)
            # Both given to an affiliate paid by nothing yet: PayPal, as for a new affiliate.
            if "paypal_email" in changes:
                method = Affiliate.PayoutMethod.PAYPAL
            elif "wise_email" in changes:
                method = Affiliate.PayoutMethod.WISE
            else:
                method = current.payout_method
            if method != current.payout_method:
                changes["payout_method"] = (current.payout_method, method)
        customer_new = False
        if reason is None and row.customer_id:
            owner = bound.get(row.customer_id)
            if owner is not None and owner != row.email:
                reason = f"customer {row.customer_id} is already referred by {owner}"
            customer_new = owner is None
        order_new = False
        if reason is None and row.order:
            order = row.order
            if order.order_id in order_lines:
                reason = f"order {order.order_id} is already on line {order_lines[order.order_id]}"
            elif order.order_id in recorded:
                old = recorded[order.order_id]
                same = (
                    old["source"] == EVENT_SOURCE
                    and old["email"] == row.email
                    and old["name"] == order.event
                    and old["amount_cents"] == order.amount_cents
                    and old["commissions"] == [(order.commission_cents, order.status)]
                )
                if not same:
                    reason = f"order {order.order_id} is already recorded in refapp with other values"
            else:
                order_new = True
        if reason is not None:
            plan.refused.append(Refusal(row.line, reason))
            continue

        # The row is accepted: record what it changes.
        creates = False
        if current is None:
            code = row.code or _generated_code(row.name or row.email.split("@")[0], reserved)
            reserved.add(code.lower())
            current = _Known(
                email=row.email,
                code=code,
                name=row.name or row.email.split("@")[0][:MAX_NAME],
                paypal_email=row.paypal_email,
                wise_email=row.wise_email,
                # A Rewardful affiliate picks PayPal or Wise; a row giving both is paid by PayPal
                # (as before Wise was imported) and keeps the Wise address for a switch later.
                payout_method=Affiliate.PayoutMethod.PAYPAL
                if row.paypal_email
                else Affiliate.PayoutMethod.WISE
                if row.wise_email
                else Affiliate.PayoutMethod.NONE,
                status=row.status or Affiliate.Status.ACTIVE,
                first_line=row.line,
            )
            known[row.email] = current
            by_code[code.lower()] = row.email
            plan.new_affiliates.append(current)
            creates = True
        elif not current.first_line:
            current.first_line = row.line
            if changes:
                current.changes = changes
                if "name" in changes:
                    current.name = row.name
                if "paypal_email" in changes:
                    current.paypal_email = row.paypal_email
                if "wise_email" in changes:
                    current.wise_email = row.wise_email
                if "payout_method" in changes:
                    current.payout_method = changes["payout_method"][1]
                plan.updated_affiliates.append(current)
            else:
                plan.unchanged["affiliates"] += 1
        elif current.pk is None:  # a later row of a new affiliate may add an address
            if row.paypal_email and not current.paypal_email:
                current.paypal_email = row.paypal_email
                current.payout_method = Affiliate.PayoutMethod.PAYPAL
            if row.wise_email and not current.wise_email:
                current.wise_email = row.wise_email
                if current.payout_method == Affiliate.PayoutMethod.NONE:
                    current.payout_method = Affiliate.PayoutMethod.WISE
        if row.customer_id:
            if customer_new:
                bound[row.customer_id] = row.email
                plan.referrals.append((row.email, row.customer_id, row.customer_since))
                creates = True
            else:
                plan.unchanged["customers"] += 1
        if row.order:
            order_lines[row.order.order_id] = row.line
            if order_new:
                plan.orders.append((row.email, row.customer_id, row.order, row.line))
                creates = True
            else:
                plan.unchanged["commissions"] += 1
        plan.row_counts["new" if creates else "updated" if changes else "unchanged"] += 1

    plan.refused.sort(key=lambda r: r.line)
    redirected = sum(1 for k in plan.updated_affiliates if k.changes.keys() & PAYOUT_FIELDS)
    if redirected:
        plan.notes.append(
            f"{redirected} affiliate{'s' if redirected != 1 else ''} already in refapp get new payout "
            f"details; {'each is' if redirected != 1 else 'they are'} emailed when the import lands."
        )
    return plan


# --- the report -------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    format: str
    sha256: str
    rows: int
    counts: dict[str, int]
    affiliates: dict[str, int]
    customers: dict[str, int]
    commissions: dict[str, int]
    refused: list[Refusal]
    notes: list[str]
    dry_run: bool
    landed: bool
    ref_params_added: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "sha256": self.sha256,
            "rows": self.rows,
            "counts": self.counts,
            "affiliates": self.affiliates,
            "customers": self.customers,
            "commissions": self.commissions,
            "refused": [{"line": r.line, "reason": r.reason} for r in self.refused],
            "notes": self.notes,
            "dry_run": self.dry_run,
            "landed": self.landed,
            "ref_params_added": self.ref_params_added,
        }


def _report(fmt: str, digest: str, plan: Plan, *, dry_run: bool, landed: bool) -> ImportReport:
    commissions_new: dict[str, int] = {"new": len(plan.orders), "unchanged": plan.unchanged["commissions"]}
    for status in ("pending", "approved", "paid"):
        commissions_new[status] = sum(1 for _, _, order, _ in plan.orders if order.status == status)
    return ImportReport(
        format=fmt,
        sha256=digest,
        rows=plan.rows,
        counts={**plan.row_counts, "refused": len(plan.refused)},
        affiliates={
            "new": len(plan.new_affiliates),
            "updated": len(plan.updated_affiliates),
            "unchanged": plan.unchanged["affiliates"],
        },
        customers={"new": len(plan.referrals), "unchanged": plan.unchanged["customers"]},
        commissions=commissions_new,
        refused=plan.refused,
        notes=plan.notes,
        dry_run=dry_run,
        landed=landed,
    )


# --- writing ----------------------------------------------------------------------------------------


def _write(
    *, program: Program, plan: Plan, fmt: str, digest: str, actor: Actor, now: datetime
) -> list[AuditLog]:
    """Land the plan with bulk inserts; returns the audit rows (saved) and announcements."""
    source = {"import": digest[:16], "format": fmt}
    audits: list[AuditLog] = []
    announced: list[AuditLog] = []

    new = [
        unsaved(
            Affiliate,
            public_id=public_id,
            program=program,
            email=k.email,
            email_hash=email_hash(k.email),
            name=k.name,
            code=k.code,
            code_key=k.code.lower(),
            livemode=True,
            status=k.status,
            payout_method=k.payout_method,
            paypal_email=k.paypal_email,
            wise_email=k.wise_email,
            created_at=now,
            approved_at=now if k.status == Affiliate.Status.ACTIVE else None,
        )
        for k, public_id in zip(
            plan.new_affiliates, new_public_ids("aff", len(plan.new_affiliates)), strict=True
        )
    ]
    _insert(Affiliate, new, now)
    by_email: dict[str, Affiliate] = {a.email: a for a in new}
    for affiliate in new:
        audits.append(
            audit_entry(
                actor=actor,
                action="affiliate.created",
                obj=affiliate,
                data={"status": affiliate.status, "code": affiliate.code, **source},
            )
        )

    if plan.updated_affiliates:
        pks = [k.pk for k in plan.updated_affiliates]
        existing = {a.pk: a for a in Affiliate.objects.filter(pk__in=pks)}
        changed = []
        for k in plan.updated_affiliates:
            affiliate = existing[k.pk]
            affiliate.name = k.name
            affiliate.paypal_email = k.paypal_email
            affiliate.wise_email = k.wise_email
            affiliate.payout_method = k.payout_method
            changed.append(affiliate)
            data = {name: {"from": old, "to": new_value} for name, (old, new_value) in k.changes.items()}
            audits.append(
                audit_entry(actor=actor, action="affiliate.updated", obj=affiliate, data={**data, **source})
            )
            if k.changes.keys() & PAYOUT_FIELDS:
                # As the portal does when they change it themselves: a file that redirects
                # someone's money must not do it unseen.
                affiliate.program = program
                payout_destination_notify(affiliate)
        Affiliate.objects.bulk_update(
            changed, ["name", "paypal_email", "wise_email", "payout_method"], batch_size=BATCH
        )

    # The affiliates already in refapp that new customers or orders name: their ids and codes are
    # known from the plan's read, no second read.
    needed = {email for email, _, _ in plan.referrals} | {email for email, _, _, _ in plan.orders}
    for email in needed - by_email.keys():
        k = plan.known[email]
        by_email[email] = unsaved(
            Affiliate, id=k.pk, public_id=k.public_id, program=program, email=email, code=k.code
        )

    referrals = [
        unsaved(
            Referral,
            public_id=public_id,
            program=program,
            livemode=True,
            affiliate=by_email[email],
            customer_id=customer_id,
            visitor_id="",
            method=REFERRAL_METHOD,
            created_at=since or now,
        )
        for (email, customer_id, since), public_id in zip(
            plan.referrals, new_public_ids("ref", len(plan.referrals)), strict=True
        )
    ]
    _insert(Referral, referrals, now)
    # Like attribution's new referrals: announced to listeners, with no audit row of their own (the
    # import's audit row counts them).
    watched = audit_watched(program.pk)
    if watched:  # building 100,000 announcements nobody listens to is not free
        announced.extend(audit_entry(actor=actor, action="referral.created", obj=r) for r in referrals)

    orders: dict[str, Any] = {
        "program": program,
        "plan": plan,
        "by_email": by_email,
        "fmt": fmt,
        "source": source,
        "actor": actor,
        "now": now,
        "new_referrals": referrals,
    }
    if plan.orders and connection.vendor == "postgresql" and not watched:
        # Nobody to announce the orders' audit rows to: no instances needed, only rows.
        imported = _copy_orders(**orders)
        _insert(AuditLog, audits, now)
        _copy(
            AuditLog,
            ("object_id", "data"),
            imported,
            created_at=now,
            actor_id=actor.user.pk if getattr(actor.user, "pk", None) else None,
            actor_label=actor.label[:100],
            action="commission.imported",
            program_id=program.pk,
            object_type=Event._meta.label_lower,
        )
        return audits + announced
    if plan.orders:
        _write_orders(**orders, audits=audits)
    _insert(AuditLog, audits, now)
    return audits + announced


def _order_rows(
    *,
    program: Program,
    plan: Plan,
    by_email: dict[str, Affiliate],
    fmt: str,
    source: dict[str, str],
    new_referrals: list[Referral],
) -> Iterator[tuple[str, Affiliate, Referral | None, Order, int, str, dict[str, Any]]]:
    """Per order of the plan: its customer id, affiliate, referral (or None), order, line,
    attribution and the commission's inputs (what both writers below record)."""
    customers: dict[str, Referral] = {
        customer_id: unsaved(Referral, id=pk, public_id=public_id, program=program, customer_id=customer_id)
        for customer_id, (pk, public_id) in plan.bound_referrals.items()
    }
    customers.update({r.customer_id: r for r in new_referrals})
    for email, customer_id, order, line in plan.orders:
        referral = customers.get(customer_id) if customer_id else None
        attribution = Event.Attribution.CUSTOMER if referral else Event.Attribution.CODE
        inputs = {
            "imported": True,
            "format": fmt,
            "import": source["import"],
            "line": line,
            "event": order.event,
            "event_amount_cents": order.amount_cents,
            "attribution": attribution,
        }
        yield customer_id, by_email[email], referral, order, line, attribution, inputs


@dataclass(slots=True)
class _Stub:
    """The attributes of an event or a commission that response_body reads, for the COPY writer."""

    public_id: str
    livemode: bool = True
    amount_cents: int = 0
    currency: str = ""
    status: str = ""
    hold_until: datetime | None = None


def _copy_orders(
    *,
    program: Program,
    plan: Plan,
    by_email: dict[str, Affiliate],
    fmt: str,
    source: dict[str, str],
    actor: Actor,
    now: datetime,
    new_referrals: list[Referral],
) -> list[tuple[str, str]]:
    """_write_orders's rows, COPYed from tuples (PostgreSQL, when nobody listens to the audit rows):
    300,000 model instances were most of a 100,000-order import's Python time. Returns the
    `commission.imported` audit rows (object id, encoded data) for the caller to write after the
    others. tests/commissions/test_imports.py pins this writer's rows to _write_orders's."""
    encode = DjangoJSONEncoder().encode
    count = len(plan.orders)
    event_pks = _next_ids(Event, count)
    event_ids = new_public_ids("evt", count)
    commission_ids = new_public_ids("com", count)
    hold = timedelta(days=program.hold_days)
    currency = program.currency
    events: list[tuple] = []
    commissions: list[tuple] = []
    audits: list[tuple[str, str]] = []
    rows = _order_rows(
        program=program, plan=plan, by_email=by_email, fmt=fmt, source=source, new_referrals=new_referrals
    )
    for i, (customer_id, affiliate, referral, order, _line, attribution, inputs) in enumerate(rows):
        pending = order.status == Commission.Status.PENDING
        hold_until = order.occurred_at + hold if pending else order.occurred_at
        event = _Stub(public_id=event_ids[i])
        commission = _Stub(
            public_id=commission_ids[i],
            amount_cents=order.commission_cents,
            currency=currency,
            status=order.status,
            hold_until=hold_until,
        )
        response = response_body(
            event=event, affiliate=affiliate, referral=referral, commissions=[commission]
        )
        events.append(
            (
                event_pks[i],
                event.public_id,
                order.event,
                order.order_id,
                customer_id,
                affiliate.code,
                order.amount_cents,
                order.occurred_at,
                affiliate.pk,
                referral.pk if referral else None,
                attribution,
                encode(response),
            )
        )
        commissions.append(
            (
                commission.public_id,
                affiliate.pk,
                event_pks[i],
                order.commission_cents,
                order.status,
                hold_until,
                encode(inputs),
                order.occurred_at,
                None if pending else order.occurred_at,
                order.paid_at,
            )
        )
        audits.append(
            (
                event.public_id,
                encode(
                    {
                        "commissions": [commission.public_id],
                        "amounts": [order.commission_cents],
                        "status": order.status,
                        **source,
                    }
                ),
            )
        )
    _copy(
        Event,
        ("id", "public_id", "name", "order_id", "customer_id", "referral_code", "amount_cents")
        + ("occurred_at", "affiliate_id", "referral_id", "attribution", "response"),
        events,
        program_id=program.pk,
        livemode=True,
        currency=currency,
        metadata={"imported": source["import"], "format": fmt},
        received_at=now,
        source=EVENT_SOURCE,
    )
    _copy(
        Commission,
        ("public_id", "affiliate_id", "event_id", "amount_cents", "status", "hold_until", "inputs")
        + ("created_at", "approved_at", "paid_at"),
        commissions,
        program_id=program.pk,
        livemode=True,
        rule_id=None,
        kind=Commission.Kind.COMMISSION,
        currency=currency,
    )
    return audits


def _write_orders(
    *,
    program: Program,
    plan: Plan,
    by_email: dict[str, Affiliate],
    fmt: str,
    source: dict[str, str],
    actor: Actor,
    now: datetime,
    audits: list[AuditLog],
    new_referrals: list[Referral],
) -> None:
    hold = timedelta(days=program.hold_days)
    metadata = {"imported": source["import"], "format": fmt}  # one dict for all: encoded once
    events: list[Event] = []
    commissions: list[Commission] = []
    event_ids = new_public_ids("evt", len(plan.orders))
    commission_ids = new_public_ids("com", len(plan.orders))
    rows = _order_rows(
        program=program, plan=plan, by_email=by_email, fmt=fmt, source=source, new_referrals=new_referrals
    )
    for i, (customer_id, affiliate, referral, order, _line, attribution, inputs) in enumerate(rows):
        event = unsaved(
            Event,
            public_id=event_ids[i],
            program=program,
            livemode=True,
            name=order.event,
            order_id=order.order_id,
            customer_id=customer_id,
            referral_code=affiliate.code,
            amount_cents=order.amount_cents,
            currency=program.currency,
            metadata=metadata,
            occurred_at=order.occurred_at,
            received_at=now,
            source=EVENT_SOURCE,
            affiliate=affiliate,
            referral=referral,
            attribution=attribution,
        )
        pending = order.status == Commission.Status.PENDING
        commission = unsaved(
            Commission,
            public_id=commission_ids[i],
            program=program,
            livemode=True,
            affiliate=affiliate,
            rule=None,
            kind=Commission.Kind.COMMISSION,
            amount_cents=order.commission_cents,
            currency=program.currency,
            status=order.status,
            # A pending commission waits out the program's hold from the order's date (already
            # over for an old order: the next approval run approves it); the others are past it.
            hold_until=order.occurred_at + hold if pending else order.occurred_at,
            inputs=inputs,
            created_at=order.occurred_at,
            approved_at=None if pending else order.occurred_at,
            paid_at=order.paid_at,
        )
        # The stored answer a replay of the order id through the events API returns.
        event.response = response_body(
            event=event, affiliate=affiliate, referral=referral, commissions=[commission]
        )
        events.append(event)
        commissions.append(commission)
    _insert(Event, events, now)
    for event, commission in zip(events, commissions, strict=True):
        commission.event_id = event.pk
        audits.append(
            audit_entry(
                actor=actor,
                action="commission.imported",
                obj=event,
                data={
                    "commissions": [commission.public_id],
                    "amounts": [commission.amount_cents],
                    "status": commission.status,
                    **source,
                },
            )
        )
    _insert(Commission, commissions, now)


def import_affiliates(
    *,
    program: Program,
    fmt: str,
    data: bytes | str,
    actor: Actor,
    dry_run: bool = False,
    skip_invalid: bool = False,
    ref_params: Iterable[str] = (),
    filename: str = "",
    now: datetime | None = None,
) -> ImportReport:
    """Import a file into the program, or (dry_run) say what importing it would do.

    Raises ImportFileError when the file cannot be read at all (nothing is written), and
    ImportConflict when a concurrent change of the program collides with a new row (nothing is
    written). With refused rows and no skip_invalid, nothing is written and the report says
    landed=False. Otherwise one transaction writes every accepted row, the program's extra
    parameter names asked for, and one `affiliates.imported` audit row with the counts.
    """
    now = now or timezone.now()
    params = [p for p in dict.fromkeys(p.strip() for p in ref_params) if p]
    for param in params:
        if not PARAM_RE.match(param):
            raise ImportFileError(f"{param!r} is not a URL parameter name (letters, digits, '-' and '_').")
    raw = data.encode() if isinstance(data, str) else data
    digest = hashlib.sha256(raw).hexdigest()
    rows, refused, count = read_rows(fmt, raw, program=program, now=now)
    if dry_run:
        plan = plan_import(program=program, rows=rows, refused=refused, count=count, now=now)
        report = _report(fmt, digest, plan, dry_run=True, landed=False)
        report.ref_params_added = [p for p in params if p not in program.ref_param_names()]
        return report
    try:
        with transaction.atomic():
            # Imports of one program queue here; each plans against what the one before committed.
            locked = Program.objects.select_for_update().get(pk=program.pk)
            plan = plan_import(program=locked, rows=rows, refused=refused, count=count, now=now)
            if plan.refused and not skip_invalid:
                return _report(fmt, digest, plan, dry_run=False, landed=False)
            report = _report(fmt, digest, plan, dry_run=False, landed=True)
            added = [p for p in params if p not in locked.ref_param_names()]
            if added:
                locked = program_update(program=locked, actor=actor, ref_params=[*locked.ref_params, *added])
            report.ref_params_added = added
            written = _write(program=locked, plan=plan, fmt=fmt, digest=digest, actor=actor, now=now)
            summary = audit_entry(
                actor=actor,
                action="affiliates.imported",
                obj=locked,
                data={
                    "format": fmt,
                    "filename": filename[:200],
                    "sha256": digest,
                    "rows": report.rows,
                    "counts": report.counts,
                    "affiliates": report.affiliates,
                    "customers": report.customers,
                    "commissions": report.commissions,
                    "refused_lines": [r.line for r in report.refused][:1000],
                    "skip_invalid": skip_invalid,
                    "ref_params_added": added,
                },
            )
            summary.save()
            audit_announce([*written, summary])
    except IntegrityError as exc:
        raise ImportConflict(
            "An email, code, customer or order of this file was taken by another change while the "
            "import ran. Nothing was imported; import the file again."
        ) from exc
    if plan.new_affiliates:
        # This process may remember a code as unknown for a few seconds; forget that now.
        transaction.on_commit(lookup.clear)
    return report


# --- the panel's stored uploads (upload, preview, confirm) ------------------------------------------

UPLOAD_TTL = timedelta(days=1)


def check_file(fmt: str, data: bytes) -> None:
    """Raise ImportFileError when the file cannot be read as this format (encoding, CSV, header):
    the upload form's check, before anything is stored."""
    if fmt not in FORMATS:
        raise ImportFileError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")
    names, records = _records(decode(data))
    _check_header(fmt, names)
    if next(records, None) is None:
        raise ImportFileError("The file has a header but no rows.")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upload_store(
    *,
    program: Program,
    fmt: str,
    data: bytes,
    filename: str,
    ref_param: str,
    skip_invalid: bool,
    user: Any,
    now: datetime,
) -> str:
    """Keep an uploaded file until it is confirmed; returns the token that names it (shown once,
    in the preview's address). Uploads older than a day are deleted on the way."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        ImportUpload.objects.filter(created_at__lt=now - UPLOAD_TTL).delete()
        ImportUpload.objects.create(
            program=program,
            token_hash=_token_hash(token),
            format=fmt,
            filename=filename[:200],
            content=data,
            sha256=hashlib.sha256(data).hexdigest(),
            ref_param=ref_param,
            skip_invalid=skip_invalid,
            uploaded_by=user if getattr(user, "pk", None) else None,
            created_at=now,
        )
    return token


def upload_for(*, program: Program, token: str, now: datetime) -> ImportUpload | None:
    """The program's stored upload named by this token, unless it has expired."""
    if not token or len(token) > 100:
        return None
    return ImportUpload.objects.filter(
        program=program, token_hash=_token_hash(token), created_at__gte=now - UPLOAD_TTL
    ).first()


def upload_preview(*, upload: ImportUpload) -> ImportReport:
    return import_affiliates(
        program=upload.program,
        fmt=upload.format,
        data=bytes(upload.content),
        actor=Actor.system(),
        dry_run=True,
        skip_invalid=upload.skip_invalid,
        ref_params=[upload.ref_param] if upload.ref_param else [],
    )


def upload_confirm(*, upload: ImportUpload, actor: Actor) -> ImportReport:
    """Import the stored file; when it lands, the upload is deleted in the same transaction. A
    refused file (landed=False) or an error leaves nothing written and the upload in place."""
    data = bytes(upload.content)
    if hashlib.sha256(data).hexdigest() != upload.sha256:
        raise ImportFileError("The stored file does not match what was uploaded. Upload it again.")
    with transaction.atomic():
        report = import_affiliates(
            program=upload.program,
            fmt=upload.format,
            data=data,
            actor=actor,
            skip_invalid=upload.skip_invalid,
            ref_params=[upload.ref_param] if upload.ref_param else [],
            filename=upload.filename,
        )
        if report.landed:
            ImportUpload.objects.filter(pk=upload.pk).delete()
    return report
