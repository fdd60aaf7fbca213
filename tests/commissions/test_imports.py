"""Importing affiliates from Rewardful, FirstPromoter and refapp files (commissions/imports.py) and
the import_affiliates command."""

import csv
import io
import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from affiliates.models import Affiliate, Program
from commissions.imports import ImportFileError, import_affiliates
from commissions.models import Commission
from commissions.services import balances
from payouts.exports import wise_payouts, wise_rows
from payouts.models import Payout
from payouts.services import payouts_create
from refapp.models import Actor, AuditLog
from tests.factories import AffiliateFactory, CommissionFactory, CommissionRuleFactory, ReferralFactory
from tests.fakestripe import build_invoice, sign_payload
from tracking.models import Event, Referral

pytestmark = pytest.mark.django_db

ACTOR = Actor("test")
REWARDFUL_HEADER = [
    "stripe_customer_id",
    "first_name",
    "last_name",
    "email",
    "paypal_email",
    "wise_email",
    "token",
]
WEBHOOK_SECRET = "whsec_import_test"


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def rewardful_rows(n: int) -> list[list[str]]:
    """n rows: affiliates with one to three customers each, every fifth affiliate without customers."""
    rows = []
    affiliate = 0
    while len(rows) < n:
        affiliate += 1
        email = f"partner{affiliate}@aff.example"
        paypal = f"pp{affiliate}@pay.example" if affiliate % 3 == 0 else ""
        customers = 0 if affiliate % 5 == 0 else 1 + affiliate % 3
        for c in range(max(customers, 1)):
            customer = f"cus_{affiliate}_{c}" if customers else ""
            rows.append(
                [customer, f"First{affiliate}", f"Last{affiliate}", email, paypal, "", f"tok-{affiliate}"]
            )
            if len(rows) == n:
                break
    return rows


def counts() -> dict[str, int]:
    return {
        "affiliates": Affiliate.objects.count(),
        "referrals": Referral.objects.count(),
        "events": Event.objects.count(),
        "commissions": Commission.objects.count(),
        "audit": AuditLog.objects.count(),
    }


def run(program, fmt, text, **kwargs):
    return import_affiliates(program=program, fmt=fmt, data=text.encode(), actor=ACTOR, **kwargs)


def signed_invoice_paid(client: Client, *, customer: str, amount: int, invoice_id: str):
    invoice = build_invoice(customer=customer, amount_paid=amount, id=invoice_id, currency="usd")
    payload = json.dumps(
        {
            "id": f"evt_{invoice_id}",
            "object": "event",
            "type": "invoice.paid",
            "livemode": True,
            "created": int(time.time()),
            "data": {"object": invoice},
        }
    ).encode()
    return client.post(
        "/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload, WEBHOOK_SECRET),
    )


# --- Rewardful ----------------------------------------------------------------------------------------


def test_rewardful_file_of_1000_rows_lands_affiliates_tokens_and_customers(program, settings):
    rows = rewardful_rows(1000)
    report = run(program, "rewardful", csv_text(REWARDFUL_HEADER, rows))

    assert report.landed and report.rows == 1000 and report.counts["refused"] == 0
    emails = {r[3] for r in rows}
    customers = {r[0] for r in rows if r[0]}
    assert report.affiliates["new"] == len(emails) == Affiliate.objects.filter(program=program).count()
    assert report.customers["new"] == len(customers) == Referral.objects.filter(program=program).count()
    # Tokens kept, customers bound to the affiliate their row names, PayPal set where given.
    partner3 = Affiliate.objects.get(program=program, email="partner3@aff.example")
    assert partner3.code == "tok-3" and partner3.name == "First3 Last3" and partner3.status == "active"
    assert partner3.payout_method == "paypal" and partner3.paypal_email == "pp3@pay.example"
    assert set(Referral.objects.filter(affiliate=partner3).values_list("customer_id", flat=True)) == {
        "cus_3_0"
    } | ({"cus_3_1"} if "cus_3_1" in customers else set())
    assert Referral.objects.get(customer_id="cus_1_0").affiliate.email == "partner1@aff.example"
    # One audit row per import with its counts, plus one per affiliate created.
    summary = AuditLog.objects.get(action="affiliates.imported")
    assert summary.program_id == program.pk and summary.actor_label == "test"
    assert summary.data["counts"] == report.counts and summary.data["rows"] == 1000
    assert AuditLog.objects.filter(action="affiliate.created").count() == len(emails)


def test_invoice_paid_for_an_imported_customer_pays_the_imported_affiliate(program, settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=2000)
    AffiliateFactory(program=program, email="someone@else.example", code="OTHER")
    run(program, "rewardful", csv_text(REWARDFUL_HEADER, rewardful_rows(1000)))

    response = signed_invoice_paid(Client(), customer="cus_7_1", amount=4900, invoice_id="in_import_1")

    assert response.status_code == 200, response.content
    event = Event.objects.get(order_id="in_import_1")
    assert event.affiliate.email == "partner7@aff.example" and event.attribution == "customer"
    commission = Commission.objects.get(event=event)
    assert commission.affiliate.code == "tok-7" and commission.amount_cents == 980
    assert commission.status == "pending"


def test_importing_the_same_file_twice_changes_nothing(program):
    text = csv_text(REWARDFUL_HEADER, rewardful_rows(1000))
    first = run(program, "rewardful", text)
    before = counts()
    codes = dict(Affiliate.objects.values_list("email", "code"))

    again = run(program, "rewardful", text)

    assert first.counts["new"] > 0
    assert again.landed and again.counts == {"new": 0, "updated": 0, "unchanged": 1000, "refused": 0}
    assert again.affiliates["new"] == again.customers["new"] == 0
    # Nothing but the second import's own audit row.
    assert counts() == {**before, "audit": before["audit"] + 1}
    assert dict(Affiliate.objects.values_list("email", "code")) == codes


def test_a_bad_email_on_line_7_refuses_the_whole_file_naming_the_line(program):
    rows = rewardful_rows(20)
    rows[5][3] = "not-an-email"  # data row 6 is line 7 (the header is line 1)

    report = run(program, "rewardful", csv_text(REWARDFUL_HEADER, rows))

    assert not report.landed
    assert [(r.line, "not-an-email" in r.reason) for r in report.refused] == [(7, True)]
    assert counts() == {"affiliates": 0, "referrals": 0, "events": 0, "commissions": 0, "audit": 0}


def test_skip_invalid_lands_every_valid_row_and_lists_the_rest(program):
    rows = rewardful_rows(20)
    rows[5][3] = "not-an-email"
    rows[9][6] = "bad token!"

    report = run(program, "rewardful", csv_text(REWARDFUL_HEADER, rows), skip_invalid=True)

    assert report.landed and [r.line for r in report.refused] == [7, 11]
    assert report.counts["refused"] == 2 and report.counts["new"] + report.counts["unchanged"] == 18
    assert Referral.objects.filter(customer_id=rows[5][0]).count() == 0
    assert Referral.objects.filter(customer_id=rows[6][0]).exists()


def test_rows_that_contradict_refapp_or_each_other_are_refused_with_reasons(program):
    taken = AffiliateFactory(program=program, email="taken@aff.example", code="taken")
    ReferralFactory(program=program, affiliate=taken, customer_id="cus_bound")
    rows = [
        ["", "A", "A", "a@aff.example", "", "", "TAKEN"],  # line 2: another affiliate's code
        ["cus_bound", "B", "B", "b@aff.example", "", "", "bee"],  # line 3: customer of another
        ["", "C", "C", "c@aff.example", "", "", "cee"],  # line 4: fine
        ["", "D", "D", "d@aff.example", "", "", "cee"],  # line 5: token of line 4
        ["", "Cx", "C", "c@aff.example", "", "", "cee"],  # line 6: name differs from line 4
        ["", "T", "T", "taken@aff.example", "", "", "other"],  # line 7: existing affiliate, other code
    ]
    report = run(program, "rewardful", csv_text(REWARDFUL_HEADER, rows), dry_run=True)

    reasons = {r.line: r.reason for r in report.refused}
    assert sorted(reasons) == [2, 3, 5, 6, 7]
    assert "already the code of taken@aff.example" in reasons[2]
    assert "already referred by taken@aff.example" in reasons[3]
    assert "line 4" in reasons[5] and "line 4" in reasons[6]
    assert "already has the code 'taken'" in reasons[7]


def test_an_empty_token_gets_a_code_from_the_first_name_and_keeps_it_on_reimport(program):
    text = csv_text(REWARDFUL_HEADER, [["cus_1", "Ana", "Lima", "ana@aff.example", "", "", ""]])
    run(program, "rewardful", text)
    code = Affiliate.objects.get(email="ana@aff.example").code
    assert code == "ana"
    again = run(program, "rewardful", text)
    assert again.counts["unchanged"] == 1 and Affiliate.objects.get(email="ana@aff.example").code == code


def test_a_changed_name_or_paypal_email_updates_the_affiliate_with_an_audit_row(
    program, django_capture_on_commit_callbacks
):
    AffiliateFactory(program=program, email="ana@aff.example", code="ana", name="Ana")
    text = csv_text(REWARDFUL_HEADER, [["", "Ana", "Lima", "ana@aff.example", "ana@pay.example", "", "ana"]])

    with django_capture_on_commit_callbacks(execute=True):
        report = run(program, "rewardful", text)

    assert report.counts["updated"] == 1 and report.affiliates["updated"] == 1
    ana = Affiliate.objects.get(email="ana@aff.example")
    assert (ana.name, ana.paypal_email, ana.payout_method) == ("Ana Lima", "ana@pay.example", "paypal")
    audit = AuditLog.objects.get(action="affiliate.updated")
    assert audit.data["name"] == {"from": "Ana", "to": "Ana Lima"}
    assert audit.data["paypal_email"] == {"from": "", "to": "ana@pay.example"}
    assert audit.data["payout_method"] == {"from": "", "to": "paypal"}
    [email] = mail.outbox
    assert email.to == ["ana@aff.example"] and "now go by PayPal to ana@pay.example" in email.body


def test_rewardful_wise_emails_create_affiliates_paid_by_wise(program):
    rows = [
        ["cus_w1", "Wes", "Ise", "wes@aff.example", "", "Wes@Wise.example", "wes"],
        ["cus_w2", "Wes", "Ise", "wes@aff.example", "", "", "wes"],  # the address on one row is enough
        ["", "Bo", "Th", "both@aff.example", "both@pay.example", "both@wise.example", "both"],
        ["", "La", "Te", "late@aff.example", "", "", "late"],
        ["", "La", "Te", "late@aff.example", "", "late@wise.example", "late"],  # a later row adds it
        ["", "Pa", "Wi", "pw@aff.example", "", "pw@wise.example", "pw"],
        ["", "Pa", "Wi", "pw@aff.example", "pw@pay.example", "", "pw"],  # PayPal wins in any order
    ]

    preview = run(program, "rewardful", csv_text(REWARDFUL_HEADER, rows), dry_run=True)
    report = run(program, "rewardful", csv_text(REWARDFUL_HEADER, rows))

    assert preview.notes == report.notes == []  # no more "checked but not imported"
    assert report.landed and report.affiliates["new"] == 4 and report.counts["refused"] == 0
    stored = {
        a.email: (a.payout_method, a.wise_email, a.paypal_email)
        for a in Affiliate.objects.filter(program=program)
    }
    assert stored == {
        "wes@aff.example": ("wise", "wes@wise.example", ""),
        "both@aff.example": ("paypal", "both@wise.example", "both@pay.example"),
        "late@aff.example": ("wise", "late@wise.example", ""),
        "pw@aff.example": ("paypal", "pw@wise.example", "pw@pay.example"),
    }


def test_a_second_row_with_another_wise_email_is_refused_naming_the_first_line(program):
    rows = [
        ["cus_1", "Wes", "Ise", "wes@aff.example", "", "wes@wise.example", "wes"],
        ["cus_2", "Wes", "Ise", "wes@aff.example", "", "", "wes"],
        ["cus_3", "Wes", "Ise", "wes@aff.example", "", "other@wise.example", "wes"],
    ]

    report = run(program, "rewardful", csv_text(REWARDFUL_HEADER, rows))

    assert not report.landed
    assert [(r.line, r.reason) for r in report.refused] == [(4, "wise_email differs from line 2")]
    assert counts() == {"affiliates": 0, "referrals": 0, "events": 0, "commissions": 0, "audit": 0}


def test_a_file_with_wise_emails_imported_twice_changes_nothing(program):
    rows = rewardful_rows(300)
    for row in rows:
        n = int(row[3].removeprefix("partner").split("@")[0])
        if n % 2 == 0:
            row[5] = f"wise{n}@wise.example"  # some with PayPal too (n % 3 == 0), some Wise only
    text = csv_text(REWARDFUL_HEADER, rows)
    first = run(program, "rewardful", text)
    before = counts()
    stored = set(Affiliate.objects.values_list("email", "payout_method", "paypal_email", "wise_email"))
    assert ("partner2@aff.example", "wise", "", "wise2@wise.example") in stored
    assert ("partner6@aff.example", "paypal", "pp6@pay.example", "wise6@wise.example") in stored

    again = run(program, "rewardful", text)

    assert first.landed and again.landed
    assert again.counts == {"new": 0, "updated": 0, "unchanged": 300, "refused": 0}
    assert again.affiliates == {"new": 0, "updated": 0, "unchanged": first.affiliates["new"]}
    assert counts() == {**before, "audit": before["audit"] + 1}
    assert (
        set(Affiliate.objects.values_list("email", "payout_method", "paypal_email", "wise_email")) == stored
    )


def test_a_changed_wise_email_updates_the_affiliate_with_an_audit_row_and_an_email(
    program, django_capture_on_commit_callbacks
):
    AffiliateFactory(program=program, email="wes@aff.example", code="wes", name="Wes Ise")
    wise = AffiliateFactory(program=program, email="w2@aff.example", code="w2", name="W Two")
    Affiliate.objects.filter(pk=wise.pk).update(payout_method="wise", wise_email="old@wise.example")
    stripe = AffiliateFactory(program=program, email="st@aff.example", code="st", name="S T")
    Affiliate.objects.filter(pk=stripe.pk).update(payout_method="stripe", stripe_account_id="acct_1")
    text = csv_text(
        REWARDFUL_HEADER,
        [
            ["", "Wes", "Ise", "wes@aff.example", "", "wes@wise.example", "wes"],  # none yet: Wise
            ["", "W", "Two", "w2@aff.example", "", "new@wise.example", "w2"],  # Wise: new address
            ["", "S", "T", "st@aff.example", "", "st@wise.example", "st"],  # Stripe: left alone
        ],
    )

    with django_capture_on_commit_callbacks(execute=True):
        preview = run(program, "rewardful", text, dry_run=True)
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        report = run(program, "rewardful", text)

    for r in (preview, report):
        assert r.counts == {"new": 0, "updated": 2, "unchanged": 1, "refused": 0}
        assert r.affiliates == {"new": 0, "updated": 2, "unchanged": 1}
        assert r.notes == [
            "2 affiliates already in refapp get new payout details; each is emailed when the import lands."
        ]
    # Told where their money now goes, as when they change it in the portal.
    emails = {m.to[0]: m for m in mail.outbox}
    assert sorted(emails) == ["w2@aff.example", "wes@aff.example"]
    assert emails["wes@aff.example"].subject == "Your Acme payout details were changed"
    assert "now go by Wise to wes@wise.example" in emails["wes@aff.example"].body
    assert "now go by Wise to new@wise.example" in emails["w2@aff.example"].body
    assert set(Affiliate.objects.values_list("email", "payout_method", "wise_email")) == {
        ("wes@aff.example", "wise", "wes@wise.example"),
        ("w2@aff.example", "wise", "new@wise.example"),
        ("st@aff.example", "stripe", ""),
    }
    audits = {a.object_id: a.data for a in AuditLog.objects.filter(action="affiliate.updated")}
    wes = Affiliate.objects.get(email="wes@aff.example")
    assert audits[wes.public_id]["wise_email"] == {"from": "", "to": "wes@wise.example"}
    assert audits[wes.public_id]["payout_method"] == {"from": "", "to": "wise"}
    assert audits[wise.public_id]["wise_email"] == {"from": "old@wise.example", "to": "new@wise.example"}
    assert "payout_method" not in audits[wise.public_id] and stripe.public_id not in audits
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = run(program, "rewardful", text)
    assert again.counts["unchanged"] == 3 and again.notes == [] and mail.outbox == []


def test_an_imported_wise_affiliate_is_in_the_wise_batch_file_of_the_next_run(program):
    run(
        program,
        "rewardful",
        csv_text(REWARDFUL_HEADER, [["", "Wes", "Ise", "wes@aff.example", "", "wes@wise.example", "wes"]]),
    )
    wes = Affiliate.objects.get(email="wes@aff.example")
    now = timezone.now()
    CommissionFactory(
        affiliate=wes,
        amount_cents=5_000,
        status="approved",
        created_at=now - timedelta(days=40),
        hold_until=now - timedelta(days=10),
        approved_at=now,
    )

    (payout,) = payouts_create(program=program, now=now, actor=ACTOR)

    assert (payout.method, payout.destination) == ("wise", "wes@wise.example")
    (row,) = wise_rows(wise_payouts(program, "pending"))
    assert row[:2] == ["Wes Ise", "wes@wise.example"] and str(row[5]) == "50.00"


def test_imported_tokens_keep_via_links_and_go_links_working(program):
    text = csv_text(REWARDFUL_HEADER, [["", "Jo", "Bo", "jo@aff.example", "", "", "jb007"]])

    report = run(program, "rewardful", text, ref_params=["via"])

    assert report.ref_params_added == ["via"]
    program.refresh_from_db()
    assert program.ref_param_names() == ["ref", "via"]
    assert AuditLog.objects.filter(action="program.updated", program_id=program.pk).exists()
    response = Client().get("/go/acme/jb007", HTTP_USER_AGENT="Mozilla/5.0")
    assert response.status_code == 302 and "ref=jb007" in response["Location"]
    click = Client().post(
        "/api/v1/track/click",
        data=json.dumps({"program": "acme", "ref": "jb007", "url": "https://acme.example/?via=jb007"}),
        content_type="application/json",
        HTTP_USER_AGENT="Mozilla/5.0",
    )
    assert click.status_code == 202 and click.json()["attributed"] is True
    # Asked again, nothing more is added.
    assert run(program, "rewardful", text, ref_params=["via"]).ref_params_added == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfeb\x00a\x00d\x00", "not UTF-8"),
        (b"", "empty"),
        (b"email,first_name,last_name\n", "no rows"),
        (b"mail,first,last\nx@y.example,a,b\n", "missing columns email, first_name, last_name"),
        (b"email,first_name,last_name,code\nx@y.example,a,b,c\n", "unknown column code"),
        (b"email,email,first_name,last_name\n", "named twice"),
        (b"email,first_name,last_name\nx@y.example,a\x00,b\n", "NUL"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(program, content, message):
    with pytest.raises(ImportFileError, match=message):
        import_affiliates(program=program, fmt="rewardful", data=content, actor=ACTOR)
    assert counts()["affiliates"] == 0


def test_a_byte_order_mark_and_spreadsheet_headers_are_accepted(program):
    text = "\ufeffStripe Customer ID,First Name,Last Name,Email,PayPal Email,Wise Email,Token\ncus_9,Al,Ba,al@aff.example,,,al9\n"
    report = import_affiliates(program=program, fmt="rewardful", data=text.encode(), actor=ACTOR)
    assert report.landed and Referral.objects.get(customer_id="cus_9").affiliate.code == "al9"


# --- FirstPromoter --------------------------------------------------------------------------------------


def test_a_firstpromoter_export_lands(program):
    header = [
        "ID",
        "Email",
        "First name",
        "Last name",
        "Ref ID",
        "Referral link",
        "PayPal email",
        "Status",
        "Earnings",
    ]
    rows = [
        [
            "1",
            "Fay@Promo.example",
            "Fay",
            "Ng",
            "fayng",
            "https://acme.example/?fpr=fayng",
            "fay@pay.example",
            "approved",
            "10",
        ],
        ["2", "gus@promo.example", "", "", "", "https://acme.example/?fpr=gus42", "", "pending", "0"],
        ["3", "hal@promo.example", "Hal", "", "hal", "", "", "denied", "0"],
    ]

    report = run(program, "firstpromoter", csv_text(header, rows), ref_params=["fpr"])

    assert report.landed and report.affiliates["new"] == 3
    fay = Affiliate.objects.get(email="fay@promo.example")
    assert (fay.code, fay.name, fay.status, fay.paypal_email) == (
        "fayng",
        "Fay Ng",
        "active",
        "fay@pay.example",
    )
    gus = Affiliate.objects.get(email="gus@promo.example")
    assert (gus.code, gus.name, gus.status) == ("gus42", "gus", "pending")
    assert Affiliate.objects.get(email="hal@promo.example").status == "rejected"
    program.refresh_from_db()
    assert "fpr" in program.ref_params
    assert run(program, "firstpromoter", csv_text(header, rows)).counts["unchanged"] == 3


def test_a_file_without_an_email_column_is_not_a_firstpromoter_export(program):
    with pytest.raises(ImportFileError, match="not a FirstPromoter"):
        run(program, "firstpromoter", "name,ref_id\nA,b\n")


# --- refapp: affiliates, customers and commission history ----------------------------------------------

REFAPP_HEADER = [
    "email",
    "first_name",
    "last_name",
    "code",
    "status",
    "paypal_email",
    "customer_id",
    "customer_since",
    "order_id",
    "event",
    "amount_cents",
    "currency",
    "commission_cents",
    "commission_status",
    "occurred_at",
    "paid_at",
]


def refapp_file(now) -> str:
    old = (now - timedelta(days=90)).date().isoformat()
    recent = (now - timedelta(days=3)).isoformat()
    rows = [
        [
            "kim@aff.example",
            "Kim",
            "Ra",
            "kim",
            "active",
            "kim@pay.example",
            "cus_k1",
            old,
            "ORD-1",
            "sale",
            "10000",
            "USD",
            "2000",
            "paid",
            old,
            old,
        ],
        [
            "kim@aff.example",
            "Kim",
            "Ra",
            "kim",
            "active",
            "",
            "cus_k1",
            old,
            "ORD-2",
            "renewal",
            "10000",
            "USD",
            "5000",
            "approved",
            old,
            "",
        ],
        [
            "kim@aff.example",
            "Kim",
            "Ra",
            "kim",
            "active",
            "",
            "cus_k2",
            "",
            "ORD-3",
            "sale",
            "5000",
            "",
            "2000",
            "approved",
            old,
            "",
        ],
        [
            "kim@aff.example",
            "Kim",
            "Ra",
            "kim",
            "active",
            "",
            "cus_k2",
            "",
            "ORD-4",
            "sale",
            "5000",
            "USD",
            "700",
            "pending",
            recent,
            "",
        ],
        ["lou@aff.example", "Lou", "Xu", "lou", "pending", "", "cus_l1", "", "", "", "", "", "", "", "", ""],
    ]
    return csv_text(REFAPP_HEADER, rows)


def test_a_refapp_file_lands_affiliates_customers_and_commission_history(program):
    now = timezone.now()
    report = run(program, "refapp", refapp_file(now), now=now)

    assert report.landed, report.refused
    assert report.commissions == {"new": 4, "unchanged": 0, "pending": 1, "approved": 2, "paid": 1}
    kim = Affiliate.objects.get(email="kim@aff.example")
    assert (kim.code, kim.payout_method, kim.paypal_email) == ("kim", "paypal", "kim@pay.example")
    assert Affiliate.objects.get(email="lou@aff.example").status == "pending"
    # Balances derive from the imported rows.
    assert balances(affiliate_id=kim.pk) == {"pending": 700, "approved": 7000, "paid": 2000}
    order1 = Event.objects.get(order_id="ORD-1")
    assert order1.affiliate == kim and order1.referral.customer_id == "cus_k1" and order1.source == "import"
    assert order1.response["commissions"][0]["status"] == "paid"
    referral = Referral.objects.get(customer_id="cus_k1")
    assert referral.method == "import" and referral.created_at.date() == (now - timedelta(days=90)).date()
    assert AuditLog.objects.filter(action="commission.imported").count() == 4
    # The commission explains where it came from.
    assert "imported" in Commission.objects.get(event__order_id="ORD-2").inputs and Commission.objects.get(
        event__order_id="ORD-4"
    ).hold_until == Event.objects.get(order_id="ORD-4").occurred_at + timedelta(days=program.hold_days)


def test_imported_approved_commissions_are_paid_by_the_next_run_and_paid_ones_never_again(program):
    now = timezone.now()
    run(program, "refapp", refapp_file(now), now=now)
    kim = Affiliate.objects.get(email="kim@aff.example")

    payouts = payouts_create(program=program, now=now, actor=ACTOR)

    assert [(p.affiliate_id, p.amount_cents, p.method) for p in payouts] == [(kim.pk, 7000, "paypal")]
    paid_order = Commission.objects.get(event__order_id="ORD-1")
    assert paid_order.status == "paid" and not paid_order.payout_items.exists()
    assert Payout.objects.count() == 1


def test_a_refapp_file_imported_twice_changes_nothing_and_a_changed_order_is_refused(program):
    now = timezone.now()
    text = refapp_file(now)
    run(program, "refapp", text, now=now)
    before = counts()

    again = run(program, "refapp", text, now=now)
    assert again.landed and again.counts["unchanged"] == 5 and again.commissions["unchanged"] == 4
    assert counts() == {**before, "audit": before["audit"] + 1}

    changed = run(program, "refapp", text.replace(",5000,approved,", ",5500,approved,"), now=now)
    assert not changed.landed
    assert [(r.line, "ORD-2" in r.reason) for r in changed.refused] == [(3, True)]


def test_refapp_rows_with_bad_money_or_dates_are_refused(program):
    now = timezone.now()
    future = (now + timedelta(days=2)).isoformat()
    rows = [
        ["a@aff.example", "A", "A", "", "", "", "", "", "O1", "", "10", "EUR", "1", "paid", "2026-01-01", ""],
        [
            "b@aff.example",
            "B",
            "B",
            "",
            "",
            "",
            "",
            "",
            "O2",
            "",
            "10",
            "",
            "-1",
            "approved",
            "2026-01-01",
            "",
        ],
        ["c@aff.example", "C", "C", "", "", "", "", "", "O3", "", "10", "", "1", "approved", future, ""],
        ["d@aff.example", "D", "D", "", "", "", "", "", "O4", "", "10", "", "1", "unknown", "2026-01-01", ""],
        ["e@aff.example", "E", "E", "", "", "", "", "", "", "", "10", "", "", "", "", ""],
        [
            "f@aff.example",
            "F",
            "F",
            "",
            "",
            "",
            "",
            "",
            "O6",
            "",
            "10",
            "",
            "1",
            "approved",
            "31/01/2026",
            "",
        ],
    ]
    report = run(program, "refapp", csv_text(REFAPP_HEADER, rows), now=now)
    reasons = {r.line: r.reason for r in report.refused}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert "currency EUR" in reasons[2] and "commission_cents" in reasons[3] and "future" in reasons[4]
    assert (
        "commission_status" in reasons[5]
        and "without an order_id" in reasons[6]
        and "not a date" in reasons[7]
    )


# --- the command ----------------------------------------------------------------------------------------


def test_the_command_with_dry_run_writes_nothing(program, tmp_path):
    path = tmp_path / "rewardful.csv"
    path.write_text(csv_text(REWARDFUL_HEADER, rewardful_rows(50)))
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "import_affiliates",
        "--program",
        "acme",
        "--format",
        "rewardful",
        str(path),
        "--dry-run",
        "--ref-param",
        "via",
        stdout=out,
        stderr=err,
    )

    assert "Dry run, nothing written: 50 rows: 50 new" in out.getvalue()
    assert counts() == {"affiliates": 0, "referrals": 0, "events": 0, "commissions": 0, "audit": 0}
    assert Program.objects.get(pk=program.pk).ref_params == []


def test_the_command_imports_and_reports_json(program, tmp_path):
    path = tmp_path / "rewardful.csv"
    path.write_text(csv_text(REWARDFUL_HEADER, rewardful_rows(30)))
    out = io.StringIO()
    call_command(
        "import_affiliates", "--program", "acme", "--format", "rewardful", str(path), "--json", stdout=out
    )
    report = json.loads(out.getvalue())
    assert report["landed"] and report["counts"]["new"] == 30
    assert Affiliate.objects.count() == report["affiliates"]["new"]


def test_the_command_fails_on_refused_rows_and_names_them(program, tmp_path):
    rows = rewardful_rows(10)
    rows[5][3] = "bad"
    path = tmp_path / "rewardful.csv"
    path.write_text(csv_text(REWARDFUL_HEADER, rows))
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command(
            "import_affiliates",
            "--program",
            "acme",
            "--format",
            "rewardful",
            str(path),
            stderr=err,
            stdout=io.StringIO(),
        )
    assert "line 7:" in err.getvalue() and Affiliate.objects.count() == 0


def test_the_command_refuses_an_unknown_program_or_unreadable_file(program, tmp_path):
    with pytest.raises(CommandError, match="No program"):
        call_command("import_affiliates", "--program", "nope", "--format", "rewardful", "x.csv")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command(
            "import_affiliates", "--program", "acme", "--format", "rewardful", str(tmp_path / "missing.csv")
        )


def test_a_collision_while_writing_rolls_the_whole_import_back(program, monkeypatch):
    """A join that takes a planned code between the plan and the insert: nothing of the file lands."""
    from commissions import imports

    plan_import = imports.plan_import

    def plan_then_collide(**kwargs):
        plan = plan_import(**kwargs)
        AffiliateFactory(program=kwargs["program"], email="late@join.example", code="tok-3")
        return plan

    monkeypatch.setattr(imports, "plan_import", plan_then_collide)
    with pytest.raises(imports.ImportConflict, match="Nothing was imported"):
        run(program, "rewardful", csv_text(REWARDFUL_HEADER, rewardful_rows(30)))
    assert counts() == {"affiliates": 0, "referrals": 0, "events": 0, "commissions": 0, "audit": 0}


def test_a_firstpromoter_row_without_a_name_leaves_the_affiliates_name_alone(program):
    AffiliateFactory(program=program, email="old@promo.example", code="old", name="Old Name")
    text = "email,ref_id,paypal_email,status\nold@promo.example,old,old@pay.example,approved\n"

    report = run(program, "firstpromoter", text)

    assert report.counts["updated"] == 1
    old = Affiliate.objects.get(email="old@promo.example")
    assert (old.name, old.paypal_email) == ("Old Name", "old@pay.example")


def _written(program) -> dict:
    """Everything an import wrote for a program's orders, with ids replaced by the natural keys."""
    events = {}
    for e in Event.objects.filter(program=program).select_related("affiliate", "referral"):
        values = {f.attname: getattr(e, f.attname) for f in Event._meta.concrete_fields}
        for key in ("id", "public_id", "program_id", "affiliate_id", "referral_id"):
            values.pop(key)
        response = values.pop("response")
        assert response["id"] == e.public_id and response["affiliate"]["id"] == e.affiliate.public_id
        assert response["referral"] == (e.referral.public_id if e.referral else None)
        (commission,) = e.commissions.all()
        assert [c["id"] for c in response["commissions"]] == [commission.public_id]
        values["response"] = {**response, "id": None, "affiliate": {**response["affiliate"], "id": None}}
        values["response"]["referral"] = e.referral.customer_id if e.referral else None
        values["response"]["commissions"] = [{**response["commissions"][0], "id": None}]
        values["affiliate"] = e.affiliate.email
        values["referral"] = e.referral.customer_id if e.referral else None
        c = {f.attname: getattr(commission, f.attname) for f in Commission._meta.concrete_fields}
        for key in ("id", "public_id", "program_id", "affiliate_id", "event_id"):
            c.pop(key)
        values["commission"] = c
        audit = AuditLog.objects.get(action="commission.imported", object_id=e.public_id)
        assert audit.data.pop("commissions") == [commission.public_id] and audit.program_id == program.pk
        values["audit"] = (audit.created_at, audit.actor_id, audit.actor_label, audit.object_type, audit.data)
        events[e.order_id] = values
    return events


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY writer is PostgreSQL's")
def test_the_copy_writer_of_orders_writes_what_the_instance_writer_writes(monkeypatch):
    """PostgreSQL writes the orders from tuples when nobody listens to the program's audit rows, and
    through model instances (the writer SQLite and watched programs use) otherwise: same rows."""
    from commissions import imports

    now = timezone.now()
    text = refapp_file(now) + (
        # An order with no customer (attributed by code) and one of a customer bound before.
        "kim@aff.example,Kim,Ra,kim,active,,,,ORD-5,signup,0,USD,0,pending,2026-01-02T03:04:05+02:00,\n"
        "kim@aff.example,Kim,Ra,kim,active,,cus_old,,ORD-6,sale,900,USD,90,paid,2026-01-03,2026-02-01\n"
    )
    programs = [Program.objects.create(slug=slug, name=slug, website="https://x.example") for slug in "ab"]
    for p in programs:
        kim = AffiliateFactory(program=p, email="kim@aff.example", code="kim", name="Kim Ra")
        ReferralFactory(program=p, affiliate=kim, customer_id="cus_old", method="import")
    watched = programs[1].pk
    monkeypatch.setattr(imports, "audit_watched", lambda program_id: program_id == watched)
    copy_orders, copies = imports._copy_orders, []
    monkeypatch.setattr(
        imports, "_copy_orders", lambda **kw: copies.append(kw["program"].pk) or copy_orders(**kw)
    )
    for p in programs:
        report = run(p, "refapp", text, now=now)
        assert report.landed and report.commissions["new"] == 6, report.refused

    assert copies == [programs[0].pk]  # the watched program's import took the instance writer
    first, second = _written(programs[0]), _written(programs[1])
    assert sorted(first) == [f"ORD-{i}" for i in range(1, 7)]
    assert first == second
    assert first["ORD-5"]["attribution"] == "code" and first["ORD-6"]["referral"] == "cus_old"


def test_the_copy_writer_refuses_columns_it_cannot_fill_alike_for_every_row():
    from commissions.imports import _copy

    # created_at is stamped per save (auto_now_add): the caller must give it.
    with pytest.raises(TypeError, match="AuditLog.created_at"):
        _copy(AuditLog, ("object_id", "data"), [], action="commission.imported")
    with pytest.raises(TypeError, match="no field colour"):
        _copy(AuditLog, ("object_id",), [], colour="red")
