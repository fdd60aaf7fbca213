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
from commissions.views import api as commissions_views
from payouts import privacy
from payouts.views import api as payouts_views
from refapp.api import LIST_PARAMETERS, list_schema
from tracking.services import CLICK_REQUEST_SCHEMA, CLICK_RESPONSE_SCHEMA
from tracking.views import public as tracking_public

from . import views
from .openapi import Operation, Response, build_document

SCHEMAS: dict[str, Any] = {
    "Affiliate": affiliates_api.AFFILIATE_SCHEMA,
    "CommissionRule": commissions_api.RULE_SCHEMA,
    "Commission": commissions_api.COMMISSION_SCHEMA,
    "EventResult": commissions_api.EVENT_RESPONSE_SCHEMA,
    "RefundResult": commissions_api.REFUND_RESPONSE_SCHEMA,
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
    {"name": "affiliate", "in": "query", "schema": {"type": "string"}, "description": "An affiliate id."},
    {"name": "order_id", "in": "query", "schema": {"type": "string"}},
]

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
        "Read one affiliate.",
        {200: Response("The affiliate", _ref("Affiliate"))},
        errors=(*KEYED_READ, 403, 404),
    ),
    Operation(
        "/api/v1/affiliates/{id}",
        "patch",
        "Change an affiliate's status (with a reason) or group.",
        {200: Response("Updated", _ref("Affiliate"))},
        errors=(*KEYED_BODY, 403, 404, 409),
        request=affiliates_api.AFFILIATE_UPDATE_SCHEMA,
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


def openapi_document(base_url: str | None = None) -> dict[str, Any]:
    return build_document(base_url or settings.BASE_URL, OPERATIONS, SCHEMAS)


_DOC = {"document": openapi_document}
urlpatterns = [
    path("api/v1/track/click", tracking_public.track_click, name="api-track-click"),
    path("api/v1/events", commissions_views.events, name="api-events"),
    path("api/v1/refunds", commissions_views.refunds, name="api-refunds"),
    path("api/v1/affiliates", affiliates_views.affiliates, name="api-affiliates"),
    path("api/v1/affiliates/<str:public_id>", affiliates_views.affiliate_detail, name="api-affiliate-detail"),
    path("api/v1/commission-rules", commissions_views.commission_rules, name="api-commission-rules"),
    path(
        "api/v1/commission-rules/<str:public_id>",
        commissions_views.commission_rule_detail,
        name="api-commission-rule-detail",
    ),
    path("api/v1/commissions", commissions_views.commissions, name="api-commissions"),
    path("api/v1/privacy/export", payouts_views.export, name="api-privacy-export"),
    path("api/v1/privacy/erase", payouts_views.erase, name="api-privacy-erase"),
    path("api/v1/openapi.json", views.openapi_json, _DOC, name="api-openapi"),
    path("api/v1/docs", views.api_docs, _DOC, name="api-docs"),
]
