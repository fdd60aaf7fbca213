"""A small in-process fake of the Stripe HTTP API for tests.

The real ``stripe`` library talks to it over loopback HTTP; nothing in the
library is patched.  Only the endpoints refapp uses are implemented:
Connect accounts, account links (with a fake onboarding page), transfers (listed
by creation time, with reversals), balance and events, plus signed webhook
delivery.  Tests plant transfers made outside refapp with ``plant_transfer``.

Typical use::

    with FakeStripe() as fs:
        client = stripe.StripeClient(
            "sk_test_x",
            base_addresses={"api": fs.url, "connect": fs.url},
            max_network_retries=0,
        )
        fs.set_balance("usd", 10_000)
        acct = client.v1.accounts.create(params={"type": "express"})
        fs.set_account(acct.id, payouts_enabled=True)
        client.v1.transfers.create(
            params={"amount": 500, "currency": "usd", "destination": acct.id},
            options={"idempotency_key": "payout-1"},
        )

Everything is stdlib only.  State lives on the ``FakeStripe`` object and is
guarded by one lock; webhooks are delivered without holding it, so a webhook
receiver may call back into the fake.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import random
import re
import string
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

# The API version pinned by the stripe library this project installs; used for
# the ``api_version`` field of events unless the constructor is told otherwise.
DEFAULT_API_VERSION = "2026-10-28.endive"

WEBHOOK_TIMEOUT_SECONDS = 10

_ID_ALPHABET = string.ascii_letters + string.digits
_rng = random.SystemRandom()


def new_id(prefix: str) -> str:
    """A Stripe-looking id such as ``tr_1Qx...`` (prefix given without ``_``)."""
    return f"{prefix}_1" + "".join(_rng.choice(_ID_ALPHABET) for _ in range(23))


def _now() -> int:
    return int(time.time())


# --------------------------------------------------------------------------
# Webhook signing
# --------------------------------------------------------------------------


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Build a ``Stripe-Signature`` header value for ``payload``.

    Stripe signs ``"<timestamp>.<raw body>"`` with HMAC-SHA256 keyed by the
    endpoint secret and sends ``t=<timestamp>,v1=<hex digest>``.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if timestamp is None:
        timestamp = _now()
    signed = str(int(timestamp)).encode("ascii") + b"." + bytes(payload)
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={int(timestamp)},v1={digest}"


# --------------------------------------------------------------------------
# Form decoding (the library sends application/x-www-form-urlencoded bodies
# with bracket notation: metadata[payout_id]=7, capabilities[transfers][requested]=true,
# expand[0]=destination)
# --------------------------------------------------------------------------

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    parts = [head]
    tail = "[" + rest
    pos = 0
    for match in _KEY_PART.finditer(tail):
        if match.start() != pos:
            # Malformed brackets; treat the remainder literally.
            parts.append(tail[pos:])
            return parts
        parts.append(match.group(1))
        pos = match.end()
    if pos != len(tail):
        parts.append(tail[pos:])
    return parts


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def decode_form(encoded: str) -> dict[str, Any]:
    """Decode a Stripe-style form body / query string into nested dicts and lists.

    Values stay strings (as on the wire); ``a[0]``-style and ``a[]`` keys
    become lists.
    """
    root: dict[str, Any] = {}
    for raw_key, value in urllib.parse.parse_qsl(encoded, keep_blank_values=True):
        parts = _split_key(raw_key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "" and i > 0:
                # "expand[]=x": append with the next free index.
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


# --------------------------------------------------------------------------
# Errors and responses
# --------------------------------------------------------------------------


class StripeAPIFailure(Exception):
    """Raised by endpoint code to produce a Stripe error response.

    ``store`` says whether the result is recorded against the idempotency key
    (Stripe records results once an endpoint has begun executing, but not for
    requests rejected during parameter validation).
    """

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        code: str | None = None,
        param: str | None = None,
        store: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.code = code
        self.param = param
        self.store = store

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
        if self.param is not None:
            err["param"] = self.param
        return {"error": err}


def _invalid(message: str, param: str | None = None, code: str | None = None) -> StripeAPIFailure:
    return StripeAPIFailure(400, "invalid_request_error", message, code=code, param=param)


def _missing(kind: str, ident: str, param: str = "id") -> StripeAPIFailure:
    return StripeAPIFailure(
        404, "invalid_request_error", f"No such {kind}: '{ident}'", code="resource_missing", param=param
    )


@dataclass
class _Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    hold: threading.Event | None = None


@dataclass
class _StoredResult:
    fingerprint: tuple[str, str, str]
    status: int
    body: bytes
    request_id: str


class RequestRecord(NamedTuple):
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None


@dataclass
class _Rule:
    path_prefix: str
    method: str | None
    status: int = 0
    error_type: str = ""
    code: str | None = None
    message: str = ""
    param: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return path.startswith(self.path_prefix)


# --------------------------------------------------------------------------
# Parameter coercion helpers
# --------------------------------------------------------------------------


def _as_int(params: dict[str, Any], name: str, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None:
        if required:
            raise _invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise _invalid(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
    return int(value)


def _as_str(params: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise _invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
        return None
    if not isinstance(value, str):
        raise _invalid(f"Invalid string: {name}", param=name)
    return value


def _as_bool(value: Any, name: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise _invalid(f"Invalid boolean: {value}", param=name)


def _check_unknown(params: dict[str, Any], allowed: set[str]) -> None:
    for name in params:
        if name not in allowed:
            raise _invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def _merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Apply Stripe metadata semantics: "" unsets a key, an empty string for the
    whole hash clears it, limits of 50 keys / 40-char keys / 500-char values."""
    if update is None:
        return dict(current)
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise _invalid("Invalid hash", param="metadata")
    merged = dict(current)
    for key, value in update.items():
        if not isinstance(value, str):
            raise _invalid("Invalid hash", param=f"metadata[{key}]")
        if len(key) > 40:
            raise _invalid(
                "Metadata keys can have a maximum length of 40 characters.", param=f"metadata[{key}]"
            )
        if len(value) > 500:
            raise _invalid(
                "Metadata values can have a maximum length of 500 characters.", param=f"metadata[{key}]"
            )
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 50:
        raise _invalid("You can specify up to 50 keys in metadata.", param="metadata")
    return merged


def _list_object(items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """Cursor pagination over ``items`` (already newest first)."""
    limit = _as_int(params, "limit")
    if limit is None:
        limit = 10
    if not 1 <= limit <= 100:
        raise _invalid("Invalid limit: must be between 1 and 100", param="limit")
    starting_after = _as_str(params, "starting_after")
    ending_before = _as_str(params, "ending_before")
    ids = [item["id"] for item in items]
    if starting_after:
        if starting_after not in ids:
            raise _invalid(
                f"No such object: '{starting_after}'", param="starting_after", code="resource_missing"
            )
        window = items[ids.index(starting_after) + 1 :]
        page = window[:limit]
        has_more = len(window) > limit
    elif ending_before:
        if ending_before not in ids:
            raise _invalid(
                f"No such object: '{ending_before}'", param="ending_before", code="resource_missing"
            )
        window = items[: ids.index(ending_before)]
        page = window[-limit:]
        has_more = len(window) > limit
    else:
        page = items[:limit]
        has_more = len(items) > limit
    return {"object": "list", "data": copy.deepcopy(page), "has_more": has_more, "url": url}


# --------------------------------------------------------------------------
# Builders for webhook data objects (shapes follow Stripe's objects; only the
# fields refapp may read are filled in, the rest are left out)
# --------------------------------------------------------------------------


def build_account_object(account_id: str | None = None, **fields: Any) -> dict[str, Any]:
    acct = {
        "id": account_id or new_id("acct"),
        "object": "account",
        "type": "express",
        "email": None,
        "country": "US",
        "default_currency": "usd",
        "business_type": None,
        "capabilities": {},
        "charges_enabled": False,
        "payouts_enabled": False,
        "details_submitted": False,
        "metadata": {},
        "requirements": {
            "currently_due": ["external_account", "tos_acceptance.date", "tos_acceptance.ip"],
            "eventually_due": ["external_account", "tos_acceptance.date", "tos_acceptance.ip"],
            "past_due": [],
            "disabled_reason": "requirements.past_due",
            "current_deadline": None,
        },
        "created": _now(),
        "livemode": False,
    }
    acct.update(fields)
    return acct


def build_checkout_session(
    *,
    client_reference_id: str | None = None,
    customer: str | None = None,
    amount_total: int = 0,
    currency: str = "usd",
    payment_intent: str | None = None,
    mode: str = "payment",
    subscription: str | None = None,
    invoice: str | None = None,
    customer_email: str | None = None,
    metadata: dict[str, str] | None = None,
    payment_status: str = "paid",
    id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``checkout.session`` object as carried by ``checkout.session.completed``."""
    obj = {
        "id": id or new_id("cs_test"),
        "object": "checkout.session",
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "client_reference_id": client_reference_id,
        "created": _now(),
        "currency": currency,
        "customer": customer,
        "customer_details": {"email": customer_email, "name": None},
        "customer_email": customer_email,
        "expires_at": _now() + 86400,
        "invoice": invoice,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "mode": mode,
        "payment_intent": payment_intent,
        "payment_status": payment_status,
        "status": "complete",
        "subscription": subscription,
        "success_url": None,
        "url": None,
    }
    obj.update(extra)
    return obj


def build_invoice(
    *,
    customer: str | None = None,
    amount_paid: int = 0,
    currency: str = "usd",
    subscription: str | None = None,
    billing_reason: str = "subscription_cycle",
    charge: str | None = None,
    payment_intent: str | None = None,
    metadata: dict[str, str] | None = None,
    id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An ``invoice`` object as carried by ``invoice.paid``.

    Current API versions moved ``subscription`` under
    ``parent.subscription_details.subscription`` and dropped the top-level
    ``charge``/``payment_intent``; both the modern and the legacy fields are
    filled in so handlers can be written against either.
    """
    invoice_id = id or new_id("in")
    parent = None
    if subscription:
        parent = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"subscription": subscription, "metadata": {}},
        }
    obj = {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": amount_paid,
        "amount_paid": amount_paid,
        "amount_remaining": 0,
        "attempted": True,
        "billing_reason": billing_reason,
        "charge": charge,
        "created": _now(),
        "currency": currency,
        "customer": customer,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "paid": True,
        "parent": parent,
        "payment_intent": payment_intent,
        "status": "paid",
        "status_transitions": {"paid_at": _now(), "finalized_at": _now()},
        "subscription": subscription,
        "total": amount_paid,
    }
    obj.update(extra)
    return obj


def build_charge(
    *,
    amount: int,
    amount_refunded: int = 0,
    customer: str | None = None,
    invoice: str | None = None,
    payment_intent: str | None = None,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
    id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``charge`` object as carried by ``charge.refunded`` (``invoice`` is a
    legacy field that current API versions no longer send)."""
    obj = {
        "id": id or new_id("ch"),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "balance_transaction": new_id("txn"),
        "captured": True,
        "created": _now(),
        "currency": currency,
        "customer": customer,
        "disputed": False,
        "invoice": invoice,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": amount_refunded >= amount > 0,
        "status": "succeeded",
    }
    obj.update(extra)
    return obj


def build_dispute(
    *,
    charge: str,
    amount: int,
    status: str = "needs_response",
    currency: str = "usd",
    reason: str = "fraudulent",
    payment_intent: str | None = None,
    id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``dispute`` object as carried by ``charge.dispute.created`` /
    ``charge.dispute.closed`` (closed disputes have status ``won``/``lost``)."""
    obj = {
        "id": id or new_id("dp"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge,
        "created": _now(),
        "currency": currency,
        "evidence_details": {
            "due_by": _now() + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": reason,
        "status": status,
    }
    obj.update(extra)
    return obj


def build_transfer(
    *,
    amount: int,
    destination: str,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    source_transaction: str | None = None,
    transfer_group: str | None = None,
    created: int | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """A ``transfer`` object: ``reversals`` embeds the newest reversals (``_embed_reversals``),
    ``amount_reversed`` sums them and ``reversed`` turns true once the whole amount is back."""
    transfer_id = id or new_id("tr")
    return {
        "id": transfer_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": new_id("txn"),
        "created": _now() if created is None else int(created),
        "currency": currency,
        "description": description,
        "destination": destination,
        "destination_payment": new_id("py"),
        "livemode": False,
        "metadata": dict(metadata or {}),
        "reversals": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/transfers/{transfer_id}/reversals",
        },
        "reversed": False,
        "source_transaction": source_transaction,
        "source_type": "card",
        "transfer_group": transfer_group,
    }


# A transfer object carries at most this many of its reversals, newest first; the rest are listed
# from /v1/transfers/{id}/reversals.
EMBEDDED_REVERSALS = 10


def _embed_reversals(transfer: dict[str, Any], reversals: list[dict[str, Any]]) -> None:
    newest = list(reversed(reversals))
    transfer["reversals"] = {
        "object": "list",
        "data": copy.deepcopy(newest[:EMBEDDED_REVERSALS]),
        "has_more": len(newest) > EMBEDDED_REVERSALS,
        "total_count": len(newest),
        "url": f"/v1/transfers/{transfer['id']}/reversals",
    }


def _created_filter(value: Any) -> Callable[[int], bool]:
    """``created=<ts>`` or ``created[gte|gt|lte|lt]=<ts>`` as a predicate over a timestamp."""
    if value is None:
        return lambda created: True
    if isinstance(value, str):
        exact = _as_int({"created": value}, "created")
        return lambda created: created == exact
    if not isinstance(value, dict):
        raise _invalid("Invalid hash", param="created")
    bounds: list[Callable[[int], bool]] = []
    for op in value:
        if op not in ("gt", "gte", "lt", "lte"):
            raise _invalid(f"Received unknown parameter: created[{op}]", param=f"created[{op}]")
        limit = _as_int(value, op)
        assert limit is not None
        bounds.append(
            {
                "gt": lambda c, n=limit: c > n,
                "gte": lambda c, n=limit: c >= n,
                "lt": lambda c, n=limit: c < n,
                "lte": lambda c, n=limit: c <= n,
            }[op]
        )
    return lambda created: all(check(created) for check in bounds)


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeStripe/1.0"
    # Keep-alive, as the real API: a client reuses its connection (every response has a length).
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm on, a kept-alive connection
    # waits for the client's delayed ACK between them (40 ms a request).
    disable_nagle_algorithm = True
    fake: FakeStripe  # set on a per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.fake._handle(method, self.path, headers, body)
        if response.hold is not None:
            response.hold.wait(timeout=60)
        if response.drop:
            # Processed and recorded, but the caller never hears back.
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()
        # Side-effect events reach the webhook after the API response, as with
        # real Stripe where webhooks are asynchronous.
        for event in response.events:
            self.fake._auto_deliver(event)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")


WebhookTarget = str | Callable[[bytes, dict[str, str]], Any]


class FakeStripe:
    """A fake Stripe API server running in a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_version: str = DEFAULT_API_VERSION,
        balances: dict[str, int] | None = None,
        api_key: str | None = None,
    ):
        self._host = host
        self._port = port
        self.api_version = api_version
        self._api_key = api_key
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._balances: dict[str, int] = {"usd": 0}
        self._balances.update(balances or {})
        self._account_balances: dict[str, dict[str, int]] = {}
        self._accounts: dict[str, dict[str, Any]] = {}
        self._transfers: list[dict[str, Any]] = []  # oldest first
        self._reversals: dict[str, list[dict[str, Any]]] = {}  # per transfer, oldest first
        self._events: list[dict[str, Any]] = []  # oldest first
        self._requests: list[RequestRecord] = []
        self._request_headers: list[dict[str, str]] = []
        self._deliveries: list[dict[str, Any]] = []
        self._idempotency: dict[str, _StoredResult] = {}
        self._failures: list[_Rule] = []
        self._drops: list[_Rule] = []
        self._holds: list[tuple[_Rule, threading.Event]] = []
        self._webhook_target: WebhookTarget | None = None
        self._webhook_secret: str | None = None

    # ----- lifecycle -------------------------------------------------------

    def start(self) -> FakeStripe:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer((self._host, self._port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakestripe", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeStripe is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ----- state inspection (copies, safe to mutate) ----------------------

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._accounts)

    @property
    def transfers(self) -> list[dict[str, Any]]:
        """All transfers, oldest first."""
        with self._lock:
            return copy.deepcopy(self._transfers)

    @property
    def events(self) -> list[dict[str, Any]]:
        """All events, oldest first."""
        with self._lock:
            return copy.deepcopy(self._events)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every API request received: (method, path, params, idempotency_key)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """Lower-cased headers of each request, parallel to ``requests``."""
        with self._lock:
            return copy.deepcopy(self._request_headers)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Webhook delivery attempts: event_id, type, url, status, body."""
        with self._lock:
            return copy.deepcopy(self._deliveries)

    def get_balance(self, currency: str, account: str | None = None) -> int:
        """Available balance of the platform, or of a connected account."""
        with self._lock:
            if account is None:
                return self._balances.get(currency.lower(), 0)
            return self._account_balances.get(account, {}).get(currency.lower(), 0)

    # ----- state control ---------------------------------------------------

    def set_balance(self, currency: str, amount: int) -> None:
        with self._lock:
            self._balances[currency.lower()] = int(amount)

    def plant_transfer(
        self,
        *,
        amount: int,
        destination: str,
        currency: str = "usd",
        metadata: dict[str, str] | None = None,
        created: int | None = None,
        description: str | None = None,
        transfer_group: str | None = None,
    ) -> dict[str, Any]:
        """Put a transfer straight into the fake, as if the platform had made it some other way
        (the Dashboard, another program, a wrong amount): no request, no idempotency key, no event.
        ``created`` (seconds since the epoch) may lie in the past. The money is on the destination
        account, so the transfer can be reversed. Returns a copy of the transfer."""
        with self._lock:
            transfer = build_transfer(
                amount=int(amount),
                currency=currency.lower(),
                destination=destination,
                metadata=dict(metadata or {}),
                description=description,
                transfer_group=transfer_group,
                created=created,
            )
            self._transfers.append(transfer)
            balance = self._account_balances.setdefault(destination, {})
            balance[transfer["currency"]] = balance.get(transfer["currency"], 0) + transfer["amount"]
            return copy.deepcopy(transfer)

    def set_account(
        self,
        acct_id: str,
        *,
        payouts_enabled: bool = True,
        charges_enabled: bool | None = None,
        details_submitted: bool | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create or change a connected account and emit ``account.updated``.

        ``charges_enabled`` / ``details_submitted`` left as None keep their
        value on an existing account and follow ``payouts_enabled`` on a new one.
        Returns the event.
        """
        with self._lock:
            acct = self._accounts.get(acct_id)
            if acct is None:
                acct = build_account_object(
                    acct_id,
                    charges_enabled=payouts_enabled,
                    details_submitted=payouts_enabled,
                )
                self._accounts[acct_id] = acct
            before = copy.deepcopy(acct)
            acct["payouts_enabled"] = bool(payouts_enabled)
            if charges_enabled is not None:
                acct["charges_enabled"] = bool(charges_enabled)
            if details_submitted is not None:
                acct["details_submitted"] = bool(details_submitted)
            acct.update(fields)
            self._sync_requirements(acct)
            event = self._new_event("account.updated", acct, _diff(before, acct), account=acct_id)
        self._auto_deliver(event)
        return copy.deepcopy(event)

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        error_type: str,
        code: str | None = None,
        message: str = "Injected failure from FakeStripe",
        *,
        method: str | None = None,
        param: str | None = None,
    ) -> None:
        """Answer the next API request whose path starts with ``path_prefix``
        (and whose method matches, if given) with this error instead of
        processing it.  Nothing is recorded against its idempotency key, so a
        retry with the same key is processed normally."""
        with self._lock:
            self._failures.append(_Rule(path_prefix, method, status, error_type, code, message, param))

    def drop_after_commit_next(self, path_prefix: str, *, method: str | None = "POST") -> None:
        """Fully process (and record under its idempotency key) the next
        matching request, then close the connection without answering.  The
        stripe library raises ``APIConnectionError``."""
        with self._lock:
            self._drops.append(_Rule(path_prefix, method))

    def hold_after_commit_next(self, path_prefix: str, *, method: str | None = "POST") -> threading.Event:
        """Fully process (and record) the next matching request, then keep the caller waiting until
        the returned event is set, and close the connection without answering. Lets a test kill the
        client process while Stripe has already acted on its request."""
        release = threading.Event()
        with self._lock:
            self._holds.append((_Rule(path_prefix, method), release))
        return release

    def set_webhook(self, url: WebhookTarget | None, secret: str | None = None) -> None:
        """Deliver every new event to ``url`` signed with ``secret``.

        ``url`` may also be a callable ``(payload: bytes, headers: dict) ->
        response`` (e.g. a wrapper around Django's test client); its result
        may be ``(status, body)`` or an object with ``status_code``/``content``.
        Pass ``None`` to stop delivering.
        """
        with self._lock:
            self._webhook_target = url
            self._webhook_secret = secret

    # ----- events and webhooks ---------------------------------------------

    def emit(
        self,
        type: str,
        data_object: dict[str, Any],
        *,
        previous_attributes: dict[str, Any] | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        """Record an event and, if a webhook is configured, deliver it now
        from the calling thread.  Returns the event dict."""
        with self._lock:
            event = self._new_event(type, data_object, previous_attributes, account=account)
        self._auto_deliver(event)
        return copy.deepcopy(event)

    @staticmethod
    def payload_for(event: dict[str, Any]) -> bytes:
        """The exact request body Stripe would POST for ``event``."""
        return json.dumps(event, indent=2).encode("utf-8")

    def deliver(
        self,
        event: dict[str, Any],
        url: WebhookTarget | None = None,
        secret: str | None = None,
    ) -> tuple[int, str]:
        """(Re)deliver ``event`` to ``url`` (default: the configured webhook),
        freshly signed.  Returns ``(status, body)``; status 0 means the
        receiver could not be reached (body holds the reason)."""
        with self._lock:
            target = url if url is not None else self._webhook_target
            key = secret if secret is not None else self._webhook_secret
        if target is None:
            raise RuntimeError("No webhook configured; call set_webhook() or pass url=")
        if key is None:
            raise RuntimeError("No webhook secret configured; call set_webhook() or pass secret=")
        payload = self.payload_for(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (FakeStripe)",
            "Stripe-Signature": sign_payload(payload, key),
        }
        if callable(target):
            status, text = _call_target(target, payload, headers)
            where = getattr(target, "__name__", repr(target))
        else:
            status, text = _post(target, payload, headers)
            where = target
        with self._lock:
            self._deliveries.append(
                {
                    "event_id": event.get("id"),
                    "type": event.get("type"),
                    "url": where,
                    "status": status,
                    "body": text,
                }
            )
        return status, text

    def _auto_deliver(self, event: dict[str, Any]) -> None:
        with self._lock:
            configured = self._webhook_target is not None and self._webhook_secret is not None
        if configured:
            self.deliver(event)

    def _new_event(
        self,
        type_: str,
        data_object: dict[str, Any],
        previous_attributes: dict[str, Any] | None,
        *,
        account: str | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"object": copy.deepcopy(data_object)}
        if previous_attributes:
            data["previous_attributes"] = copy.deepcopy(previous_attributes)
        event: dict[str, Any] = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": self.api_version,
            "created": _now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if self._webhook_target is not None else 0,
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": type_,
        }
        if account is not None:
            event["account"] = account
        self._events.append(event)
        return copy.deepcopy(event)

    # ----- request handling ------------------------------------------------

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Response:
        parsed = urllib.parse.urlsplit(raw_path)
        path = parsed.path
        if method == "GET" and path.startswith("/_fake/onboard/"):
            return self._onboard(path[len("/_fake/onboard/") :], decode_form(parsed.query))

        request_id = new_id("req")
        events: list[dict[str, Any]] = []
        with self._lock:
            params = decode_form(body.decode("utf-8") if method == "POST" else parsed.query)
            idem_key = headers.get("idempotency-key")
            self._requests.append(RequestRecord(method, path, params, idem_key))
            self._request_headers.append(dict(headers))

            base_headers = {
                "Content-Type": "application/json",
                "Request-Id": request_id,
                "Stripe-Version": headers.get("stripe-version") or self.api_version,
            }
            if idem_key:
                base_headers["Idempotency-Key"] = idem_key

            def respond(status: int, payload: dict[str, Any], drop: bool = False) -> _Response:
                return _Response(
                    status, json.dumps(payload, indent=2).encode("utf-8"), dict(base_headers), drop, events
                )

            auth_error = self._check_auth(headers.get("authorization"))
            if auth_error is not None:
                return respond(auth_error.status, auth_error.body())

            for rule in self._failures:
                if rule.matches(method, path):
                    self._failures.remove(rule)
                    err = StripeAPIFailure(rule.status, rule.error_type, rule.message, rule.code, rule.param)
                    return respond(err.status, err.body())

            drop = False
            for rule in self._drops:
                if rule.matches(method, path):
                    self._drops.remove(rule)
                    drop = True
                    break
            hold = None
            for rule, release in self._holds:
                if rule.matches(method, path):
                    self._holds.remove((rule, release))
                    hold, drop = release, True
                    break

            fingerprint = (method, path, json.dumps(params, sort_keys=True))
            if method == "POST" and idem_key:
                stored = self._idempotency.get(idem_key)
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        err = StripeAPIFailure(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters "
                            f"they were first used with. Try using a key other than '{idem_key}' if "
                            "you meant to execute a different request.",
                        )
                        return respond(err.status, err.body(), drop)
                    replay = _Response(stored.status, stored.body, dict(base_headers), drop)
                    replay.headers["Idempotent-Replayed"] = "true"
                    replay.headers["Original-Request"] = stored.request_id
                    return replay

            ctx = _Ctx(
                request_id=request_id,
                idempotency_key=idem_key,
                events=events,
                stripe_account=headers.get("stripe-account"),
            )
            try:
                status, payload = self._dispatch(method, path, params, ctx)
                store = True
            except StripeAPIFailure as err:
                status, payload, store = err.status, err.body(), err.store
            response = respond(status, payload, drop)
            response.hold = hold
            if method == "POST" and idem_key and store:
                self._idempotency[idem_key] = _StoredResult(fingerprint, status, response.body, request_id)
            return response

    def _check_auth(self, header: str | None) -> StripeAPIFailure | None:
        if not header or not header.startswith("Bearer "):
            return StripeAPIFailure(
                401,
                "invalid_request_error",
                "You did not provide an API key. Provide it in the Authorization header as a Bearer token.",
            )
        key = header[len("Bearer ") :].strip()
        ok = key == self._api_key if self._api_key is not None else key.startswith(("sk_test_", "rk_test_"))
        if not ok:
            return StripeAPIFailure(
                401,
                "invalid_request_error",
                f"Invalid API Key provided: {key[:12]}****",
                code="api_key_invalid",
            )
        return None

    _ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        ("POST", re.compile(r"/v1/accounts"), "_create_account"),
        ("GET", re.compile(r"/v1/accounts"), "_list_accounts"),
        ("GET", re.compile(r"/v1/accounts/(?P<id>[^/]+)"), "_get_account"),
        ("POST", re.compile(r"/v1/accounts/(?P<id>[^/]+)"), "_update_account"),
        ("POST", re.compile(r"/v1/account_links"), "_create_account_link"),
        ("POST", re.compile(r"/v1/transfers"), "_create_transfer"),
        ("GET", re.compile(r"/v1/transfers"), "_list_transfers"),
        ("GET", re.compile(r"/v1/transfers/(?P<id>[^/]+)"), "_get_transfer"),
        ("POST", re.compile(r"/v1/transfers/(?P<id>[^/]+)/reversals"), "_create_reversal"),
        ("GET", re.compile(r"/v1/transfers/(?P<id>[^/]+)/reversals"), "_list_reversals"),
        ("GET", re.compile(r"/v1/balance"), "_get_balance"),
        ("GET", re.compile(r"/v1/events"), "_list_events"),
        ("GET", re.compile(r"/v1/events/(?P<id>[^/]+)"), "_get_event"),
    ]

    def _dispatch(
        self, method: str, path: str, params: dict[str, Any], ctx: _Ctx
    ) -> tuple[int, dict[str, Any]]:
        for route_method, pattern, name in self._ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return 200, getattr(self, name)(params, ctx, **match.groupdict())
        raise StripeAPIFailure(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    # ----- accounts ----------------------------------------------------------

    def _sync_requirements(self, acct: dict[str, Any]) -> None:
        if acct.get("details_submitted") and acct.get("payouts_enabled"):
            acct["requirements"] = {
                "currently_due": [],
                "eventually_due": [],
                "past_due": [],
                "disabled_reason": None,
                "current_deadline": None,
            }
            acct["capabilities"] = dict.fromkeys(acct.get("capabilities", {}), "active")

    def _create_account(self, params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        account_type = _as_str(params, "type") or "express"
        if account_type not in ("express", "standard", "custom"):
            raise _invalid("Invalid type: must be one of express, standard, or custom", param="type")
        capabilities: dict[str, str] = {}
        requested = params.get("capabilities") or {}
        if not isinstance(requested, dict):
            raise _invalid("Invalid hash", param="capabilities")
        for name, spec in requested.items():
            if not isinstance(spec, dict) or "requested" not in spec:
                raise _invalid("Invalid hash", param=f"capabilities[{name}]")
            if _as_bool(spec["requested"], f"capabilities[{name}][requested]"):
                capabilities[name] = "inactive"
        extra = {k: v for k, v in params.items() if k not in ("type", "capabilities", "metadata", "expand")}
        acct = build_account_object(
            type=account_type,
            capabilities=capabilities,
            metadata=_merge_metadata({}, params.get("metadata")),
            **extra,
        )
        self._accounts[acct["id"]] = acct
        return copy.deepcopy(acct)

    def _get_account_obj(self, acct_id: str, param: str = "id") -> dict[str, Any]:
        acct = self._accounts.get(acct_id)
        if acct is None:
            raise _missing("account", acct_id, param)
        return acct

    def _get_account(self, params: dict[str, Any], ctx: _Ctx, id: str) -> dict[str, Any]:
        return copy.deepcopy(self._get_account_obj(id))

    def _list_accounts(self, params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        items = sorted(self._accounts.values(), key=lambda a: a["created"], reverse=True)
        return _list_object(items, params, "/v1/accounts")

    def _update_account(self, params: dict[str, Any], ctx: _Ctx, id: str) -> dict[str, Any]:
        acct = self._get_account_obj(id)
        before = copy.deepcopy(acct)
        new_metadata = _merge_metadata(acct["metadata"], params.get("metadata"))
        for key, value in params.items():
            if key in ("metadata", "expand", "capabilities", "type"):
                continue
            acct[key] = value
        acct["metadata"] = new_metadata
        diff = _diff(before, acct)
        if diff:
            ctx.events.append(
                self._new_event(
                    "account.updated",
                    acct,
                    diff,
                    account=id,
                    request_id=ctx.request_id,
                    idempotency_key=ctx.idempotency_key,
                )
            )
        return copy.deepcopy(acct)

    def _create_account_link(self, params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        _check_unknown(
            params,
            {"account", "refresh_url", "return_url", "type", "collect", "collection_options", "expand"},
        )
        account = _as_str(params, "account", required=True)
        link_type = _as_str(params, "type", required=True)
        if link_type not in ("account_onboarding", "account_update"):
            raise _invalid("Invalid type: must be one of account_onboarding or account_update", param="type")
        assert account is not None
        self._get_account_obj(account, param="account")
        query = {
            "return_url": _as_str(params, "return_url") or "",
            "refresh_url": _as_str(params, "refresh_url") or "",
        }
        created = _now()
        return {
            "object": "account_link",
            "created": created,
            "expires_at": created + 300,
            "url": f"{self.url}/_fake/onboard/{account}?{urllib.parse.urlencode(query)}",
        }

    def _onboard(self, acct_id: str, query: dict[str, Any]) -> _Response:
        """The 'hosted onboarding' page: finishing it enables the account and
        sends the browser back to return_url (or to refresh_url with ?refresh=1)."""
        return_url = query.get("return_url") or ""
        refresh_url = query.get("refresh_url") or ""
        if query.get("refresh") and refresh_url:
            return _Response(302, b"", {"Location": refresh_url})
        with self._lock:
            acct = self._accounts.get(acct_id)
            if acct is None:
                return _Response(404, b"unknown account", {"Content-Type": "text/plain"})
            before = copy.deepcopy(acct)
            acct["details_submitted"] = True
            acct["charges_enabled"] = True
            acct["payouts_enabled"] = True
            self._sync_requirements(acct)
            event = self._new_event("account.updated", acct, _diff(before, acct), account=acct_id)
        # The browser only comes back once Stripe has processed the form, so
        # deliver before redirecting.
        self._auto_deliver(event)
        if return_url:
            return _Response(302, b"", {"Location": return_url})
        return _Response(200, b"<html><body>Onboarding complete</body></html>", {"Content-Type": "text/html"})

    # ----- transfers -----------------------------------------------------

    def _create_transfer(self, params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        _check_unknown(
            params,
            {
                "amount",
                "currency",
                "destination",
                "description",
                "metadata",
                "source_transaction",
                "transfer_group",
                "expand",
            },
        )
        amount = _as_int(params, "amount", required=True)
        currency = (_as_str(params, "currency", required=True) or "").lower()
        destination = _as_str(params, "destination", required=True)
        assert amount is not None and destination is not None
        if amount <= 0:
            raise _invalid("Invalid positive integer", param="amount", code="parameter_invalid_integer")
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise _invalid(f"Invalid currency: {currency}", param="currency")
        metadata = _merge_metadata({}, params.get("metadata"))
        acct = self._accounts.get(destination)
        if acct is None:
            raise _invalid(
                f"No such destination: '{destination}'", param="destination", code="resource_missing"
            )
        if not acct.get("payouts_enabled"):
            raise _invalid(
                "Your destination account needs to have at least one of the following capabilities "
                "enabled: transfers, crypto_transfers, legacy_payments",
                param="destination",
                code="insufficient_capabilities_for_transfer",
            )
        available = self._balances.get(currency, 0)
        if available < amount:
            raise StripeAPIFailure(
                400,
                "invalid_request_error",
                "You have insufficient available funds in your Stripe account. Try adding funds "
                "directly to your available balance by creating Charges using the test card "
                "that bypasses the pending balance.",
                code="balance_insufficient",
                store=True,
            )
        self._balances[currency] = available - amount
        acct_balance = self._account_balances.setdefault(destination, {})
        acct_balance[currency] = acct_balance.get(currency, 0) + amount
        transfer = build_transfer(
            amount=amount,
            currency=currency,
            destination=destination,
            metadata=metadata,
            description=_as_str(params, "description"),
            source_transaction=_as_str(params, "source_transaction"),
            transfer_group=_as_str(params, "transfer_group"),
        )
        self._transfers.append(transfer)
        ctx.events.append(
            self._new_event(
                "transfer.created",
                transfer,
                None,
                request_id=ctx.request_id,
                idempotency_key=ctx.idempotency_key,
            )
        )
        return copy.deepcopy(transfer)

    def _get_transfer(self, params: dict[str, Any], ctx: _Ctx, id: str) -> dict[str, Any]:
        return copy.deepcopy(self._get_transfer_obj(id))

    def _list_transfers(self, params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        _check_unknown(
            params,
            {
                "created",
                "destination",
                "transfer_group",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            },
        )
        # Newest first by creation time, as Stripe sorts; a planted transfer may be older than the
        # ones made before it, and transfers of the same second keep the order they were made in.
        ordered = sorted(
            enumerate(self._transfers), key=lambda pair: (pair[1]["created"], pair[0]), reverse=True
        )
        items = [transfer for _, transfer in ordered]
        destination = _as_str(params, "destination")
        group = _as_str(params, "transfer_group")
        if destination:
            items = [t for t in items if t["destination"] == destination]
        if group:
            items = [t for t in items if t["transfer_group"] == group]
        created = _created_filter(params.get("created"))
        items = [t for t in items if created(t["created"])]
        return _list_object(items, params, "/v1/transfers")

    def _get_transfer_obj(self, transfer_id: str) -> dict[str, Any]:
        for transfer in self._transfers:
            if transfer["id"] == transfer_id:
                return transfer
        raise _missing("transfer", transfer_id)

    def _create_reversal(self, params: dict[str, Any], ctx: _Ctx, id: str) -> dict[str, Any]:
        _check_unknown(params, {"amount", "description", "metadata", "refund_application_fee", "expand"})
        transfer = self._get_transfer_obj(id)
        remaining = transfer["amount"] - transfer["amount_reversed"]
        if transfer["reversed"] or remaining <= 0:
            raise _invalid(f"Transfer {id} has already been reversed.", code="transfer_already_reversed")
        amount = _as_int(params, "amount")
        if amount is None:
            amount = remaining
        if amount <= 0:
            raise _invalid("Invalid positive integer", param="amount", code="parameter_invalid_integer")
        if amount > remaining:
            raise _invalid(
                f"Amount ({amount}) is greater than the unreversed amount ({remaining}) of transfer {id}.",
                param="amount",
            )
        currency = transfer["currency"]
        account = self._account_balances.setdefault(transfer["destination"], {})
        if account.get(currency, 0) < amount:
            # Stripe reverses a separate transfer only while the connected account can cover it.
            raise StripeAPIFailure(
                400,
                "invalid_request_error",
                "The destination account has insufficient funds to cover this reversal.",
                code="balance_insufficient",
                store=True,
            )
        account[currency] -= amount
        self._balances[currency] = self._balances.get(currency, 0) + amount
        reversal = {
            "id": new_id("trr"),
            "object": "transfer_reversal",
            "amount": amount,
            "balance_transaction": new_id("txn"),
            "created": _now(),
            "currency": currency,
            "destination_payment_refund": new_id("pyr"),
            "metadata": _merge_metadata({}, params.get("metadata")),
            "source_refund": None,
            "transfer": id,
        }
        self._reversals.setdefault(id, []).append(reversal)
        before = copy.deepcopy(transfer)
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
        _embed_reversals(transfer, self._reversals[id])
        ctx.events.append(
            self._new_event(
                "transfer.reversed",
                transfer,
                _diff(before, transfer),
                request_id=ctx.request_id,
                idempotency_key=ctx.idempotency_key,
            )
        )
        return copy.deepcopy(reversal)

    def _list_reversals(self, params: dict[str, Any], ctx: _Ctx, id: str) -> dict[str, Any]:
        self._get_transfer_obj(id)
        items = list(reversed(self._reversals.get(id, [])))
        return _list_object(items, params, f"/v1/transfers/{id}/reversals")

    # ----- balance -------------------------------------------------------

    def _get_balance(self, params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        if ctx.stripe_account:
            self._get_account_obj(ctx.stripe_account, param="Stripe-Account")
            balances = self._account_balances.get(ctx.stripe_account, {})
        else:
            balances = self._balances
        return {
            "object": "balance",
            "available": [
                {"amount": amount, "currency": cur, "source_types": {"card": amount}}
                for cur, amount in sorted(balances.items())
            ],
            "pending": [
                {"amount": 0, "currency": cur, "source_types": {"card": 0}} for cur in sorted(balances)
            ],
            "livemode": False,
        }

    # ----- events --------------------------------------------------------

    def _get_event(self, params: dict[str, Any], ctx: _Ctx, id: str) -> dict[str, Any]:
        for event in self._events:
            if event["id"] == id:
                return copy.deepcopy(event)
        raise _missing("event", id)

    def _list_events(self, params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        items = list(reversed(self._events))
        wanted = _as_str(params, "type")
        types = params.get("types")
        if wanted:
            if wanted.endswith(".*"):
                items = [e for e in items if e["type"].startswith(wanted[:-1])]
            else:
                items = [e for e in items if e["type"] == wanted]
        if isinstance(types, list):
            items = [e for e in items if e["type"] in types]
        return _list_object(items, params, "/v1/events")

    # ----- customers and their balance transactions (refer-a-friend credit, issue 16 item 4) -----
    # Kept in this section with its own routes; state is made on first use, so the constructor is
    # untouched. A negative balance is credit the customer can spend, as in Stripe.

    _ROUTES = [
        *_ROUTES,
        ("POST", re.compile(r"/v1/customers"), "_create_customer"),
        ("GET", re.compile(r"/v1/customers/(?P<id>[^/]+)"), "_get_customer"),
        (
            "POST",
            re.compile(r"/v1/customers/(?P<id>[^/]+)/balance_transactions"),
            "_create_customer_balance_transaction",
        ),
        (
            "GET",
            re.compile(r"/v1/customers/(?P<id>[^/]+)/balance_transactions"),
            "_list_customer_balance_transactions",
        ),
        (
            "GET",
            re.compile(r"/v1/customers/(?P<id>[^/]+)/balance_transactions/(?P<txn>[^/]+)"),
            "_get_customer_balance_transaction",
        ),
    ]

    def _customer_state(self) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """(customers by id, balance transactions by customer id, oldest first)."""
        with self._lock:
            customers = self.__dict__.setdefault("_customers", {})
            transactions = self.__dict__.setdefault("_customer_transactions", {})
        return customers, transactions

    def add_customer(self, customer_id: str | None = None, *, email: str | None = None, **fields: Any) -> str:
        """Create a customer directly (as if made in the dashboard); returns its id."""
        customers, _ = self._customer_state()
        customer_id = customer_id or new_id("cus")
        with self._lock:
            customers[customer_id] = {
                "id": customer_id,
                "object": "customer",
                "balance": 0,
                "created": _now(),
                "currency": None,
                "email": email,
                "livemode": False,
                "metadata": {},
                "name": None,
                **fields,
            }
        return customer_id

    def customer(self, customer_id: str) -> dict[str, Any]:
        customers, _ = self._customer_state()
        with self._lock:
            return copy.deepcopy(customers[customer_id])

    def balance_transactions(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's balance transactions, oldest first (copies)."""
        _, transactions = self._customer_state()
        with self._lock:
            return copy.deepcopy(transactions.get(customer_id, []))

    def _customer_obj(self, customer_id: str, param: str = "id") -> dict[str, Any]:
        customers, _ = self._customer_state()
        customer = customers.get(customer_id)
        if customer is None or customer.get("deleted"):
            raise _missing("customer", customer_id, param=param)
        return customer

    def _create_customer(self, params: dict[str, Any], ctx: _Ctx) -> dict[str, Any]:
        _check_unknown(params, {"email", "name", "description", "metadata", "balance", "expand"})
        balance = _as_int(params, "balance") or 0
        customer_id = self.add_customer(
            email=_as_str(params, "email"),
            name=_as_str(params, "name"),
            description=_as_str(params, "description"),
            metadata=_merge_metadata({}, params.get("metadata")),
            balance=balance,
        )
        return copy.deepcopy(self._customer_obj(customer_id))

    def _get_customer(self, params: dict[str, Any], ctx: _Ctx, id: str) -> dict[str, Any]:
        return copy.deepcopy(self._customer_obj(id))

    def _create_customer_balance_transaction(
        self, params: dict[str, Any], ctx: _Ctx, id: str
    ) -> dict[str, Any]:
        _check_unknown(params, {"amount", "currency", "description", "metadata", "expand"})
        customer = self._customer_obj(id, param="customer")
        amount = _as_int(params, "amount", required=True)
        currency = (_as_str(params, "currency", required=True) or "").lower()
        assert amount is not None
        if amount == 0:
            raise _invalid("The amount must not be zero.", param="amount", code="parameter_invalid_integer")
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise _invalid(f"Invalid currency: {currency}", param="currency")
        if customer["currency"] not in (None, currency):
            raise _invalid(
                f"The currency {currency} does not match the customer's currency {customer['currency']}.",
                param="currency",
            )
        customer["currency"] = currency
        customer["balance"] += amount
        _, transactions = self._customer_state()
        txn = {
            "id": new_id("cbtxn"),
            "object": "customer_balance_transaction",
            "amount": amount,
            "created": _now(),
            "credit_note": None,
            "currency": currency,
            "customer": id,
            "description": _as_str(params, "description"),
            "ending_balance": customer["balance"],
            "invoice": None,
            "livemode": False,
            "metadata": _merge_metadata({}, params.get("metadata")),
            "type": "adjustment",
        }
        transactions.setdefault(id, []).append(txn)
        return copy.deepcopy(txn)

    def _list_customer_balance_transactions(
        self, params: dict[str, Any], ctx: _Ctx, id: str
    ) -> dict[str, Any]:
        self._customer_obj(id, param="customer")
        _, transactions = self._customer_state()
        items = list(reversed(transactions.get(id, [])))
        return _list_object(items, params, f"/v1/customers/{id}/balance_transactions")

    def _get_customer_balance_transaction(
        self, params: dict[str, Any], ctx: _Ctx, id: str, txn: str
    ) -> dict[str, Any]:
        self._customer_obj(id, param="customer")
        _, transactions = self._customer_state()
        for item in transactions.get(id, []):
            if item["id"] == txn:
                return copy.deepcopy(item)
        raise _missing("customer balance transaction", txn)


@dataclass
class _Ctx:
    request_id: str
    idempotency_key: str | None
    events: list[dict[str, Any]]
    stripe_account: str | None = None


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe-style previous_attributes: old values of top-level keys that changed."""
    return {k: before.get(k) for k in after if before.get(k) != after.get(k)}


def _post(url: str, payload: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    # Never route loopback webhook traffic through an environment proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return 0, f"delivery failed: {reason}"


def _call_target(
    target: Callable[[bytes, dict[str, str]], Any], payload: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    result = target(payload, dict(headers))
    if isinstance(result, tuple):
        status, body = result
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        return int(status), str(body)
    status = getattr(result, "status_code", None)
    if status is None:
        status = getattr(result, "status", 200)
    content = getattr(result, "content", b"")
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return int(status), str(content)


# --------------------------------------------------------------------------
# Coupons, promotion codes, and checkout sessions and invoices that carry
# discounts (issue 16). Kept in this section and installed on FakeStripe
# below, with routes of their own, so other sections grow independently.
# Shapes follow the pinned API version: a promotion code points to its coupon
# through ``promotion: {"type": "coupon", "coupon": id}``; a checkout session
# lists ``discounts: [{"coupon", "promotion_code"}]`` and sums them in
# ``total_details.amount_discount``; an invoice lists discount *ids* in
# ``discounts`` (objects when expanded) and their amounts in
# ``total_discount_amounts``.
# --------------------------------------------------------------------------

_PROMOTION_CODE_CHARS = re.compile(r"[A-Za-z0-9-]{1,500}")
_PERCENT = re.compile(r"\d{1,3}(\.\d{1,2})?")


class _Discounts:
    """Endpoint methods and helpers, installed on FakeStripe (see _install_discounts)."""

    _DISCOUNT_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        ("POST", re.compile(r"/v1/coupons"), "_create_coupon"),
        ("GET", re.compile(r"/v1/coupons"), "_list_coupons"),
        ("GET", re.compile(r"/v1/coupons/(?P<id>[^/]+)"), "_get_coupon"),
        ("DELETE", re.compile(r"/v1/coupons/(?P<id>[^/]+)"), "_delete_coupon"),
        ("POST", re.compile(r"/v1/promotion_codes"), "_create_promotion_code"),
        ("GET", re.compile(r"/v1/promotion_codes"), "_list_promotion_codes"),
        ("GET", re.compile(r"/v1/promotion_codes/(?P<id>[^/]+)"), "_get_promotion_code"),
        ("POST", re.compile(r"/v1/promotion_codes/(?P<id>[^/]+)"), "_update_promotion_code"),
    ]

    # ----- state (created on first use, under the fake's lock) ------------

    def _discount_state(self) -> dict[str, Any]:
        state = self.__dict__.get("_discount_state_dict")
        if state is None:
            state = {"coupons": {}, "promotion_codes": []}  # promotion codes oldest first
            self.__dict__["_discount_state_dict"] = state
        return state

    @property
    def coupons(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._discount_state()["coupons"])

    @property
    def promotion_codes(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._discount_state()["promotion_codes"])

    # ----- coupons --------------------------------------------------------

    def _create_coupon(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        _check_unknown(
            params,
            {
                "id",
                "name",
                "percent_off",
                "amount_off",
                "currency",
                "duration",
                "duration_in_months",
                "max_redemptions",
                "redeem_by",
                "metadata",
                "expand",
            },
        )
        coupons = self._discount_state()["coupons"]
        coupon_id = _as_str(params, "id") or "".join(_rng.choice(_ID_ALPHABET) for _ in range(8))
        if coupon_id in coupons:
            raise _invalid("Coupon already exists.", param="id", code="resource_already_exists")
        percent_raw, amount_off = _as_str(params, "percent_off"), _as_int(params, "amount_off")
        if (percent_raw is None) == (amount_off is None):
            raise _invalid("You must pass exactly one of percent_off or amount_off.", param="percent_off")
        percent_off = None
        if percent_raw is not None:
            if not _PERCENT.fullmatch(percent_raw) or not 0 < float(percent_raw) <= 100:
                raise _invalid(
                    "Percent off must be greater than 0 and at most 100, with at most two decimals.",
                    param="percent_off",
                )
            percent_off = float(percent_raw)
        currency = (_as_str(params, "currency") or "").lower() or None
        if amount_off is not None:
            if amount_off <= 0:
                raise _invalid(
                    "Invalid positive integer", param="amount_off", code="parameter_invalid_integer"
                )
            if not currency or not re.fullmatch(r"[a-z]{3}", currency):
                raise _invalid("You must pass currency when passing amount_off.", param="currency")
        duration = _as_str(params, "duration") or "once"
        if duration not in ("once", "repeating", "forever"):
            raise _invalid(f"Invalid duration: {duration}", param="duration")
        months = _as_int(params, "duration_in_months")
        if duration == "repeating" and (months is None or months <= 0):
            raise _invalid(
                "duration_in_months is required when duration is repeating.", param="duration_in_months"
            )
        if duration != "repeating" and months is not None:
            raise _invalid(
                "duration_in_months is only allowed when duration is repeating.", param="duration_in_months"
            )
        coupon = {
            "id": coupon_id,
            "object": "coupon",
            "amount_off": amount_off,
            "created": _now(),
            "currency": currency if amount_off is not None else None,
            "duration": duration,
            "duration_in_months": months,
            "livemode": False,
            "max_redemptions": _as_int(params, "max_redemptions"),
            "metadata": _merge_metadata({}, params.get("metadata")),
            "name": _as_str(params, "name"),
            "percent_off": percent_off,
            "redeem_by": _as_int(params, "redeem_by"),
            "times_redeemed": 0,
            "valid": True,
        }
        coupons[coupon_id] = coupon
        return copy.deepcopy(coupon)

    def _coupon(self, coupon_id: str, param: str = "id") -> dict[str, Any]:
        coupon = self._discount_state()["coupons"].get(coupon_id)
        if coupon is None:
            raise _missing("coupon", coupon_id, param)
        return coupon

    def _get_coupon(self, params: dict[str, Any], ctx: Any, id: str) -> dict[str, Any]:
        return copy.deepcopy(self._coupon(id))

    def _list_coupons(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        items = sorted(self._discount_state()["coupons"].values(), key=lambda c: -c["created"])
        return _list_object(items, {k: v for k, v in params.items() if k != "expand"}, "/v1/coupons")

    def _delete_coupon(self, params: dict[str, Any], ctx: Any, id: str) -> dict[str, Any]:
        self._coupon(id)
        del self._discount_state()["coupons"][id]
        # A deleted coupon's promotion codes can no longer be redeemed.
        for promo in self._discount_state()["promotion_codes"]:
            if promo["promotion"]["coupon"] == id:
                promo["active"] = False
        return {"id": id, "object": "coupon", "deleted": True}

    # ----- promotion codes --------------------------------------------------

    def _active_code_taken(self, code: str, except_id: str | None = None) -> bool:
        return any(
            p["active"] and p["code"].lower() == code.lower() and p["id"] != except_id
            for p in self._discount_state()["promotion_codes"]
        )

    def _create_promotion_code(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        _check_unknown(
            params,
            {
                "code",
                "promotion",
                "active",
                "customer",
                "expires_at",
                "max_redemptions",
                "metadata",
                "restrictions",
                "expand",
            },
        )
        promotion = params.get("promotion")
        if not isinstance(promotion, dict):
            raise _invalid("Missing required param: promotion.", param="promotion", code="parameter_missing")
        if promotion.get("type") != "coupon":
            raise _invalid("Invalid promotion[type]: must be coupon", param="promotion[type]")
        coupon_id = promotion.get("coupon")
        if not isinstance(coupon_id, str) or not coupon_id:
            raise _invalid(
                "Missing required param: promotion[coupon].",
                param="promotion[coupon]",
                code="parameter_missing",
            )
        self._coupon(coupon_id, "promotion[coupon]")
        code = _as_str(params, "code")
        if code is None:
            code = "".join(_rng.choice(string.ascii_uppercase + string.digits) for _ in range(8))
        if not _PROMOTION_CODE_CHARS.fullmatch(code):
            raise _invalid(
                "Promotion codes can only contain alphanumeric characters and dashes.", param="code"
            )
        active = _as_bool(params["active"], "active") if "active" in params else True
        if active and self._active_code_taken(code):
            raise _invalid(
                f"An active promotion code with code: {code} already exists.",
                param="code",
                code="resource_already_exists",
            )
        promo = {
            "id": new_id("promo"),
            "object": "promotion_code",
            "active": active,
            "code": code,
            "created": _now(),
            "customer": _as_str(params, "customer"),
            "expires_at": _as_int(params, "expires_at"),
            "livemode": False,
            "max_redemptions": _as_int(params, "max_redemptions"),
            "metadata": _merge_metadata({}, params.get("metadata")),
            "promotion": {"type": "coupon", "coupon": coupon_id},
            "restrictions": {
                "currency_options": {},
                "first_time_transaction": False,
                "minimum_amount": None,
                "minimum_amount_currency": None,
            },
            "times_redeemed": 0,
        }
        self._discount_state()["promotion_codes"].append(promo)
        return copy.deepcopy(promo)

    def _promotion_code(self, promo_id: str, param: str = "id") -> dict[str, Any]:
        for promo in self._discount_state()["promotion_codes"]:
            if promo["id"] == promo_id:
                return promo
        raise _missing("promotion code", promo_id, param)

    def _get_promotion_code(self, params: dict[str, Any], ctx: Any, id: str) -> dict[str, Any]:
        return copy.deepcopy(self._promotion_code(id))

    def _update_promotion_code(self, params: dict[str, Any], ctx: Any, id: str) -> dict[str, Any]:
        _check_unknown(params, {"active", "metadata", "restrictions", "expand"})
        promo = self._promotion_code(id)
        if "active" in params:
            active = _as_bool(params["active"], "active")
            if active and not promo["active"]:
                if promo["promotion"]["coupon"] not in self._discount_state()["coupons"]:
                    raise _invalid("The coupon of this promotion code was deleted.", param="active")
                if self._active_code_taken(promo["code"], except_id=id):
                    raise _invalid(
                        f"An active promotion code with code: {promo['code']} already exists.",
                        param="active",
                        code="resource_already_exists",
                    )
            promo["active"] = active
        promo["metadata"] = _merge_metadata(promo["metadata"], params.get("metadata"))
        return copy.deepcopy(promo)

    def _list_promotion_codes(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        _check_unknown(
            params,
            {
                "active",
                "code",
                "coupon",
                "customer",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            },
        )
        items = list(reversed(self._discount_state()["promotion_codes"]))
        if "active" in params:
            active = _as_bool(params["active"], "active")
            items = [p for p in items if p["active"] == active]
        if code := _as_str(params, "code"):
            items = [p for p in items if p["code"].lower() == code.lower()]
        if coupon := _as_str(params, "coupon"):
            items = [p for p in items if p["promotion"]["coupon"] == coupon]
        if customer := _as_str(params, "customer"):
            items = [p for p in items if p["customer"] == customer]
        page_params = {k: v for k, v in params.items() if k in ("limit", "starting_after", "ending_before")}
        return _list_object(items, page_params, "/v1/promotion_codes")

    # ----- sessions and invoices that carry a discount ------------------------

    def _redeem(
        self, promotion_code: str, subtotal: int, currency: str
    ) -> tuple[dict[str, Any], dict[str, Any], int]:
        """(promotion code, coupon, discount amount) of one redemption; refused as Stripe refuses
        an inactive code or a coupon in another currency."""
        with self._lock:
            promo = self._promotion_code(promotion_code, "promotion_code")
            if not promo["active"]:
                raise _invalid("This promotion code is not active.", param="promotion_code")
            coupon = self._coupon(promo["promotion"]["coupon"], "promotion_code")
            if coupon["percent_off"] is not None:
                discount = int(subtotal * coupon["percent_off"] / 100 + 0.5)
            else:
                if coupon["currency"] != currency.lower():
                    raise _invalid("This coupon is in another currency.", param="promotion_code")
                discount = min(coupon["amount_off"], subtotal)
            promo["times_redeemed"] += 1
            coupon["times_redeemed"] += 1
            return copy.deepcopy(promo), copy.deepcopy(coupon), discount

    def checkout_session_with_discount(
        self, *, promotion_code: str, amount_subtotal: int, currency: str = "usd", **fields: Any
    ) -> dict[str, Any]:
        """A completed ``checkout.session`` in which the customer redeemed ``promotion_code`` (an id)."""
        promo, coupon, discount = self._redeem(promotion_code, amount_subtotal, currency)
        session = build_checkout_session(amount_total=amount_subtotal - discount, currency=currency, **fields)
        session["amount_subtotal"] = amount_subtotal
        session["discounts"] = [{"coupon": coupon["id"], "promotion_code": promo["id"]}]
        session["total_details"] = {"amount_discount": discount, "amount_shipping": 0, "amount_tax": 0}
        return session

    def invoice_with_discount(
        self,
        *,
        promotion_code: str,
        subtotal: int,
        currency: str = "usd",
        expand: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """A paid ``invoice`` with the promotion code's discount applied. ``discounts`` holds the
        discount's id as Stripe sends it, or (``expand``) the discount object."""
        promo, coupon, discount = self._redeem(promotion_code, subtotal, currency)
        invoice = build_invoice(amount_paid=subtotal - discount, currency=currency, **fields)
        discount_id = new_id("di")
        discount_object = {
            "id": discount_id,
            "object": "discount",
            "checkout_session": None,
            "customer": invoice.get("customer"),
            "end": None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": promo["id"],
            "source": {"type": "coupon", "coupon": coupon["id"]},
            "start": _now(),
            "subscription": invoice.get("subscription"),
        }
        invoice["subtotal"] = subtotal
        invoice["discounts"] = [discount_object if expand else discount_id]
        invoice["total_discount_amounts"] = [{"amount": discount, "discount": discount_id}]
        return invoice


def _install_discounts() -> None:
    for name, value in vars(_Discounts).items():
        if not name.startswith("__") and name != "_DISCOUNT_ROUTES":
            setattr(FakeStripe, name, value)
    FakeStripe._ROUTES.extend(_Discounts._DISCOUNT_ROUTES)


_install_discounts()
