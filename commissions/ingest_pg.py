"""The PostgreSQL writer of a conversion: one read statement, one write statement.

The ORM writer (`services._event_ingest`) takes about ten statements and as many round trips per
event, and most of its time is spent building queries in Python. Here the same decision (the steps
of `commissions.pipeline`) is taken from two statements:

1. one read that answers, for the event's program, everything the decision needs: the attribution
   (an existing customer referral, then an active affiliate's code, then the visitor's click inside
   the cookie window, in that order; a code or click only of an affiliate of the event's mode), the
   affiliate, the visitor's open referral to reuse, whether
   the affiliate signs in to the portal from the event's or the click's address, and the active
   rules of the event name and mode for that affiliate (an event with no customer id, code or visitor id
   has nothing to attribute it by and skips the read);
2. in Python, `pipeline.conversion_rows` and `pipeline.response_body`, as for the ORM writer,
   choose the scope, apply each rule's limits (reading the referral's history only for a rule that
   asks), compute the amounts, check for self-referral and build the rows and the answer;
3. one write: a single INSERT statement whose data-modifying CTEs add the referral (when new), the
   event with its stored answer, its commissions, the fraud flag and the audit row. One statement is
   one transaction: it lands whole or not at all.

Duplicates and races are left to the unique indexes. When the write is refused (the order is
already known, or a concurrent first event of the same customer created its referral first), the
caller falls back to the ORM path, which answers the stored body or reuses that referral.

The statements run through libpq directly (`refapp.pgdirect`), prepared once per connection.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.operations import get_json_dumps
from psycopg.types.json import Jsonb

from affiliates.models import Affiliate, Program
from refapp.ids import new_public_id
from refapp.instances import unsaved
from refapp.models import (
    Actor,
    AuditLog,
    audit_announce,
    audit_entry,
    audit_rows,
    audit_rows_written,
    audit_watched,
)
from refapp.pgdirect import numbered as _numbered
from refapp.pgdirect import run as _run
from tracking.models import Event, Referral

from .models import CommissionRule
from .pipeline import EventInput, conversion_rows, event_from_input, response_body

# Attribution candidates in the order of docs/architecture.md, "Domain rules"; the smallest `pri` wins. Each read
# holds only the candidates the event can have: a customer id, a code, a visitor id (see _pick).
_CANDIDATES = {
    "customer": """
    (SELECT 1 AS pri, r.affiliate_id, r.id AS referral_id, r.public_id::text AS referral_public_id,
            r.created_at AS referral_created_at, NULL::bigint AS click_id, ''::text AS click_ip
       FROM tracking_referral r
      WHERE r.program_id = %(program)s AND r.livemode = %(livemode)s AND r.customer_id = %(customer)s
      LIMIT 1)""",
    "code": """
    (SELECT 2 AS pri, a.id AS affiliate_id, NULL::bigint AS referral_id, NULL::text AS referral_public_id,
            NULL::timestamptz AS referral_created_at, NULL::bigint AS click_id, ''::text AS click_ip
       FROM affiliates_affiliate a
      WHERE a.program_id = %(program)s AND a.code_key = %(code)s AND a.status = 'active'
        AND a.livemode = %(livemode)s
      LIMIT 1)""",
    "visitor": """
    (SELECT 3 AS pri, c.affiliate_id, NULL::bigint AS referral_id, NULL::text AS referral_public_id,
            NULL::timestamptz AS referral_created_at, c.id AS click_id, c.ip_hash::text AS click_ip
       FROM tracking_click c JOIN affiliates_affiliate a ON a.id = c.affiliate_id
      WHERE c.program_id = %(program)s AND c.visitor_id = %(visitor)s
        AND c.created_at >= %(window_start)s AND c.created_at <= %(window_end)s
        AND a.status = 'active' AND a.livemode = %(livemode)s
      ORDER BY c.created_at {order}, c.id {order}
      LIMIT 1)""",
}
# The visitor's open referral with the chosen affiliate, reused by an event that has no customer id
# and was not attributed by one.
_OPEN_REFERRAL = """
  LEFT JOIN LATERAL (
       SELECT r.id, r.public_id, r.created_at FROM tracking_referral r
        WHERE r.program_id = %(program)s AND r.livemode = %(livemode)s
          AND r.affiliate_id = a.id AND r.visitor_id = %(visitor)s AND r.customer_id IS NULL
        ORDER BY r.id
        LIMIT 1) open_referral ON true"""
_PICK = """
WITH pick AS ({candidates}
)
SELECT pick.pri, pick.affiliate_id, pick.referral_id, pick.referral_public_id,
       pick.referral_created_at, pick.click_id,
       a.public_id, a.code, a.status, a.group_id, a.email_hash,
       {open_columns},
       EXISTS (SELECT 1 FROM affiliates_portalsession s
                WHERE s.affiliate_id = a.id AND s.ip_hash <> ''
                  AND s.ip_hash IN (%(ip)s, pick.click_ip)),
       (SELECT json_agg(json_build_object(
                 'id', r.id, 'public_id', r.public_id, 'type', r.type, 'rate_bp', r.rate_bp,
                 'amount_cents', r.amount_cents, 'group_id', r.group_id,
                 'affiliate_id', r.affiliate_id, 'first_event_only', r.first_event_only,
                 'duration_months', r.duration_months, 'max_events', r.max_events,
                 'tiers', r.tiers) ORDER BY r.id)
          FROM commissions_commissionrule r
         WHERE r.program_id = %(program)s AND r.livemode = %(livemode)s
           AND r.event_name = %(name)s AND r.is_active
           AND (r.affiliate_id IS NULL OR r.affiliate_id = a.id)),
       a.kind
  FROM pick
  JOIN affiliates_affiliate a ON a.id = pick.affiliate_id{open_join}
"""
_PICK_PARAMS = (
    "program",
    "livemode",
    "customer",
    "code",
    "visitor",
    "window_start",
    "window_end",
    "ip",
    "name",
)


def _pick(attribution: str, customer: bool, code: bool, visitor: bool) -> tuple[str, tuple[str, ...]] | None:
    """The read of an event with these inputs, and the names of its parameters in $n order; None
    when the event has nothing to attribute it by. A read holds only the candidates the event can
    have: PostgreSQL starts every node of a plan on each execution, even of a branch that a
    one-time filter then skips (a visitor-only read: 107-137 µs of server CPU with all three
    candidates, 97-125 µs with one)."""
    kinds = [kind for kind, given in (("customer", customer), ("code", code), ("visitor", visitor)) if given]
    if not kinds:
        return None
    order = "ASC" if attribution == Program.Attribution.FIRST_CLICK else "DESC"
    reuse_open = visitor and not customer
    sql = _PICK.format(
        # One candidate is a whole read of one row; several are ranked.
        candidates="\n    UNION ALL".join(_CANDIDATES[kind].format(order=order) for kind in kinds)
        + ("\n    ORDER BY pri\n    LIMIT 1" if len(kinds) > 1 else ""),
        open_columns=(
            "open_referral.id, open_referral.public_id, open_referral.created_at"
            if reuse_open
            else "NULL::bigint, NULL::text, NULL::timestamptz"
        ),
        open_join=_OPEN_REFERRAL if reuse_open else "",
    )
    names = tuple(name for name in _PICK_PARAMS if f"%({name})s" in sql)
    return _numbered(sql, names), names


_picks: dict[tuple[str, bool, bool, bool], tuple[str, tuple[str, ...]] | None] = {}
_METHOD = {1: Event.Attribution.CUSTOMER, 2: Event.Attribution.CODE, 3: Event.Attribution.CLICK}
_RULE_FIELDS = (
    "id",
    "public_id",
    "type",
    "rate_bp",
    "amount_cents",
    "group_id",
    "affiliate_id",
    "first_event_only",
    "duration_months",
    "max_events",
    "tiers",
)


def available() -> bool:
    return connection.vendor == "postgresql" and settings.REFAPP_EVENT_SQL_PATH


def event_ingest_pg(
    *, program: Program, livemode: bool, data: EventInput, actor: Actor, now: datetime
) -> dict[str, Any] | None:
    """Store, attribute and pay one new conversion; None when the write was refused by a unique
    index (a known order, or a racing first event of the same customer), or when the event belongs
    to a customer referrer, which only the ORM writer pays: the caller decides."""
    # The connection of this thread, looked up once: each `connection.x` goes through Django's
    # proxy and a context-local lookup, a dozen times per event otherwise.
    db = connections[DEFAULT_DB_ALIAS]
    event = event_from_input(program=program, livemode=livemode, data=data, now=now)
    occurred_at = event.occurred_at
    values = {
        "program": program.pk,
        "livemode": livemode,
        "customer": data.customer_id,
        "code": data.referral_code.lower(),
        "visitor": data.visitor_id,
        "window_start": occurred_at - timedelta(days=program.cookie_days),
        "window_end": max(occurred_at, now),
        "ip": event.ip_hash,
        "name": event.name,
    }
    shape = (program.attribution_model, bool(data.customer_id), bool(values["code"]), bool(data.visitor_id))
    try:
        pick = _picks[shape]
    except KeyError:
        pick = _picks[shape] = _pick(*shape)
    # Pipeline steps 1 and 2, attribution and referral, are answered by the read.
    row = None if pick is None else _run(db, pick[0], [values[name] for name in pick[1]])

    affiliate = referral = None
    new_referral = None
    commissions: list = []
    extra: list[models.Model] = []
    if row is not None:
        (pri, affiliate_id, referral_id, referral_public_id, referral_created_at, click_id) = row[:6]
        (a_public_id, a_code, a_status, a_group_id, a_email_hash) = row[6:11]
        open_id, open_public_id, open_created_at, ip_seen, rules_json, a_kind = row[11:17]
        if a_kind == Affiliate.Kind.CUSTOMER:
            # A customer referrer's reward counts limits under a row lock (commissions.friends):
            # the ORM writer takes it, so this writer steps aside (the caller falls back to it).
            return None
        method = _METHOD[pri]
        affiliate = unsaved(
            Affiliate,
            id=affiliate_id,
            program=program,
            public_id=a_public_id,
            code=a_code,
            status=a_status,
            group_id=a_group_id,
            email_hash=a_email_hash,
        )
        if referral_id is None and open_id is not None:
            referral_id, referral_public_id, referral_created_at = open_id, open_public_id, open_created_at
        if referral_id is not None:
            referral = unsaved(
                Referral, id=referral_id, public_id=referral_public_id, created_at=referral_created_at
            )
            event.referral_id = referral_id
        else:
            referral = new_referral = unsaved(
                Referral,
                public_id=new_public_id("ref"),
                program=program,
                livemode=livemode,
                affiliate=affiliate,
                customer_id=data.customer_id or None,
                visitor_id=data.visitor_id,
                click_id=click_id,
                method=method,
                created_at=occurred_at,
            )
        event.affiliate = affiliate
        event.click_id = click_id
        event.attribution = method
        if affiliate.is_active:
            # Steps 3 to 7, from the rules and the portal check the read returned.
            commissions, extra = conversion_rows(
                event=event,
                affiliate=affiliate,
                referral=referral,
                rules=_rules(rules_json),
                method=method,
                ip_seen=lambda: ip_seen,
                actor=actor,
                now=now,
            )

    body = response_body(event=event, affiliate=affiliate, referral=referral, commissions=commissions)
    event.response = body
    rows = [*commissions, *extra]
    if not audit_watched(program.pk):
        return body if _write(db, event, new_referral, rows) else None
    # A listener of the program's changes (webhooks) has its rows written by the same statement:
    # told of what the statement writes, as the ORM writer tells it, it answers the rows it wants
    # (refapp.models.audit_rows) and gets them back written.
    announced = [row for row in extra if isinstance(row, AuditLog)]
    if new_referral is not None:
        told = audit_entry(actor=None, action="referral.created", obj=new_referral)
        told.subjects = {new_referral.public_id: new_referral}
        announced.insert(0, told)
    collected = audit_rows(announced)
    if collected is not None:
        if not _write(db, event, new_referral, rows, [row for _listener, row in collected]):
            return None
        audit_rows_written(collected, committed=not db.in_atomic_block)
        return body
    # A listener that must read or write itself: in a transaction around the statement.
    with transaction.atomic(using=db.alias):
        if not _write(db, event, new_referral, rows):
            return None
        audit_announce(announced)
    return body


def _rules(rules_json: list[dict] | None) -> list[CommissionRule]:
    """The rules of the read (psycopg decodes its json column), as unsaved instances."""
    return [
        unsaved(CommissionRule, **{name: item[name] for name in _RULE_FIELDS}) for item in rules_json or []
    ]


def _write(
    db: BaseDatabaseWrapper,
    event: Event,
    new_referral: Referral | None,
    rows: list[models.Model],
    listeners_rows: list[models.Model] = (),
) -> bool:
    """One INSERT statement for the event and every row that depends on it, and the rows listeners
    asked for (each under its model's WRITE_WHEN condition, its pk set when written); False when a
    unique index or a foreign key refused it. A new referral is inserted first and the event points
    at it."""
    inserts = []
    if new_referral is not None:
        inserts.append((new_referral, "ref", {}))
        inserts.append((event, "ev", {"referral_id": "(SELECT id FROM ref)"}))
    else:
        inserts.append((event, "ev", {}))
    inserts.extend((obj, None, _ON_EVENT) for obj in rows)
    inserts.extend((obj, f"l{i}", {}) for i, obj in enumerate(listeners_rows))
    shape = tuple((type(obj), name, tuple(deps)) for obj, name, deps in inserts)
    statement = _statements.get(shape)
    if statement is None:
        statement = _statements[shape] = _statement(inserts)
    sql, readers = statement
    params = [
        read(obj)
        for (obj, _name, _deps), row_readers in zip(inserts, readers, strict=True)
        for read in row_readers
    ]
    atomic = transaction.atomic(using=db.alias) if db.in_atomic_block else nullcontext()
    try:
        with atomic:
            ids = _run(db, sql, params)
    except IntegrityError:
        return False
    event.pk = ids[0]
    for obj, pk in zip(listeners_rows, ids[1:], strict=True):
        obj.pk = pk
        if pk is not None:
            obj._state.adding = False
    return True


_statements: dict[tuple, tuple[str, list[list[Callable[[models.Model], Any]]]]] = {}
# Rows written with the event (commissions, fraud flag, audit row) take its id where they have one.
_ON_EVENT = {"event_id": "(SELECT id FROM ev)"}
# Fields whose database value is the attribute itself (what get_db_prep_save returns for the values
# these models hold: str, int, bool, aware datetimes, ids); any other field is prepared by Django.
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.ForeignKey,
)


def _value_of(field: models.Field) -> Callable[[models.Model], Any]:
    """How to read one column's parameter off an instance, as Model.save() would prepare it."""
    if isinstance(field, models.JSONField):
        # What the PostgreSQL backend's adapt_json_value() returns, its dumps chosen once per field.
        dumps = get_json_dumps(field.encoder)

        def json_value(obj, attname=field.attname, dumps=dumps):
            value = getattr(obj, attname)
            return None if value is None else Jsonb(value, dumps=dumps)

        return json_value
    if isinstance(field, _PLAIN_FIELDS) or (
        isinstance(field, models.DateTimeField) and not (field.auto_now or field.auto_now_add)
    ):
        return attrgetter(field.attname)
    return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), connection)


def _statement(inserts: list[tuple[models.Model, str | None, dict[str, str]]]) -> tuple[str, list]:
    """The INSERT statement of one shape of write, each row a CTE (named, with RETURNING id, when
    later rows point at it), every concrete column prepared as Model.save() would, except the
    columns in deps, which take the id of a row inserted earlier in the same statement; and, per
    row, how to read its parameters off the instance."""
    quote = connection.ops.quote_name
    ctes, readers, listeners = [], [], []
    n = 0
    for i, (obj, name, deps) in enumerate(inserts):
        fields = [f for f in obj._meta.concrete_fields if not f.primary_key]
        values, numbers = [], {}
        for f in fields:
            if f.attname in deps:
                values.append(deps[f.attname])
            else:
                n += 1
                numbers[f.attname] = n
                values.append(f"${n}")
        into = f"INSERT INTO {quote(obj._meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        condition = getattr(type(obj), "WRITE_WHEN", None)
        if condition is None:
            ctes.append(
                f"{name or f'w{i}'} AS ({into} VALUES ({', '.join(values)})"
                + (" RETURNING id)" if name else ")")
            )
        else:
            # INSERT … SELECT … WHERE: typed parameters, as the SELECT list gives them no column.
            attname, flag = condition
            field = obj._meta.get_field(attname.removesuffix("_id"))
            typed = [
                f"{value}::{f.db_type(connection)}" if f.attname in numbers else value
                for f, value in zip(fields, values, strict=True)
            ]
            target = field.remote_field.model._meta
            ctes.append(
                f"{name} AS ({into} SELECT {', '.join(typed)} WHERE EXISTS (SELECT 1 FROM"
                f" {quote(target.db_table)} WHERE {quote(target.pk.column)} = ${numbers[attname]}::"
                f"{field.db_type(connection)} AND {quote(target.get_field(flag).column)}) RETURNING id)"
            )
        if name and name.startswith("l"):
            listeners.append(f"(SELECT id FROM {name})")
        readers.append([_value_of(f) for f in fields if f.attname not in deps])
    return "WITH " + ", ".join(ctes) + " SELECT " + ", ".join(["ev.id", *listeners]) + " FROM ev", readers
