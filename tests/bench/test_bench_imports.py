"""bench/imports.py kept from rotting: its files import through the service and its checks hold, at
a small size, in the test database (the real run recreates its own database: `make bench`)."""

import pytest

from bench import imports as bench_imports

pytestmark = pytest.mark.django_db


def test_the_import_bench_runs_its_checks_on_small_files():
    results = bench_imports.inside(60)

    for fmt in ("rewardful", "refapp"):
        section = results[fmt]
        assert section["rows"] == 60 and section["import_seconds"] >= 0
        assert all(section["checks"].values()), (fmt, section["checks"])
    assert results["rewardful"]["written"]["affiliates"] == 30
    assert results["refapp"]["written"]["commissions"] == 60
