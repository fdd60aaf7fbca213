from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, QueryDict

from .api import error_response, pairs_problem, text_problem


class SecurityHeadersMiddleware:
    """A strict CSP for our own pages; the tracker and API responses are not documents."""

    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )
    REFERRER_POLICY = "strict-origin-when-cross-origin"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", self.CSP)
        response.setdefault("Referrer-Policy", self.REFERRER_POLICY)
        return response


class InputGateMiddleware:
    """The input gate (docs/architecture.md, "Security") for what reaches Django outside a JSON body: the path, the query
    string and form fields. A NUL character or an unpaired surrogate in any of them answers 400
    before a view runs (a NUL would otherwise reach a query and fail in the database as a 500):
    the API's JSON error shape on /api/ and /webhooks/, a plain 400 page elsewhere. JSON bodies
    are gated by refapp.api.loads_json; the WSGI fast path calls the same helpers."""

    JSON_PREFIXES = ("/api/", "/webhooks/")
    FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = self.problem(request)
        if problem is None:
            return self.get_response(request)
        name, reason = problem
        if request.path_info.startswith(self.JSON_PREFIXES):
            return error_response(400, "invalid_request", f"{name}: {reason}", {name: [reason]})
        return HttpResponse(
            f"Bad request: {name}: {reason}\n", status=400, content_type="text/plain; charset=utf-8"
        )

    def problem(self, request: HttpRequest) -> tuple[str, str] | None:
        reason = text_problem(request.path_info)
        if reason:
            return "path", reason
        problem = pairs_problem(_pairs(request.GET))
        if problem or request.method != "POST":
            return problem
        # Forms only: JSON and other bodies are the view's to read (the API's through loads_json,
        # the Stripe webhook's raw for its signature), and Django parses no other type into POST.
        if request.content_type not in self.FORM_TYPES or request.path_info.startswith("/webhooks/"):
            return None
        return pairs_problem(_pairs(request.POST))


def _pairs(data: QueryDict) -> Iterator[tuple[str, str]]:
    for key, values in data.lists():
        for value in values:
            yield key, value
