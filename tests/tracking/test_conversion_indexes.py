"""Public ids of the conversion tables: unique, by exactly one index each (every index is one more
write per conversion)."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from commissions.models import Commission
from tracking.models import Event, Referral

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
