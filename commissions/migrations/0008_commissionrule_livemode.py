from django.db import migrations, models


class Migration(migrations.Migration):
    """Test-mode rules: existing rules were all made for live sales and stay live."""

    dependencies = [
        ("affiliates", "0003_livemode"),
        ("commissions", "0007_sent_digest"),
    ]

    operations = [
        migrations.AddField(
            model_name="commissionrule",
            name="livemode",
            field=models.BooleanField(db_default=True, default=True),
        ),
    ]
