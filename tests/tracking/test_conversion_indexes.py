"""Public ids of the conversion tables: unique, by exactly one index each (every index is one more
write per conversion)."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from commissions.models import Commission
from tracking.models import Click, Event, Referral

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [Event, Referral, Commission])
def test_public_id_has_one_unique_index(model):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    on_public_id = {name: c for name, c in constraints.items() if c["columns"] == ["public_id"]}
    assert len(on_public_id) == 1, sorted(on_public_id)
    assert next(iter(on_public_id.values()))["unique"]


def test_public_id_uniqueness_is_enforced(program):
    now = timezone.now()
    first = Event.objects.create(program=program, name="sale", occurred_at=now, received_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(
            public_id=first.public_id, program=program, name="sale", occurred_at=now, received_at=now
        )


@pytest.mark.parametrize("model", [Click, Event, Referral, Commission])
def test_no_single_column_index_that_a_composite_index_covers(model):
    """An index on one column is redundant where another index leads with that column: the composite
    serves the same lookups (and the foreign key's cascades) and each index is one more write per row."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    indexes = {
        name: c["columns"]
        for name, c in constraints.items()
        if (c["index"] or c["unique"]) and not c["primary_key"] and c["columns"]
    }
    # A partial index covers only the rows of its condition.
    partial = {i.name for i in model._meta.indexes if i.condition is not None} | {
        c.name for c in model._meta.constraints if getattr(c, "condition", None) is not None
    }
    covering = {name: cols for name, cols in indexes.items() if len(cols) > 1 and name not in partial}
    redundant = sorted(
        name
        for name, columns in indexes.items()
        if len(columns) == 1
        and not constraints[name]["unique"]
        and any(cols[0] == columns[0] for cols in covering.values())
    )
    assert redundant == []
