"""The audit log: every money-changing or access-changing action, with who did it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import models
from django.dispatch import Signal

from .instances import unsaved


class AuditLog(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # "system", "api:sk_live_ab12…", "user:3", "stripe": who acted even when there is no user row.
    actor_label = models.CharField(max_length=100)
    action = models.CharField(max_length=64)
    program_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["object_type", "object_id"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}:{self.object_id}"


class Actor:
    """Who performs a service call: a staff user, an API key, or the system (scheduled jobs)."""

    def __init__(self, label: str, user: Any = None):
        self.label = label
        self.user = user

    @classmethod
    def system(cls) -> Actor:
        return cls("system")

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(f"user:{user.pk}", user)


# Listeners of the domain's changes (the webhooks app, above every domain app) learn of each audit
# row inside the transaction that writes it, so what they record commits or rolls back with the
# change, and the domain never imports them. A writer that saves audit rows without audit_log
# (bulk_create, one SQL statement) announces them itself. A listener registers a "watched" check:
# a program nobody watches costs one cached check per change and nothing else.
audit_recorded = Signal()  # sender=AuditLog, entries=list[AuditLog] (saved, or announced only)
_watchers: list[Callable[[int], bool]] = []


def watch_programs(is_watched: Callable[[int], bool]) -> None:
    if is_watched not in _watchers:
        _watchers.append(is_watched)


def audit_watched(program_id: int | None) -> bool:
    """Does any listener care about changes of this program? (A writer that must open a
    transaction to let listeners write with it asks first.)"""
    return program_id is not None and any(is_watched(program_id) for is_watched in _watchers)


# A writer that lands a whole change in one SQL statement (commissions.ingest_pg) cannot let a
# listener write in a transaction around it without paying for that transaction: it asks the
# listeners for the rows they would write (`audit_rows`), writes them in its own statement, and
# hands them back with their ids once they are written (`audit_rows_written`). A listener offers
# both through `collect_rows`; the audit rows it is asked about are the ones it would be announced.
_row_sources: list[
    tuple[Callable[[list[AuditLog]], list[models.Model] | None], Callable[[list[models.Model], bool], None]]
] = []


def collect_rows(
    rows_for: Callable[[list[AuditLog]], list[models.Model] | None],
    written: Callable[[list[models.Model], bool], None],
) -> None:
    if all(source[0] is not rows_for for source in _row_sources):
        _row_sources.append((rows_for, written))


def audit_rows(entries: Iterable[AuditLog]) -> list[tuple[int, models.Model]] | None:
    """The unsaved rows the listeners want written with these audit rows, in the writer's own
    statement, each with the index of its listener (for `audit_rows_written`). None when a
    listener cannot say from the announcement alone, or listens without offering rows: the writer
    then opens a transaction and announces (`audit_announce`)."""
    entries = [entry for entry in entries if audit_watched(entry.program_id)]
    if not entries:
        return []
    if len(_row_sources) < len(_watchers):
        return None
    collected: list[tuple[int, models.Model]] = []
    for i, (rows_for, _written) in enumerate(_row_sources):
        rows = rows_for(entries)
        if rows is None:
            return None
        collected.extend((i, row) for row in rows)
    return collected


def audit_rows_written(rows: list[tuple[int, models.Model]], *, committed: bool) -> None:
    """Hand the rows of `audit_rows` back to their listeners, written (their pk set) or not (pk
    None: a condition of the row kept it out); `committed` when the writer's statement was its
    own transaction, rather than part of one still open (the writer knows which)."""
    for i, (_rows_for, written) in enumerate(_row_sources):
        mine = [row for source, row in rows if source == i]
        if mine:
            written(mine, committed)


def audit_announce(entries: Iterable[AuditLog]) -> None:
    """Tell the listeners of these audit rows; call inside the transaction that wrote the change."""
    if not _watchers:
        return
    entries = list(entries)
    programs = {entry.program_id for entry in entries}
    watched_programs = {program_id for program_id in programs if audit_watched(program_id)}
    watched = [entry for entry in entries if entry.program_id in watched_programs]
    if watched:
        audit_recorded.send(sender=AuditLog, entries=watched)


def audit_log(
    *, actor: Actor | None, action: str, obj: models.Model, data: dict[str, Any] | None = None
) -> AuditLog:
    entry = audit_entry(actor=actor, action=action, obj=obj, data=data)
    entry.save()
    audit_announce([entry])
    return entry


def audit_entry(
    *, actor: Actor | None, action: str, obj: models.Model, data: dict[str, Any] | None = None
) -> AuditLog:
    """An unsaved audit row, for writers that save many at once with bulk_create."""
    actor = actor or Actor.system()
    program_id = getattr(obj, "program_id", None)
    if program_id is None and obj._meta.model_name == "program":
        program_id = obj.pk
    return unsaved(
        AuditLog,
        actor=actor.user if getattr(actor.user, "pk", None) else None,
        actor_label=actor.label[:100],
        action=action,
        program_id=program_id,
        object_type=obj._meta.label_lower,
        object_id=str(getattr(obj, "public_id", None) or obj.pk),
        data=data or {},
    )
