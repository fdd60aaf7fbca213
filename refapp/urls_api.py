"""The public API's routes and its contract: every operation, and every status it can answer.

The schemas come from beside the code that writes each JSON shape; this table only says which
shape each operation reads and answers. It is wiring (it imports every app), next to the routes
it describes; refapp/openapi.py assembles the document from it, and the contract test
(tests/refapp/test_api_contract.py and the API test client) holds every response to it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import path

from affiliates import api as affiliates_api
from affiliates.views import api as affiliates_views
from commissions import api as commissions_api
from commissions import reports as commissions_reports
from commissions.views import api as commissions_views
from payouts import api as payouts_api
from payouts import privacy
from payouts.views import api as payouts_views
from payouts.views import privacy as privacy_views
from refapp.api import DATE_RANGE_PARAMETERS, LIST_PARAMETERS, MAX_RANGE_DAYS, list_schema
from tracking import api as tracking_api
from tracking.services import CLICK_REQUEST_SCHEMA, CLICK_RESPONSE_SCHEMA
from tracking.views import api as tracking_views
from tracking.views import public as tracking_public
from webhooks import api as webhooks_api
from webhooks.views import api as webhooks_views

from . import views
from .openapi import Operation, Response, build_document

SCHEMAS: dict[str, Any] = {
    "Affiliate": affiliates_api.AFFILIATE_SCHEMA,
    "Referrer": affiliates_api.REFERRER_SCHEMA,
    "FriendReward": affiliates_api.FRIEND_REWARD_SCHEMA,
    "CommissionRule": commissions_api.RULE_SCHEMA,
    "Commission": commissions_api.COMMISSION_SCHEMA,
    "EventResult": commissions_api.EVENT_RESPONSE_SCHEMA,
    "RefundResult": commissions_api.REFUND_RESPONSE_SCHEMA,
    # --- reads and reports (issue 17 part B) ---
    "Referral": tracking_api.REFERRAL_SCHEMA,
    "Event": tracking_api.EVENT_SCHEMA,
    "Click": tracking_api.CLICK_SCHEMA,
    "Payout": payouts_api.PAYOUT_SCHEMA,
    "ReportSummary": commissions_reports.REPORT_SCHEMA,
    "PrivacyExport": privacy.PRIVACY_EXPORT_SCHEMA,
    "PrivacyErasure": privacy.PRIVACY_ERASE_RESPONSE_SCHEMA,
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(name: str) -> dict[str, Any]:
    return list_schema(_ref(name))


# Statuses of an endpoint that authenticates a key and reads a JSON body.
KEYED_BODY = (400, 401, 413, 429)
KEYED_READ = (401, 429)
COMMISSIONS_FILTERS = [
    commissions_api.COMMISSION_STATUS_PARAMETER,
    affiliates_api.AFFILIATE_FILTER_PARAMETER,
    {"name": "order_id", "in": "query", "schema": {"type": "string"}},
    *DATE_RANGE_PARAMETERS,
]

READ_FILTERS = [affiliates_api.AFFILIATE_FILTER_PARAMETER, *DATE_RANGE_PARAMETERS]

OPERATIONS: list[Operation] = [
    Operation(
        "/api/v1/track/click",
        "post",
        "Report a click from the tracker (no key; CORS limited to the program's origins).",
        {202: Response("Accepted; attributed says whether a click was recorded", CLICK_RESPONSE_SCHEMA)},
        errors=(400, 403, 404, 413, 429),
        request=CLICK_REQUEST_SCHEMA,
        secured=False,
    ),
    Operation(
        "/api/v1/track/click",
        "options",
        "CORS preflight of the click beacon.",
        {204: Response("Preflight answered")},
        secured=False,
    ),
    Operation(
        "/api/v1/events",
        "post",
        "Report a conversion (sale, signup, renewal, …). Idempotent by order_id.",
        {
            201: Response("Recorded", _ref("EventResult")),
            200: Response("Replay of a known order_id: the body of the first answer", _ref("EventResult")),
        },
        errors=(*KEYED_BODY, 403),
        request=commissions_api.EVENT_REQUEST_SCHEMA,
    ),
    Operation(
        "/api/v1/refunds",
        "post",
        "Refund an order in full or in part; commissions are reversed in proportion.",
        {
            201: Response("Refund applied", _ref("RefundResult")),
            200: Response("Replay: nothing changed, the body of the first answer", _ref("RefundResult")),
        },
        errors=(*KEYED_BODY, 403, 404),
        request=commissions_api.REFUND_REQUEST_SCHEMA,
    ),
    Operation(
        "/api/v1/affiliates",
        "get",
        "List affiliates, newest first.",
        {200: Response("A page", _list("Affiliate"))},
        errors=(400, *KEYED_READ),
        parameters=[*LIST_PARAMETERS, *affiliates_api.AFFILIATE_LIST_PARAMETERS],
    ),
    Operation(
        "/api/v1/affiliates",
        "post",
        "Create an affiliate.",
        {201: Response("Created", _ref("Affiliate"))},
        errors=(*KEYED_BODY, 403, 409),
        request=affiliates_api.AFFILIATE_CREATE_SCHEMA,
    ),
    Operation(
        "/api/v1/affiliates/{id}",
        "get",
        "Read one affiliate, by its id or its code.",
        {200: Response("The affiliate", _ref("Affiliate"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/affiliates/{id}",
        "patch",
        "Change an affiliate's status (with a reason), group, code or PayPal payout email, all or nothing.",
        {200: Response("Updated", _ref("Affiliate"))},
        errors=(*KEYED_BODY, 403, 404, 409),
        request=affiliates_api.AFFILIATE_UPDATE_SCHEMA,
    ),
    Operation(
        "/api/v1/referrers",
        "post",
        "Enrol a customer as a referrer (refer-a-friend), with no application; idempotent by customer_id.",
        {
            201: Response("Enrolled", _ref("Referrer")),
            200: Response("Already enrolled: the same referrer, link and code as before", _ref("Referrer")),
        },
        errors=(*KEYED_BODY, 409),
        request=affiliates_api.REFERRER_CREATE_SCHEMA,
    ),
    Operation(
        "/api/v1/friend-rewards",
        "get",
        "List the friend rewards: the program's and its groups' (what referred visitors get).",
        {200: Response("A page", _list("FriendReward"))},
        errors=(400, *KEYED_READ),
        parameters=LIST_PARAMETERS,
    ),
    Operation(
        "/api/v1/friend-rewards",
        "post",
        "Set the program's friend reward, or a group's (created, or changed in place); a live key only.",
        {200: Response("Changed", _ref("FriendReward")), 201: Response("Created", _ref("FriendReward"))},
        errors=(*KEYED_BODY, 403, 404, 409),
        request=affiliates_api.FRIEND_REWARD_REQUEST_SCHEMA,
    ),
    Operation(
        "/api/v1/friend-rewards/{id}",
        "get",
        "Read one friend reward.",
        {200: Response("The reward", _ref("FriendReward"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/friend-rewards/{id}",
        "delete",
        "Stop offering a friend reward (its promotion codes are deactivated in Stripe); a live key only.",
        {200: Response("Stopped", _ref("FriendReward"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/commission-rules",
        "get",
        "List commission rules.",
        {200: Response("A page", _list("CommissionRule"))},
        errors=(400, *KEYED_READ),
        parameters=[
            *LIST_PARAMETERS,
            {"name": "active", "in": "query", "schema": {"enum": ["true", "false"]}},
        ],
    ),
    Operation(
        "/api/v1/commission-rules",
        "post",
        "Create a commission rule (percent or fixed; scoped to the program, a group or an affiliate).",
        {201: Response("Created", _ref("CommissionRule"))},
        errors=(*KEYED_BODY, 403, 404),
        request=commissions_api.RULE_REQUEST_SCHEMA,
    ),
    Operation(
        "/api/v1/commission-rules/{id}",
        "get",
        "Read one rule.",
        {200: Response("The rule", _ref("CommissionRule"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/commission-rules/{id}",
        "delete",
        "Deactivate a rule (commissions keep pointing at it).",
        {200: Response("Deactivated", _ref("CommissionRule"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/commissions",
        "get",
        "List commissions with their explanation.",
        {200: Response("A page", _list("Commission"))},
        errors=(400, *KEYED_READ),
        parameters=[*LIST_PARAMETERS, *COMMISSIONS_FILTERS],
    ),
    # --- reads and reports (issue 17 part B): every list filters by affiliate id or code and by
    # from/to days; an unknown filter value is a 400 -----------------------------------------
    Operation(
        "/api/v1/referrals",
        "get",
        "List referrals (customers tied to an affiliate), newest first.",
        {200: Response("A page", _list("Referral"))},
        errors=(400, *KEYED_READ),
        parameters=[*LIST_PARAMETERS, *READ_FILTERS, *tracking_api.REFERRAL_FILTERS],
    ),
    Operation(
        "/api/v1/events",
        "get",
        "List reported events (conversions), attributed or not, newest first.",
        {200: Response("A page", _list("Event"))},
        errors=(400, *KEYED_READ),
        parameters=[*LIST_PARAMETERS, *READ_FILTERS, *tracking_api.EVENT_FILTERS],
    ),
    Operation(
        "/api/v1/clicks",
        "get",
        "List clicks of the key's mode's affiliates, newest first (no address or its hash).",
        {200: Response("A page", _list("Click"))},
        errors=(400, *KEYED_READ),
        parameters=[*LIST_PARAMETERS, *READ_FILTERS, *tracking_api.CLICK_FILTERS],
    ),
    Operation(
        "/api/v1/payouts",
        "get",
        "List payouts, newest first.",
        {200: Response("A page", _list("Payout"))},
        errors=(400, *KEYED_READ),
        parameters=[*LIST_PARAMETERS, *READ_FILTERS, payouts_api.PAYOUT_STATUS_PARAMETER],
    ),
    Operation(
        "/api/v1/payouts/{id}",
        "get",
        "Read one payout.",
        {200: Response("The payout", _ref("Payout"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/reports/summary",
        "get",
        "Clicks, unique visitors, conversions, revenue and commissions by status over a range of "
        f"UTC days (at most {MAX_RANGE_DAYS}), per day, affiliate, campaign, sub id or source.",
        {200: Response("The report", _ref("ReportSummary"))},
        errors=(400, *KEYED_READ),
        parameters=[
            {**DATE_RANGE_PARAMETERS[0], "required": True},
            {**DATE_RANGE_PARAMETERS[1], "required": True},
            {
                "name": "group_by",
                "in": "query",
                "schema": {"type": "string", "enum": list(commissions_reports.GROUP_BY), "default": "day"},
                "description": "source is utm_source, else the referrer's host.",
            },
        ],
    ),
    # --- end of reads and reports ---
    Operation(
        "/api/v1/privacy/export",
        "get",
        "Everything stored about an affiliate or a referred customer (exactly one selector).",
        {200: Response("The data", _ref("PrivacyExport"))},
        errors=(400, *KEYED_READ, 404),
        parameters=privacy.PRIVACY_SELECTOR_PARAMETERS,
    ),
    Operation(
        "/api/v1/privacy/erase",
        "post",
        "Erase an affiliate's or a referred customer's personal data; money rows are kept.",
        {200: Response("Erased: rows changed per kind", _ref("PrivacyErasure"))},
        errors=(*KEYED_BODY, 404),
        request=privacy.PRIVACY_ERASE_REQUEST_SCHEMA,
    ),
    Operation(
        "/api/v1/openapi.json",
        "get",
        "This document.",
        {200: Response("OpenAPI 3.1", {"type": "object", "required": ["openapi", "paths"]})},
        secured=False,
    ),
    Operation(
        "/api/v1/docs",
        "get",
        "This document rendered for people.",
        {200: Response("HTML", {"type": "string"}, "text/html")},
        secured=False,
    ),
]


# --- outgoing webhooks (/api/v1/openapi.json) ---------------------------------------------------------
SCHEMAS.update(
    {
        "WebhookEndpoint": webhooks_api.ENDPOINT_SCHEMA,
        "WebhookEndpointWithSecret": webhooks_api.ENDPOINT_WITH_SECRET_SCHEMA,
        "WebhookDelivery": webhooks_api.DELIVERY_SCHEMA,
        "WebhookMessage": webhooks_api.MESSAGE_SCHEMA,
    }
)
OPERATIONS += [
    Operation(
        "/api/v1/webhook-endpoints",
        "get",
        "List the webhook endpoints of the key's program and mode.",
        {200: Response("A page", _list("WebhookEndpoint"))},
        errors=(400, *KEYED_READ),
        parameters=LIST_PARAMETERS,
    ),
    Operation(
        "/api/v1/webhook-endpoints",
        "post",
        "Create a webhook endpoint; its signing secret is in this answer only.",
        {201: Response("Created", _ref("WebhookEndpointWithSecret"))},
        errors=KEYED_BODY,
        request=webhooks_api.ENDPOINT_CREATE_SCHEMA,
    ),
    Operation(
        "/api/v1/webhook-endpoints/{id}",
        "get",
        "Read one webhook endpoint.",
        {200: Response("The endpoint", _ref("WebhookEndpoint"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/webhook-endpoints/{id}",
        "patch",
        "Change an endpoint's URL, events, description, or turn it on or off.",
        {200: Response("Updated", _ref("WebhookEndpoint"))},
        errors=(*KEYED_BODY, 403, 404),
        request=webhooks_api.ENDPOINT_UPDATE_SCHEMA,
    ),
    Operation(
        "/api/v1/webhook-endpoints/{id}",
        "delete",
        "Delete an endpoint with its messages and delivery log.",
        {200: Response("Deleted", _ref("WebhookEndpoint"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        "post",
        "A new signing secret, shown in this answer only; the previous one also signs for 24 hours.",
        {200: Response("Rotated", _ref("WebhookEndpointWithSecret"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/webhook-deliveries",
        "get",
        "The delivery log: every attempt, newest first.",
        {200: Response("A page", _list("WebhookDelivery"))},
        errors=(400, *KEYED_READ),
        parameters=[*LIST_PARAMETERS, *webhooks_api.DELIVERY_LIST_PARAMETERS],
    ),
    Operation(
        "/api/v1/webhook-deliveries/{id}/retry",
        "post",
        "Send the message of this delivery again (same webhook-id, fresh retry schedule).",
        {202: Response("Queued", _ref("WebhookMessage"))},
        errors=(*KEYED_READ, 403, 404),
    ),
]


def openapi_document(base_url: str | None = None) -> dict[str, Any]:
    return build_document(base_url or settings.BASE_URL, OPERATIONS, SCHEMAS)


_DOC = {"document": openapi_document}
urlpatterns = [
    path("api/v1/track/click", tracking_public.track_click, name="api-track-click"),
    path("api/v1/events", commissions_views.events, name="api-events"),
    path("api/v1/refunds", commissions_views.refunds, name="api-refunds"),
    path("api/v1/affiliates", affiliates_views.affiliates, name="api-affiliates"),
    path("api/v1/affiliates/<str:public_id>", affiliates_views.affiliate_detail, name="api-affiliate-detail"),
    path("api/v1/referrers", affiliates_views.referrers, name="api-referrers"),
    path("api/v1/friend-rewards", affiliates_views.friend_rewards, name="api-friend-rewards"),
    path(
        "api/v1/friend-rewards/<str:public_id>",
        affiliates_views.friend_reward_detail,
        name="api-friend-reward-detail",
    ),
    path("api/v1/commission-rules", commissions_views.commission_rules, name="api-commission-rules"),
    path(
        "api/v1/commission-rules/<str:public_id>",
        commissions_views.commission_rule_detail,
        name="api-commission-rule-detail",
    ),
    path("api/v1/commissions", commissions_views.commissions, name="api-commissions"),
    # --- reads and reports (issue 17 part B) ---
    path("api/v1/referrals", tracking_views.referrals, name="api-referrals"),
    path("api/v1/clicks", tracking_views.clicks, name="api-clicks"),
    path("api/v1/payouts", payouts_views.payouts, name="api-payouts"),
    path("api/v1/payouts/<str:public_id>", payouts_views.payout_detail, name="api-payout-detail"),
    path("api/v1/reports/summary", commissions_views.report_summary, name="api-report-summary"),
    # --- end of reads and reports ---
    path("api/v1/privacy/export", privacy_views.export, name="api-privacy-export"),
    path("api/v1/privacy/erase", privacy_views.erase, name="api-privacy-erase"),
    path("api/v1/openapi.json", views.openapi_json, _DOC, name="api-openapi"),
    path("api/v1/docs", views.api_docs, _DOC, name="api-docs"),
]
urlpatterns += [
    path("api/v1/webhook-endpoints", webhooks_views.endpoints, name="api-webhook-endpoints"),
    path(
        "api/v1/webhook-endpoints/<str:public_id>",
        webhooks_views.endpoint_detail,
        name="api-webhook-endpoint-detail",
    ),
    path(
        "api/v1/webhook-endpoints/<str:public_id>/rotate-secret",
        webhooks_views.endpoint_rotate_secret,
        name="api-webhook-endpoint-rotate-secret",
    ),
    path("api/v1/webhook-deliveries", webhooks_views.deliveries, name="api-webhook-deliveries"),
    path(
        "api/v1/webhook-deliveries/<str:public_id>/retry",
        webhooks_views.delivery_retry,
        name="api-webhook-delivery-retry",
    ),
]
