"""The scale seed's bulk load drops the click table's secondary indexes and rebuilds them: on a
partitioned table, over every partition (bench/scale.py IndexesOff)."""

import os

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="clicks are partitioned on PostgreSQL",
    ),
]


def _indexes_by_partition(cursor):
    cursor.execute(
        "SELECT c.relname, count(x.indexrelid) FILTER (WHERE NOT x.indisprimary)"
        " FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid"
        " LEFT JOIN pg_index x ON x.indrelid = c.oid"
        " WHERE h.inhparent = 'tracking_click'::regclass GROUP BY c.relname"
    )
    return dict(cursor.fetchall())


def test_indexes_are_rebuilt_on_every_partition_and_valid():
    from bench.scale import IndexesOff

    with connection.cursor() as cursor:
        before = _indexes_by_partition(cursor)
        assert before and all(n > 0 for n in before.values())
        with IndexesOff(cursor, ["tracking_click"]) as off:
            assert off.saved
            assert all(n == 0 for n in _indexes_by_partition(cursor).values())
        assert _indexes_by_partition(cursor) == before
        cursor.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'tracking_click'::regclass AND NOT indisvalid"
        )
        assert cursor.fetchone()[0] == 0
