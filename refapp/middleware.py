from django.http import HttpRequest, HttpResponse


class SecurityHeadersMiddleware:
    """A strict CSP for our own pages; the tracker and API responses are not documents."""

    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", self.CSP)
        response.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        # A throttled API authentication says when to come back (affiliates/auth.py).
        retry_after = request.META.get("refapp.retry_after")
        if response.status_code == 429 and retry_after:
            response.setdefault("Retry-After", str(retry_after))
        return response
