"""Tests for the fake Stripe server, driven through the real stripe library."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from .server import (
    FakeStripe,
    build_charge,
    build_checkout_session,
    build_dispute,
    build_invoice,
    decode_form,
    sign_payload,
)

WHSEC = "whsec_test_secret"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fs:
        yield fs


def make_client(fs: FakeStripe, api_key: str = "sk_test_x") -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": fs.url, "connect": fs.url},
        max_network_retries=0,
    )


def onboarded_account(fs: FakeStripe, client: stripe.StripeClient) -> str:
    acct = client.v1.accounts.create(params={"type": "express"})
    fs.set_account(acct.id, payouts_enabled=True)
    return acct.id


def _no_redirect_opener() -> urllib.request.OpenerDirector:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    return urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    """A throwaway HTTP endpoint that records what it receives."""
    received: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, dict(self.headers.items())))
            reply = b'{"received": true}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/webhooks/stripe/", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------


def test_form_decoding_handles_stripe_bracket_notation():
    params = decode_form(
        "amount=500&metadata[payout_id]=7&metadata[note]=a%20b"
        "&capabilities[transfers][requested]=true&expand[0]=destination&expand[1]=balance_transaction"
        "&items[0][price]=p1&items[1][price]=p2&flag="
    )
    assert params == {
        "amount": "500",
        "metadata": {"payout_id": "7", "note": "a b"},
        "capabilities": {"transfers": {"requested": "true"}},
        "expand": ["destination", "balance_transaction"],
        "items": [{"price": "p1"}, {"price": "p2"}],
        "flag": "",
    }


def test_create_account_and_headers_sent_by_library(fake):
    client = make_client(fake)
    acct = client.v1.accounts.create(
        params={
            "type": "express",
            "email": "aff@example.com",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"affiliate_id": "42"},
        }
    )
    assert acct.id.startswith("acct_")
    assert acct.object == "account"
    assert acct.livemode is False
    assert acct.payouts_enabled is False
    assert acct.charges_enabled is False
    assert acct.details_submitted is False
    assert acct.email == "aff@example.com"
    assert acct.metadata["affiliate_id"] == "42"
    assert acct.capabilities["transfers"] == "inactive"

    method, path, params, key = fake.requests[-1]
    assert (method, path) == ("POST", "/v1/accounts")
    assert params["capabilities"] == {"transfers": {"requested": "true"}}
    assert key  # the library always sends an Idempotency-Key on POST
    headers = fake.request_headers[-1]
    assert headers["stripe-version"]
    assert headers["content-type"] == "application/x-www-form-urlencoded"

    fetched = client.v1.accounts.retrieve(acct.id)
    assert fetched.id == acct.id

    updated = client.v1.accounts.update(acct.id, params={"metadata": {"affiliate_id": "", "tier": "gold"}})
    assert updated.metadata.to_dict() == {"tier": "gold"}

    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.accounts.retrieve("acct_missing")
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"


def test_bad_api_key_raises_authentication_error(fake):
    with pytest.raises(stripe.AuthenticationError):
        make_client(fake, api_key="pk_live_nope").v1.balance.retrieve()


def test_onboarding_link_flow_enables_payouts_and_emits_account_updated(fake):
    client = make_client(fake)
    acct = client.v1.accounts.create(
        params={"type": "express", "capabilities": {"transfers": {"requested": True}}}
    )
    link = client.v1.account_links.create(
        params={
            "account": acct.id,
            "refresh_url": "http://testserver/connect/refresh/",
            "return_url": "http://testserver/connect/return/?x=1",
            "type": "account_onboarding",
        }
    )
    assert link.object == "account_link"
    assert link.url.startswith(fake.url + "/_fake/onboard/" + acct.id)
    assert link.expires_at > link.created

    with webhook_receiver() as (hook_url, received):
        fake.set_webhook(hook_url, WHSEC)
        with pytest.raises(urllib.error.HTTPError) as info:
            _no_redirect_opener().open(link.url, timeout=5)
        with info.value as resp:
            assert resp.code == 302
            assert resp.headers["Location"] == "http://testserver/connect/return/?x=1"

        assert len(received) == 1
        event = stripe.Webhook.construct_event(received[0][0], received[0][1]["Stripe-Signature"], WHSEC)
        assert event.type == "account.updated"
        assert event.data.object.id == acct.id
        assert event.data.object.payouts_enabled is True
        assert event.data.previous_attributes["payouts_enabled"] is False

    acct = client.v1.accounts.retrieve(acct.id)
    assert acct.payouts_enabled and acct.charges_enabled and acct.details_submitted
    assert acct.capabilities["transfers"] == "active"
    assert [e["type"] for e in fake.events] == ["account.updated"]
    events = client.v1.events.list(params={"type": "account.updated"})
    assert [e.id for e in events.data] == [fake.events[0]["id"]]
    assert client.v1.events.retrieve(fake.events[0]["id"]).type == "account.updated"


def test_transfer_success_moves_balance(fake):
    client = make_client(fake)
    fake.set_balance("usd", 10_000)
    acct_id = onboarded_account(fake, client)

    transfer = client.v1.transfers.create(
        params={
            "amount": 2_500,
            "currency": "usd",
            "destination": acct_id,
            "metadata": {"payout_id": 7},
            "transfer_group": "payout-7",
            "description": "Affiliate payout",
        },
        options={"idempotency_key": "payout-7"},
    )
    assert transfer.id.startswith("tr_")
    assert transfer.object == "transfer"
    assert transfer.amount == 2_500
    assert transfer.destination == acct_id
    assert transfer.metadata["payout_id"] == "7"
    assert transfer.transfer_group == "payout-7"

    assert fake.requests[-1].params["metadata"] == {"payout_id": "7"}
    assert fake.requests[-1].idempotency_key == "payout-7"
    assert fake.get_balance("usd") == 7_500
    assert fake.get_balance("usd", account=acct_id) == 2_500
    balance = client.v1.balance.retrieve()
    assert [(b.currency, b.amount) for b in balance.available] == [("usd", 7_500)]

    assert client.v1.transfers.retrieve(transfer.id).amount == 2_500
    listed = client.v1.transfers.list(params={"destination": acct_id, "limit": 5})
    assert listed.object == "list"
    assert [t.id for t in listed.data] == [transfer.id]
    assert listed.has_more is False
    assert client.v1.transfers.list(params={"destination": "acct_other"}).data == []
    assert fake.events[-1]["type"] == "transfer.created"


def test_transfer_to_account_without_payouts_is_rejected(fake):
    client = make_client(fake)
    fake.set_balance("usd", 10_000)
    acct = client.v1.accounts.create(params={"type": "express"})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": acct.id})
    assert info.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": "acct_nope"})
    assert info.value.code == "resource_missing"
    assert fake.transfers == []


def test_idempotent_replay_returns_same_transfer(fake):
    client = make_client(fake)
    fake.set_balance("usd", 10_000)
    acct_id = onboarded_account(fake, client)
    params = {"amount": 1_000, "currency": "usd", "destination": acct_id, "metadata": {"payout_id": "9"}}

    first = client.v1.transfers.create(params=params, options={"idempotency_key": "payout-9"})
    second = client.v1.transfers.create(params=dict(params), options={"idempotency_key": "payout-9"})

    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(fake.transfers) == 1
    assert fake.get_balance("usd") == 9_000


def test_idempotency_key_reused_with_different_params_raises(fake):
    client = make_client(fake)
    fake.set_balance("usd", 10_000)
    acct_id = onboarded_account(fake, client)
    client.v1.transfers.create(
        params={"amount": 1_000, "currency": "usd", "destination": acct_id}, options={"idempotency_key": "k1"}
    )
    with pytest.raises(stripe.IdempotencyError) as info:
        client.v1.transfers.create(
            params={"amount": 1_001, "currency": "usd", "destination": acct_id},
            options={"idempotency_key": "k1"},
        )
    assert type(info.value) is stripe.IdempotencyError
    assert info.value.http_status == 400
    assert len(fake.transfers) == 1


def test_insufficient_balance_raises_invalid_request_error(fake):
    client = make_client(fake)
    fake.set_balance("usd", 500)
    acct_id = onboarded_account(fake, client)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.create(params={"amount": 501, "currency": "usd", "destination": acct_id})
    assert info.value.code == "balance_insufficient"
    assert info.value.http_status == 400
    assert fake.transfers == []
    assert fake.get_balance("usd") == 500


def test_injected_500_raises_api_error_and_retry_succeeds(fake):
    client = make_client(fake)
    fake.set_balance("usd", 10_000)
    acct_id = onboarded_account(fake, client)
    fake.fail_next("/v1/transfers", 500, "api_error", message="boom")
    params = {"amount": 100, "currency": "usd", "destination": acct_id}
    with pytest.raises(stripe.APIError) as info:
        client.v1.transfers.create(params=params, options={"idempotency_key": "p-1"})
    assert type(info.value) is stripe.APIError
    assert info.value.http_status == 500
    assert fake.transfers == []
    # The failure was one-shot and not recorded under the key.
    transfer = client.v1.transfers.create(params=params, options={"idempotency_key": "p-1"})
    assert [t["id"] for t in fake.transfers] == [transfer.id]


def test_injected_card_error(fake):
    client = make_client(fake)
    fake.fail_next("/v1/balance", 402, "card_error", code="card_declined", message="Your card was declined.")
    with pytest.raises(stripe.CardError) as info:
        client.v1.balance.retrieve()
    assert info.value.code == "card_declined"


def test_drop_after_commit_then_retry_with_same_key_returns_existing_transfer(fake):
    client = make_client(fake)
    fake.set_balance("usd", 10_000)
    acct_id = onboarded_account(fake, client)
    params = {"amount": 3_000, "currency": "usd", "destination": acct_id, "metadata": {"payout_id": "11"}}

    fake.drop_after_commit_next("/v1/transfers")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.transfers.create(params=params, options={"idempotency_key": "payout-11"})
    assert len(fake.transfers) == 1  # Stripe did the transfer; we never heard back.

    retried = client.v1.transfers.create(params=params, options={"idempotency_key": "payout-11"})
    assert retried.id == fake.transfers[0]["id"]
    assert retried.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(fake.transfers) == 1
    assert fake.get_balance("usd") == 7_000


def test_webhook_signature_accepted_and_tampering_rejected(fake):
    with webhook_receiver() as (hook_url, received):
        fake.set_webhook(hook_url, WHSEC)
        session = build_checkout_session(
            client_reference_id="ref_abc", customer="cus_1", amount_total=4_900, payment_intent="pi_1"
        )
        event = fake.emit("checkout.session.completed", session)
        assert event["id"].startswith("evt_")
        assert event["object"] == "event"
        assert event["livemode"] is False
        assert event["data"]["object"]["client_reference_id"] == "ref_abc"

        assert len(received) == 1
        body, headers = received[0]
        sig = headers["Stripe-Signature"]
        assert sig.startswith("t=") and ",v1=" in sig
        constructed = stripe.Webhook.construct_event(body, sig, WHSEC)
        assert constructed.id == event["id"]
        assert constructed.type == "checkout.session.completed"
        assert constructed.data.object.amount_total == 4_900

        tampered = body.replace(b"4900", b"9900")
        assert tampered != body
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(tampered, sig, WHSEC)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, sig, "whsec_wrong")

        # Duplicate delivery of the same event, freshly signed.
        status, reply = fake.deliver(event)
        assert status == 200 and json.loads(reply) == {"received": True}
        assert len(received) == 2
        assert json.loads(received[1][0])["id"] == event["id"]
        assert [d["status"] for d in fake.deliveries] == [200, 200]


def test_sign_payload_matches_library_and_builders_emit(fake):
    payload = b'{"id": "evt_1", "object": "event"}'
    header = sign_payload(payload, WHSEC, timestamp=1_700_000_000)
    assert header == stripe.WebhookSignature.generate_signature_header(payload.decode(), WHSEC, 1_700_000_000)

    calls = []

    def target(body: bytes, headers: dict[str, str]):
        calls.append(stripe.Webhook.construct_event(body, headers["Stripe-Signature"], WHSEC).type)
        return 200, "ok"

    fake.set_webhook(target, WHSEC)
    fake.emit(
        "invoice.paid", build_invoice(customer="cus_1", amount_paid=900, subscription="sub_1", charge="ch_1")
    )
    fake.emit("charge.refunded", build_charge(amount=900, amount_refunded=900, customer="cus_1"))
    fake.emit("charge.dispute.created", build_dispute(charge="ch_1", amount=900))
    fake.emit("charge.dispute.closed", build_dispute(charge="ch_1", amount=900, status="lost"))
    assert calls == ["invoice.paid", "charge.refunded", "charge.dispute.created", "charge.dispute.closed"]
    invoice = fake.events[0]["data"]["object"]
    assert invoice["parent"]["subscription_details"]["subscription"] == "sub_1"
    assert fake.events[1]["data"]["object"]["refunded"] is True


# ----- transfer listing and reversals ---------------------------------------------------------


def test_transfers_are_listed_newest_first_within_created_bounds_page_by_page(fake):
    client = make_client(fake)
    base = 1_790_000_000
    planted = [
        fake.plant_transfer(amount=100 + i, destination="acct_a", created=base + i * 60) for i in range(7)
    ]
    outside = [
        fake.plant_transfer(amount=1, destination="acct_a", created=base - 1),
        fake.plant_transfer(amount=2, destination="acct_a", created=base + 7 * 60),
    ]
    window = {"gte": base, "lt": base + 7 * 60}

    first = client.v1.transfers.list(params={"created": window, "limit": 3})
    assert [t.amount for t in first.data] == [106, 105, 104] and first.has_more is True
    second = client.v1.transfers.list(
        params={"created": window, "limit": 3, "starting_after": first.data[-1].id}
    )
    assert [t.amount for t in second.data] == [103, 102, 101] and second.has_more is True
    third = client.v1.transfers.list(
        params={"created": window, "limit": 3, "starting_after": second.data[-1].id}
    )
    assert [t.amount for t in third.data] == [100] and third.has_more is False
    # The library's auto-paging walks the same pages with starting_after and keeps the filter.
    walked = client.v1.transfers.list(params={"created": window, "limit": 3}).auto_paging_iter()
    assert [t.id for t in walked] == [t["id"] for t in reversed(planted)]
    pages = [r.params for r in fake.requests if r.path == "/v1/transfers"]
    assert pages[-2]["starting_after"] == first.data[-1].id and pages[-2]["created"] == {
        "gte": str(base),
        "lt": str(base + 7 * 60),
    }
    # Other bounds and an exact time.
    assert [t.amount for t in client.v1.transfers.list(params={"created": {"gt": base + 5 * 60}}).data] == [
        2,
        106,
    ]
    assert [t.amount for t in client.v1.transfers.list(params={"created": {"lte": base - 1}}).data] == [1]
    assert [t.amount for t in client.v1.transfers.list(params={"created": base + 60}).data] == [101]
    assert {t["id"] for t in outside} == {
        t.id for t in client.v1.transfers.list(params={"limit": 100}).data
    } - {t["id"] for t in planted}
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.list(params={"created": {"since": base}})
    assert info.value.param == "created[since]"


def test_planted_transfer_reads_like_a_created_one(fake):
    client = make_client(fake)
    planted = fake.plant_transfer(
        amount=4_200,
        currency="EUR",
        destination="acct_z",
        metadata={"payout_id": "po_x"},
        created=1_790_000_000,
    )
    got = client.v1.transfers.retrieve(planted["id"])
    assert (got.amount, got.currency, got.destination, got.created) == (4_200, "eur", "acct_z", 1_790_000_000)
    assert got.metadata["payout_id"] == "po_x" and got.amount_reversed == 0 and got.reversed is False
    assert got.reversals.total_count == 0
    assert [r.method for r in fake.requests] == ["GET"]  # planting sent nothing and recorded nothing
    assert fake.events == []


def test_partial_then_full_reversal_updates_the_transfer_and_balances(fake):
    client = make_client(fake)
    fake.set_balance("usd", 10_000)
    acct_id = onboarded_account(fake, client)
    transfer = client.v1.transfers.create(params={"amount": 3_000, "currency": "usd", "destination": acct_id})

    partial = client.v1.transfers.reversals.create(
        transfer.id,
        params={"amount": 1_000, "metadata": {"why": "test"}},
        options={"idempotency_key": "rev-1"},
    )
    assert partial.object == "transfer_reversal" and partial.id.startswith("trr_")
    assert (partial.amount, partial.currency, partial.transfer) == (1_000, "usd", transfer.id)
    assert partial.metadata["why"] == "test"
    again = client.v1.transfers.reversals.create(
        transfer.id,
        params={"amount": 1_000, "metadata": {"why": "test"}},
        options={"idempotency_key": "rev-1"},
    )
    assert again.id == partial.id  # an idempotent replay reverses once
    after = client.v1.transfers.retrieve(transfer.id)
    assert (after.amount_reversed, after.reversed) == (1_000, False)
    assert [r.id for r in after.reversals.data] == [partial.id] and after.reversals.total_count == 1
    assert fake.get_balance("usd") == 8_000 and fake.get_balance("usd", account=acct_id) == 2_000

    rest = client.v1.transfers.reversals.create(transfer.id)  # no amount: whatever is left
    assert rest.amount == 2_000
    after = client.v1.transfers.retrieve(transfer.id)
    assert (after.amount_reversed, after.reversed) == (3_000, True)
    assert [r.id for r in after.reversals.data] == [rest.id, partial.id]
    listed = client.v1.transfers.reversals.list(transfer.id, params={"limit": 1})
    assert [r.id for r in listed.data] == [rest.id] and listed.has_more is True
    assert fake.get_balance("usd") == 10_000 and fake.get_balance("usd", account=acct_id) == 0
    assert [e["type"] for e in fake.events[-2:]] == ["transfer.reversed", "transfer.reversed"]
    assert fake.events[-1]["data"]["previous_attributes"]["amount_reversed"] == 1_000

    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 1})
    assert info.value.code == "transfer_already_reversed"


def test_reversal_errors(fake):
    client = make_client(fake)
    planted = fake.plant_transfer(amount=500, destination="acct_q")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.reversals.create(planted["id"], params={"amount": 501})
    assert info.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.reversals.create("tr_missing", params={"amount": 1})
    assert info.value.code == "resource_missing" and info.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(planted["id"], params={"amount": 0})
    # The money left the destination meanwhile: Stripe cannot pull it back.
    with fake._lock:
        fake._account_balances["acct_q"]["usd"] = 100
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.reversals.create(planted["id"], params={"amount": 200})
    assert info.value.code == "balance_insufficient"
    assert client.v1.transfers.retrieve(planted["id"]).amount_reversed == 0


def test_many_reversals_embed_the_newest_ten(fake):
    client = make_client(fake)
    planted = fake.plant_transfer(amount=1_200, destination="acct_r")
    made = [client.v1.transfers.reversals.create(planted["id"], params={"amount": 100}).id for _ in range(12)]
    got = client.v1.transfers.retrieve(planted["id"])
    assert [r.id for r in got.reversals.data] == list(reversed(made))[:10]
    assert got.reversals.has_more is True and got.reversals.total_count == 12 and got.reversed is True
    everything = client.v1.transfers.reversals.list(planted["id"], params={"limit": 5}).auto_paging_iter()
    assert [r.id for r in everything] == list(reversed(made))


# ----- customers and balance transactions (refer-a-friend credit) -------------------------------


def test_customer_balance_transactions_credit_and_debit_the_balance(fake):
    client = make_client(fake)
    customer = client.v1.customers.create(params={"email": "ann@customer.example"})
    assert customer.balance == 0 and customer.id.startswith("cus_")

    credit = client.v1.customers.balance_transactions.create(
        customer.id,
        params={"amount": -2000, "currency": "usd", "metadata": {"refapp_credit": "ccr_1"}},
        options={"idempotency_key": "customer-credit-ccr_1"},
    )
    debit = client.v1.customers.balance_transactions.create(
        customer.id, params={"amount": 1000, "currency": "usd"}
    )
    assert credit.object == "customer_balance_transaction" and credit.ending_balance == -2000
    assert debit.ending_balance == -1000
    assert client.v1.customers.retrieve(customer.id).balance == -1000

    listed = client.v1.customers.balance_transactions.list(customer.id, params={"limit": 1})
    assert [t.id for t in listed.data] == [debit.id] and listed.has_more
    every = list(client.v1.customers.balance_transactions.list(customer.id).auto_paging_iter())
    assert [t.id for t in every] == [debit.id, credit.id]
    assert every[1].metadata["refapp_credit"] == "ccr_1"
    again = client.v1.customers.balance_transactions.retrieve(customer.id, credit.id)
    assert again.amount == -2000


def test_a_replayed_idempotency_key_makes_one_balance_transaction(fake):
    client = make_client(fake)
    customer_id = fake.add_customer(email="bob@customer.example")
    params = {"amount": -500, "currency": "usd"}
    first = client.v1.customers.balance_transactions.create(
        customer_id, params=params, options={"idempotency_key": "k-1"}
    )
    second = client.v1.customers.balance_transactions.create(
        customer_id, params=params, options={"idempotency_key": "k-1"}
    )
    assert first.id == second.id
    assert len(fake.balance_transactions(customer_id)) == 1
    assert fake.customer(customer_id)["balance"] == -500


def test_balance_transaction_errors_are_stripe_errors(fake):
    client = make_client(fake)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.balance_transactions.create(
            "cus_nobody", params={"amount": -1, "currency": "usd"}
        )
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    customer_id = fake.add_customer()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.balance_transactions.create(customer_id, params={"amount": 0, "currency": "usd"})
    client.v1.customers.balance_transactions.create(customer_id, params={"amount": -1, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as other_currency:
        client.v1.customers.balance_transactions.create(customer_id, params={"amount": -1, "currency": "eur"})
    assert other_currency.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve("cus_nobody")
