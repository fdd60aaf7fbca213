"""GET /t.js and GET /go/… answer the same through the WSGI fast path as through Django's view.

Each request is sent twice, once to the production callable (the fast path in front of Django) and
once to Django's own WSGIHandler behind it, and the two answers must match: status, every header
(names compared case-insensitively) and the bytes; for /go/, the click row too.
"""

from __future__ import annotations

import gzip
import io
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import brotli
import pytest

from refapp import ratelimit
from refapp.fastpath import wsgi_application
from refapp.tracker import accepted_coding, tracker_bundle
from tests.conftest import keep_test_connection, production_application
from tests.factories import AffiliateFactory
from tracking.models import Click

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
DIGEST = tracker_bundle()[1]


def environ(method: str, path: str, query: str = "", **headers) -> dict:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": "0",
        **headers,
    }


def answer(app, env: dict) -> tuple[int, dict[str, str], bytes]:
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers

    content = keep_test_connection(app)(dict(env, **{"wsgi.input": io.BytesIO(b"")}), start_response)[0]
    headers = {name.lower(): value for name, value in captured["headers"]}
    assert len(headers) == len(captured["headers"]), captured["headers"]  # no header sent twice
    # A page Django renders (the designed 404) carries a fresh CSRF token in its cookie and in the
    # body's hx-headers on every answer: compare everything but the token's random value.
    if "set-cookie" in headers:
        # The token is random per answer, its expiry is a year from the second it was set.
        cookie = re.sub(r"csrftoken=\w+", "csrftoken=TOKEN", headers["set-cookie"])
        headers["set-cookie"] = re.sub(r"expires=[^;]+", "expires=WHEN", cookie)
    content = re.sub(rb'"X-CSRFToken": "\w+"', b'"X-CSRFToken": "TOKEN"', content)
    return int(captured["status"].split()[0]), headers, content


def both(env: dict, fast_app=None):
    fast_app = fast_app or production_application()
    return answer(fast_app, env), answer(fast_app.app, env)  # .app: Django's WSGIHandler


# --- GET /t.js -------------------------------------------------------------------------------------

TRACKER_CASES = {
    "plain": ("GET", "", {}),
    "versioned": ("GET", f"v={DIGEST}", {}),
    "old version": ("GET", "v=0123456789ab", {}),
    "version given twice, the last counts": ("GET", f"v=old&v={DIGEST}", {}),
    "other query": ("GET", "utm_source=x", {}),
    "gzip": ("GET", "", {"HTTP_ACCEPT_ENCODING": "gzip"}),
    "br": ("GET", f"v={DIGEST}", {"HTTP_ACCEPT_ENCODING": "br"}),
    "a browser": ("GET", f"v={DIGEST}", {"HTTP_ACCEPT_ENCODING": "gzip, deflate, br, zstd"}),
    "gzip refused": ("GET", "", {"HTTP_ACCEPT_ENCODING": "gzip;q=0"}),
    "br refused": ("GET", "", {"HTTP_ACCEPT_ENCODING": "br;q=0, gzip;q=0.5"}),
    "everything refused": ("GET", "", {"HTTP_ACCEPT_ENCODING": "*;q=0"}),
    "star": ("GET", "", {"HTTP_ACCEPT_ENCODING": "*"}),
    "x-gzip": ("GET", "", {"HTTP_ACCEPT_ENCODING": "x-gzip"}),
    "deflate only": ("GET", "", {"HTTP_ACCEPT_ENCODING": "deflate"}),
    "matching etag": ("GET", "", {"HTTP_IF_NONE_MATCH": f'"{DIGEST}"'}),
    "matching gzip etag": (
        "GET",
        "",
        {"HTTP_IF_NONE_MATCH": f'"{DIGEST}-gz"', "HTTP_ACCEPT_ENCODING": "gzip"},
    ),
    "etag of another coding": (
        "GET",
        "",
        {"HTTP_IF_NONE_MATCH": f'"{DIGEST}"', "HTTP_ACCEPT_ENCODING": "br"},
    ),
    "weak etag in a list": (
        "GET",
        f"v={DIGEST}",
        {"HTTP_IF_NONE_MATCH": f'"x", W/"{DIGEST}-br"', "HTTP_ACCEPT_ENCODING": "gzip, br"},
    ),
    "star etag": ("GET", "", {"HTTP_IF_NONE_MATCH": "*"}),
    "stale etag": ("GET", "", {"HTTP_IF_NONE_MATCH": '"0123456789ab"'}),
    "head": ("HEAD", "", {}),
    "head br": ("HEAD", f"v={DIGEST}", {"HTTP_ACCEPT_ENCODING": "br"}),
    "head matching": ("HEAD", "", {"HTTP_IF_NONE_MATCH": f'"{DIGEST}"'}),
    "nul in the query": ("GET", "x=%00", {}),
    "host not allowed": ("GET", "", {"HTTP_HOST": "evil.example"}),
    "post": ("POST", "", {}),
}


@pytest.mark.parametrize("case", list(TRACKER_CASES))
def test_tracker_answers_alike_through_both_doors(case):
    method, query, headers = TRACKER_CASES[case]
    fast, slow = both(environ(method, "/t.js", query, **headers))
    assert fast == slow


def test_tracker_answers_alike_over_https_with_hsts_and_redirects(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    app = wsgi_application()  # Django's middleware reads these settings when it is built
    fast, slow = both(environ("GET", "/t.js", HTTP_X_FORWARDED_PROTO="https", HTTP_ACCEPT_ENCODING="br"), app)
    assert fast == slow and fast[0] == 200
    assert fast[1]["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    fast, slow = both(environ("GET", "/t.js"), app)  # plain HTTP: redirected to HTTPS
    assert fast == slow and fast[0] == 301


def test_tracker_headers():
    status, headers, body = answer(production_application(), environ("GET", "/t.js", f"v={DIGEST}"))
    assert status == 200 and body == tracker_bundle()[0]
    assert headers == {
        "content-type": "application/javascript; charset=utf-8",
        "content-length": str(len(body)),
        "etag": f'"{DIGEST}"',
        "cache-control": "public, max-age=31536000, immutable",
        "vary": "Accept-Encoding",
        "access-control-allow-origin": "*",
        "cross-origin-resource-policy": "cross-origin",
        "referrer-policy": "strict-origin-when-cross-origin",
        "x-content-type-options": "nosniff",
        "cross-origin-opener-policy": "same-origin",
        "x-frame-options": "DENY",
    }


@pytest.mark.parametrize(("coding", "decompress"), [("gzip", gzip.decompress), ("br", brotli.decompress)])
def test_compressed_tracker_decompresses_to_the_minified_script(coding, decompress):
    status, headers, body = answer(
        production_application(), environ("GET", "/t.js", HTTP_ACCEPT_ENCODING=coding)
    )
    assert status == 200 and headers["content-encoding"] == coding
    assert decompress(body) == tracker_bundle()[0]
    assert len(body) < len(tracker_bundle()[0]) and headers["content-length"] == str(len(body))
    assert headers["etag"] == f'"{DIGEST}-{"gz" if coding == "gzip" else "br"}"'


def test_not_modified_and_head_carry_no_body_but_the_length():
    status, headers, body = answer(
        production_application(),
        environ("GET", "/t.js", HTTP_IF_NONE_MATCH=f'"{DIGEST}-br"', HTTP_ACCEPT_ENCODING="br"),
    )
    assert (status, body) == (304, b"")
    assert "content-type" not in headers and "content-encoding" not in headers
    assert headers["etag"] == f'"{DIGEST}-br"' and headers["vary"] == "Accept-Encoding"
    status, head_headers, body = answer(
        production_application(), environ("HEAD", "/t.js", HTTP_ACCEPT_ENCODING="br")
    )
    assert (status, body) == (200, b"") and head_headers["content-length"] == headers["content-length"]


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("", "identity"),
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),
        ("br;q=0.1, gzip;q=1", "br"),
        ("br;q=0, gzip", "gzip"),
        ("BR;Q=0, GZIP", "gzip"),
        ("gzip;q=0", "identity"),
        ("*", "br"),
        ("*;q=0, gzip", "gzip"),
        ("br;q=0, *", "gzip"),
        ("gzip;q=0.000", "identity"),
        ("gzip;q=nope", "identity"),
        ("identity;q=0", "identity"),
        (" , ;, gzip ; q=0.5", "gzip"),
    ],
)
def test_accept_encoding(accept, coding):
    assert accepted_coding(accept) == coding


def test_tracker_never_reaches_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert answer(production_application(), environ("GET", "/t.js"))[0] == 200


# --- GET /go/… -----------------------------------------------------------------------------------

CLICK_FIELDS = (
    "program_id",
    "affiliate_id",
    "landing_url",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "sub_id",
    "user_agent",
    "country",
    "ip_prefix",
    "ip_hash",
    "source",
)


def _without_visitor(answer_: tuple[int, dict[str, str], bytes]):
    """The answer with its (random) visitor id taken out of Location, and that visitor id."""
    status, headers, body = answer_
    location = headers.get("location", "")
    visitor = parse_qs(urlsplit(location).query).get("refapp_vid", [""])[0]
    if visitor:
        headers = {**headers, "location": location.replace(visitor, "VISITOR")}
    return (status, headers, body), visitor


def _rows(visitor: str) -> list[tuple]:
    """The visitor's click rows, its (random) id taken out of the landing URL."""
    return [
        tuple(str(getattr(c, f)).replace(visitor, "VISITOR") for f in CLICK_FIELDS)
        for c in Click.objects.filter(visitor_id=visitor)
    ]


def assert_go_alike(env: dict, *, clicks: int, fast_app=None) -> tuple[int, dict[str, str], bytes]:
    """Both doors answer alike, and store the same click (`clicks` rows each, 0 or 1)."""
    (fast, fast_visitor), (slow, slow_visitor) = (_without_visitor(a) for a in both(env, fast_app))
    assert fast == slow
    if clicks:
        assert fast_visitor and slow_visitor and fast_visitor != slow_visitor
        assert _rows(fast_visitor) == _rows(slow_visitor) and len(_rows(fast_visitor)) == 1
    else:
        assert Click.objects.count() == 0
    return fast


@pytest.fixture
def suspended(program):
    return AffiliateFactory(program=program, code="SLEEPY", status="suspended")


GO_CASES = {
    "a link": ("/go/acme/JOHN", "", {}, 1, 302),
    "with a path and utm fields": (
        "/go/acme/JOHN/pricing/annual",
        "utm_source=yt&utm_medium=video&campaign=spring+sale&sub_id=v1&lang=de",
        {"HTTP_REFERER": "https://blog.example/post", "HTTP_CF_IPCOUNTRY": "de"},
        1,
        302,
    ),
    "the code in lower case": ("/go/acme/john/", "", {}, 1, 302),
    "ref and refapp_vid of the link win, a name given twice keeps its last value": (
        "/go/acme/JOHN",
        "ref=OTHER&refapp_vid=someone&a=1&a=2&b=",
        {},
        1,
        302,
    ),
    "a path beyond ASCII": (
        "/go/acme/JOHN/pr\u00c3\u00a9cis",
        "",
        {},
        1,
        302,
    ),  # UTF-8 bytes as WSGI gives them
    "unknown code": ("/go/acme/NOPE", "utm_source=x", {}, 0, 302),
    "suspended affiliate": ("/go/acme/SLEEPY", "", {}, 0, 302),
    "bot": ("/go/acme/JOHN", "", {"HTTP_USER_AGENT": "Twitterbot/1.0"}, 0, 302),
    "no user agent": ("/go/acme/JOHN", "", {"HTTP_USER_AGENT": ""}, 0, 302),
    "unknown program": ("/go/nope/JOHN", "", {}, 0, 404),
    "a slug the URLconf does not route": ("/go/ACME/JOHN", "", {}, 0, 404),
    "no code": ("/go/acme/", "", {}, 0, 404),
    "nul in the path": ("/go/acme/JOHN/\x00", "", {}, 0, 400),
    "nul in the query": ("/go/acme/JOHN", "utm_source=%00", {}, 0, 400),
    "nul in a query name": ("/go/acme/JOHN", "%00=1", {}, 0, 400),
    "host not allowed": ("/go/acme/JOHN", "", {"HTTP_HOST": "evil.example"}, 0, 400),
}


@pytest.mark.parametrize("case", list(GO_CASES))
def test_go_answers_and_records_alike_through_both_doors(affiliate, suspended, case):
    path, query, headers, clicks, status = GO_CASES[case]
    env = environ("GET", path, query, **{"HTTP_USER_AGENT": UA, **headers})
    assert assert_go_alike(env, clicks=clicks)[0] == status


def test_go_headers(affiliate):
    status, headers, body = answer(
        production_application(), environ("GET", "/go/acme/JOHN/pricing", "utm_source=x", HTTP_USER_AGENT=UA)
    )
    visitor = Click.objects.get().visitor_id
    assert (status, body) == (302, b"")
    assert (
        headers.pop("location") == f"https://acme.example/pricing?utm_source=x&ref=JOHN&refapp_vid={visitor}"
    )
    assert headers == {
        "content-type": "text/html; charset=utf-8",
        "content-length": "0",
        "cache-control": "no-store",
        "referrer-policy": "no-referrer-when-downgrade",
        "content-security-policy": headers["content-security-policy"],
        "x-content-type-options": "nosniff",
        "cross-origin-opener-policy": "same-origin",
        "x-frame-options": "DENY",
    }
    assert not any(name == "set-cookie" for name in headers)


def test_go_head_and_post_go_to_django(affiliate):
    for method, status in (("HEAD", 405), ("POST", 403)):  # POST: refused by CSRF before the view
        fast, slow = both(environ(method, "/go/acme/JOHN", HTTP_USER_AGENT=UA))
        assert fast == slow and fast[0] == status
    assert Click.objects.count() == 0


def test_go_over_the_rate_limit_redirects_alike_without_a_click(affiliate, settings):
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "go": 2}
    fast_app = production_application()
    # An address of its own for each door: with Redis the counters outlive the test by a minute.
    fast_ip, slow_ip = (f"198.18.{secrets.randbelow(256)}.{n}" for n in (1, 2))
    fast = [
        answer(fast_app, environ("GET", "/go/acme/JOHN", HTTP_USER_AGENT=UA, REMOTE_ADDR=fast_ip))[0]
        for _ in range(3)
    ]
    assert fast == [302, 302, 302] and Click.objects.count() == 2
    slow = [
        answer(fast_app.app, environ("GET", "/go/acme/JOHN", HTTP_USER_AGENT=UA, REMOTE_ADDR=slow_ip))[0]
        for _ in range(3)
    ]
    assert slow == fast and Click.objects.count() == 4


def test_go_redirects_alike_and_records_while_redis_is_down(affiliate, settings, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setattr(ratelimit, "_down_until", 0.0, raising=False)
    for buffered in (True, False):
        settings.REFAPP_CLICK_BUFFER = buffered
        Click.objects.all().delete()
        status = assert_go_alike(environ("GET", "/go/acme/JOHN/pricing", HTTP_USER_AGENT=UA), clicks=1)[0]
        assert status == 302
    ratelimit.redis_reset()


def test_go_fast_path_can_be_switched_off(affiliate, settings):
    settings.REFAPP_GO_FAST_PATH = False
    status, headers, _ = answer(production_application(), environ("GET", "/go/acme/JOHN", HTTP_USER_AGENT=UA))
    assert status == 302 and Click.objects.count() == 1


def test_go_to_a_website_django_may_not_redirect_to_answers_alike_without_a_click(affiliate, program, caplog):
    program.website = "ftps://acme.example/"  # a valid URLField, a scheme HttpResponseRedirect refuses
    program.save()
    fast, slow = both(environ("GET", "/go/acme/JOHN", HTTP_USER_AGENT=UA))
    assert fast == slow and fast[0] == 400
    assert Click.objects.count() == 0


def test_go_headers_follow_the_settings_after_a_first_link(affiliate, settings):
    """The fast path keeps a link's headers but its Location per scheme: changed settings change them
    (in the same process: its cache is dropped on setting_changed)."""
    env = environ("GET", "/go/acme/JOHN", HTTP_USER_AGENT=UA)
    first = assert_go_alike(env, clicks=1)[1]
    assert (first["x-frame-options"], first["content-type"]) == ("DENY", "text/html; charset=utf-8")
    settings.X_FRAME_OPTIONS = "SAMEORIGIN"
    settings.SECURE_CONTENT_TYPE_NOSNIFF = False
    settings.SECURE_CROSS_ORIGIN_OPENER_POLICY = None
    settings.DEFAULT_CHARSET = "iso-8859-1"
    Click.objects.all().delete()
    # A Django handler of its own: Django's SecurityMiddleware reads its settings once, when built.
    changed = assert_go_alike(env, clicks=1, fast_app=wsgi_application())[1]
    assert changed["x-frame-options"] == "SAMEORIGIN"
    assert changed["content-type"] == "text/html; charset=iso-8859-1"
    assert "x-content-type-options" not in changed and "cross-origin-opener-policy" not in changed


def test_go_headers_over_https_carry_hsts_and_over_http_do_not(affiliate, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    app = wsgi_application()  # after the settings: Django's SecurityMiddleware reads them when built
    for proto, hsts in (("https", "max-age=3600"), ("http", None), ("https", "max-age=3600")):
        Click.objects.all().delete()
        env = environ("GET", "/go/acme/JOHN", HTTP_USER_AGENT=UA, HTTP_X_FORWARDED_PROTO=proto)
        assert assert_go_alike(env, clicks=1, fast_app=app)[1].get("strict-transport-security") == hsts


def test_go_answers_keep_their_own_location(affiliate):
    """Each answer's header list is its own: the next link does not rewrite the one sent before."""
    app, sent = production_application(), []
    for _ in range(2):
        app_ = keep_test_connection(app)
        app_(
            environ("GET", "/go/acme/JOHN", HTTP_USER_AGENT=UA),
            lambda status, headers, exc_info=None: sent.append(headers),
        )
    first, second = (dict(headers)["Location"] for headers in sent)
    visitors = sorted(Click.objects.values_list("visitor_id", flat=True))
    assert (
        first != second
        and sorted(parse_qs(urlsplit(u).query)["refapp_vid"][0] for u in (first, second)) == visitors
    )


@pytest.mark.parametrize(
    ("path", "utm_source"),
    # PATH_INFO comes decoded: "?" and "#" (sent as %3F and %23) in the path move the query
    [("pricing", "yt"), ("a%3Fb", "yt"), ("a?b", ""), ("a#b", "")],
)
def test_go_click_reads_its_utm_fields_from_the_location(affiliate, path, utm_source):
    env = environ("GET", f"/go/acme/JOHN/{path}", "utm_source=yt", HTTP_USER_AGENT=UA)
    assert answer(production_application(), env)[0] == 302
    click = Click.objects.get()
    expected = parse_qs(urlsplit(click.landing_url).query).get("utm_source", [""])[0]
    assert click.utm_source == expected == utm_source
