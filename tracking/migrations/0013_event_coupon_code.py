from django.db import migrations, models

# One ALTER TABLE … ADD COLUMN on both engines. Django's AddField rebuilds the table on SQLite (a
# column with a database default), and the rebuild drops the triggers that keep the conversion
# rollups (commissions/migrations/0006_conversion_rollups.py). PostgreSQL adds a column with a
# constant default without rewriting the table.
ADD_COLUMN = "ALTER TABLE tracking_event ADD COLUMN coupon_code varchar(64) DEFAULT '' NOT NULL"


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0012_dropped_click_daily"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(ADD_COLUMN, "ALTER TABLE tracking_event DROP COLUMN coupon_code"),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="event",
                    name="coupon_code",
                    field=models.CharField(blank=True, default="", db_default="", max_length=64),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="event",
            name="attribution",
            field=models.CharField(
                choices=[
                    ("customer", "Existing referred customer"),
                    ("code", "Referral code"),
                    ("coupon", "Promotion code"),
                    ("click", "Visitor click"),
                    ("none", "Not attributed"),
                ],
                default="none",
                max_length=10,
            ),
        ),
    ]
