from django.db import migrations, models


class Migration(migrations.Migration):
    """Refund ids are unique per order, not per program: merchants number refunds per order.

    The new index is built before the old one is dropped, so no moment is without one; every row
    unique under the old key is unique under the new, wider one.
    """

    dependencies = [
        ("commissions", "0008_commissionrule_livemode"),
        ("tracking", "0009_click_indexes_covered_by_composites"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="refund",
            constraint=models.UniqueConstraint(
                condition=models.Q(("refund_id__isnull", False)),
                fields=("program", "livemode", "event", "refund_id"),
                name="refund_unique_id_per_order",
            ),
        ),
        migrations.RemoveConstraint(model_name="refund", name="refund_unique_id"),
    ]
