"""The PayPal bulk payout file is opened in spreadsheets: no cell of it may run as a formula."""

import csv
import io

from django.utils import timezone

from payouts.services import payouts_create
from tests.factories import AffiliateFactory


def test_a_formula_in_a_paypal_email_is_neutralised_in_the_export(
    staff_client, program, approved, fake_stripe
):
    # Stored before the address was validated (or written around the form): the export must hold.
    evil = AffiliateFactory(
        program=program, code="EVIL", name="Evil", payout_method="paypal", paypal_email="=1+1@csv.example"
    )
    approved(evil, 7000)
    [payout] = payouts_create(program=program, now=timezone.now())
    program.name = "@SUM(A1)"
    program.save(update_fields=["name"])
    response = staff_client.get("/panel/p/acme/payouts/export.csv?status=pending")
    assert response.status_code == 200
    [row] = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert row[0] == "'=1+1@csv.example" and row[1] == "70.00" and row[3] == payout.public_id
    assert row[4] == f"'@SUM(A1) affiliate payout {payout.period}"
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
