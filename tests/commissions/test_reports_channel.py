"""Reports split conversions by channel (issue 16, item 5): a /go/ link, the tracker script, a
referral or promotion code, or a customer already bound to the affiliate."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ClickFactory

pytestmark = pytest.mark.django_db


def test_conversions_split_by_link_script_code_and_customer(api_client, staff_client, affiliate, sale_rule):
    now = timezone.now()
    ClickFactory(
        affiliate=affiliate, visitor_id="visitor-link-1", source="link", created_at=now - timedelta(hours=2)
    )
    ClickFactory(
        affiliate=affiliate,
        visitor_id="visitor-script-1",
        source="script",
        created_at=now - timedelta(hours=2),
    )

    def sale(order, **extra):
        body = {"event": "sale", "order_id": order, "amount_cents": 10000, **extra}
        assert api_client.post("/api/v1/events", body).status_code == 201

    sale("L1", visitor_id="visitor-link-1")
    sale("S1", visitor_id="visitor-script-1", customer_id="cus_s")
    sale("C1", coupon_code="JOHN")
    sale("R1", referral_code="JOHN")
    sale("B1", customer_id="cus_s")  # the customer the script's sale bound

    first, last = (now - timedelta(days=1)).date().isoformat(), now.date().isoformat()
    report = api_client.get(f"/api/v1/reports/summary?from={first}&to={last}&group_by=channel").json()
    rows = {row["key"]: row for row in report["data"]}
    assert {k: rows[k]["conversions"] for k in rows} == {"link": 1, "script": 1, "code": 2, "customer": 1}
    assert {k: rows[k]["clicks"] for k in rows} == {"link": 1, "script": 1, "code": 0, "customer": 0}
    assert rows["code"]["commissions"]["pending_cents"] == 4000
    assert rows["customer"]["label"] == "Customer binding"
    assert report["totals"]["conversions"] == 5

    page = staff_client.get("/panel/p/acme/reports/?group_by=channel&range=7")
    assert page.status_code == 200
    assert (
        "Customer binding" in page.content.decode() and "Referral or promotion code" in page.content.decode()
    )
