"""BRIN on clicks.created_at, PostgreSQL only: clicks arrive in time order, so a BRIN index answers
date-range scans for a few kilobytes where a B-tree over ten million rows would cost hundreds of MB.
SQLite has no BRIN; its date-range reads go through the per-affiliate index instead."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS click_created_brin ON tracking_click USING brin (created_at)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS click_created_brin")


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
