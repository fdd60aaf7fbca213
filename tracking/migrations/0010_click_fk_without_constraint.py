"""Event.click and Referral.click keep the id, without a database foreign key: on PostgreSQL clicks
become partitioned by month (0011), and a foreign key to a partitioned table needs its whole primary
key (id, created_at).

Only PostgreSQL drops the constraints. On SQLite an altered foreign key means rebuilding the table,
which would drop the conversion-rollup triggers on tracking_event (commissions 0006); SQLite keeps
one plain clicks table, so its constraint may stay.
"""

import django.db.models.deletion
from django.db import migrations, models


def drop_constraints(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in ("Event", "Referral"):
        model = apps.get_model("tracking", name)
        for constraint in schema_editor._constraint_names(model, ["click_id"], foreign_key=True):
            schema_editor.execute(
                schema_editor._delete_constraint_sql(schema_editor.sql_delete_fk, model, constraint)
            )


class Migration(migrations.Migration):
    dependencies = [("tracking", "0009_click_indexes_covered_by_composites")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_constraints, migrations.RunPython.noop)],
            state_operations=[
                migrations.AlterField(
                    model_name=model_name,
                    name="click",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="tracking.click",
                    ),
                )
                for model_name in ("event", "referral")
            ],
        )
    ]
