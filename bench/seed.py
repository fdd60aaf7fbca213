"""Seed data for the load benchmark: one program, N active affiliates, a sale rule, a live key, K clicks.

Run by bench/run.py against the freshly created bench database:

    DJANGO_SETTINGS_MODULE=refapp.settings DATABASE_URL=... python bench/seed.py \
        --affiliates 1000 --clicks 100000 --out-dir var/bench/refapp_bench

It prints one JSON object on stdout: the program, the live secret key, the files holding the
affiliate codes and the visitor ids that have a click (the wrk script reads both), the table
names the runner counts rows in, and the time taken. Affiliates and clicks are written in bulk
(COPY on PostgreSQL), so 100 000 clicks take a few seconds.

`seed()` is importable (the smoke test calls it inside a test database, on SQLite or PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

BATCH = 5000
CODE_FORMAT = "Bench{:06d}"  # mixed case on purpose: codes match case-insensitively
VISITOR_FORMAT = "seedv{:010d}"


def _affiliates(program, count: int, now) -> list[int]:
    from affiliates.models import Affiliate
    from refapp.hashing import email_hash
    from refapp.ids import new_public_id

    ids: list[int] = []
    for start in range(0, count, BATCH):
        batch = []
        for i in range(start + 1, min(start + BATCH, count) + 1):
            code = CODE_FORMAT.format(i)
            email = f"affiliate{i}@bench.example"
            # bulk_create skips Affiliate.save(), which fills these three fields.
            batch.append(
                Affiliate(
                    program=program,
                    public_id=new_public_id("aff"),
                    email=email,
                    email_hash=email_hash(email),
                    name=f"Bench affiliate {i}",
                    code=code,
                    code_key=code.lower(),
                    status=Affiliate.Status.ACTIVE,
                    approved_at=now,
                )
            )
        Affiliate.objects.bulk_create(batch, batch_size=1000)
    # bulk_create returns primary keys on PostgreSQL but not on every engine: read them back.
    ids = list(Affiliate.objects.filter(program=program).order_by("code_key").values_list("pk", flat=True))
    return ids


def _click_rows(program_id: int, affiliate_ids: list[int], count: int, now):
    """Rows for the clicks table as (column -> value) dicts, oldest first, within the last day."""
    for i in range(count):
        yield {
            "program_id": program_id,
            "affiliate_id": affiliate_ids[i % len(affiliate_ids)],
            "visitor_id": VISITOR_FORMAT.format(i),
            "created_at": now - timedelta(seconds=(count - i) % 86_400 + 60),
            "landing_url": "https://bench.example/?ref=seed",
            "user_agent": "Mozilla/5.0 (seed)",
            "source": "script",
        }


def _clicks(program, affiliate_ids: list[int], count: int, now) -> None:
    from django.db import connection

    from tracking.models import Click

    if count <= 0 or not affiliate_ids:
        return
    fields = [f for f in Click._meta.concrete_fields if not f.primary_key]
    rows = _click_rows(program.pk, affiliate_ids, count, now)
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        sql = f"COPY {quote(Click._meta.db_table)} ({columns}) FROM STDIN"
        # Columns the generator leaves out take the model default ("" for text), as the ORM would.
        defaults = {f.attname: f.get_default() for f in fields}
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row([row.get(f.attname, defaults[f.attname]) for f in fields])
        return
    batch = []
    for row in rows:
        batch.append(Click(**row))
        if len(batch) >= BATCH:
            Click.objects.bulk_create(batch, batch_size=1000)
            batch = []
    if batch:
        Click.objects.bulk_create(batch, batch_size=1000)


def seed(*, affiliates: int, clicks: int, out_dir: Path, slug: str = "bench") -> dict:
    """Create the benchmark program and its data; return what the runner needs (including the secret)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from affiliates.services import apikey_create, program_create
    from commissions.models import Commission
    from commissions.rules import rule_create
    from tracking.models import Click, Event

    if affiliates < 1:
        raise ValueError("at least one affiliate is needed")
    started = time.monotonic()
    now = timezone.now()
    out_dir.mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        program = program_create(slug=slug, name="Bench", website="https://bench.example", currency="USD")
        affiliate_ids = _affiliates(program, affiliates, now)
        rule_create(program=program, event_name="sale", type="percent", rate_bp=2000)
        _key, secret = apikey_create(program=program, mode="live")
        _clicks(program, affiliate_ids, clicks, now)

    codes_file = out_dir / "codes.txt"
    visitors_file = out_dir / "visitors.txt"
    codes_file.write_text("".join(CODE_FORMAT.format(i) + "\n" for i in range(1, affiliates + 1)))
    visitors_file.write_text("".join(VISITOR_FORMAT.format(i) + "\n" for i in range(clicks)))
    return {
        "program": slug,
        "program_id": program.pk,
        "affiliates": len(affiliate_ids),
        "clicks": clicks,
        "secret": secret,
        "codes_file": str(codes_file),
        "visitors_file": str(visitors_file),
        "tables": {
            "click": Click._meta.db_table,
            "event": Event._meta.db_table,
            "commission": Commission._meta.db_table,
        },
        "engine": connection.vendor,
        "seconds": round(time.monotonic() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--affiliates", type=int, default=1000)
    parser.add_argument("--clicks", type=int, default=100_000)
    parser.add_argument("--slug", default="bench")
    parser.add_argument("--out-dir", type=Path, required=True, help="where codes.txt and visitors.txt go")
    args = parser.parse_args(argv)

    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refapp.settings")
    import django

    django.setup()
    result = seed(affiliates=args.affiliates, clicks=args.clicks, out_dir=args.out_dir, slug=args.slug)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
