"""Helpers for the end-to-end browser flows: emails, sign-in, layout checks and screenshots.

Emails: the live server runs in this process and the test settings use the locmem backend, so
`django.core.mail.outbox` holds every email it sent. Their links point at settings.BASE_URL; the
helpers re-root them on the live server, keeping path and query.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import mail
from playwright.sync_api import Page, expect

URL_RE = re.compile(r"https?://[^\s<>\"']+")
SCREENSHOT_DIR = "var/screenshots"


def poll(fn: Callable[[], Any], *, timeout: float = 5.0) -> Any:
    """fn() once it is truthy, or its last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


# --- email -------------------------------------------------------------------------------------


def emails_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


def wait_for_email(address: str, subject_contains: str, *, timeout: float = 5.0):
    """The first email to `address` whose subject contains `subject_contains` (case-insensitive)."""

    def find():
        wanted = subject_contains.lower()
        return next((m for m in emails_to(address) if wanted in m.subject.lower()), None)

    message = poll(find, timeout=timeout)
    sent = [(m.to, m.subject) for m in mail.outbox]
    assert message is not None, f"no email to {address} about {subject_contains!r}; outbox: {sent}"
    return message


def link_in(message, path_prefix: str, live_server) -> str:
    """The link of `message` whose path starts with `path_prefix`, on the live server's origin."""
    for url in URL_RE.findall(message.body):
        parts = urlsplit(url)
        if parts.path.startswith(path_prefix):
            assert url.startswith(settings.BASE_URL), f"{url} is not under BASE_URL {settings.BASE_URL}"
            return live_server.url + parts.path + (f"?{parts.query}" if parts.query else "")
    raise AssertionError(f"no {path_prefix} link in the email {message.subject!r}:\n{message.body}")


# --- the events API ----------------------------------------------------------------------------


def post_event(live_server, secret: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/events",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


# --- signing in --------------------------------------------------------------------------------


def panel_login(page: Page, live_server, username: str, password: str, *, path: str = "/panel/") -> None:
    """Sign in through the panel's login form, starting from `path` (a page behind the login)."""
    page.goto(live_server.url + path)
    expect(page).to_have_url(re.compile(r"/panel/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/panel/login/"))


def portal_confirm_link(page: Page, url: str) -> None:
    """Open an emailed sign-in link and press the confirm page's button."""
    page.goto(url)
    expect(page.get_by_role("heading", name="Sign in to your partner portal")).to_be_visible()
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/portal/$"))


def portal_sign_in_by_email(page: Page, live_server, email: str) -> None:
    """The whole magic-link round trip: ask for a link, read the email, open it, confirm."""
    before = len(emails_to(email))
    page.goto(f"{live_server.url}/portal/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert poll(lambda: len(emails_to(email)) > before), f"no sign-in email reached {email}"
    portal_confirm_link(page, link_in(emails_to(email)[-1], "/portal/login/", live_server))


# --- layout checks -----------------------------------------------------------------------------

# The widest elements sticking out of the viewport, deepest first: the culprits of an overflow.
_OVERFLOW_JS = """() => {
  const limit = window.innerWidth + 1;
  const doc = document.documentElement;
  const describe = (el) => {
    let d = el.tagName.toLowerCase();
    if (el.id) d += "#" + el.id;
    if (el.classList.length) d += "." + Array.from(el.classList).join(".");
    return d;
  };
  const path = (el) => {
    const parts = [];
    for (let e = el; e && e !== document.body; e = e.parentElement) parts.unshift(describe(e));
    return parts.join(" > ");
  };
  const culprits = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= limit) continue;
    // Content that scrolls inside an overflow container (a .table-wrap) does not widen the page.
    let clipped = false;
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if (ox !== "visible" && ox !== "clip") { clipped = true; break; }
    }
    if (clipped) continue;
    const deeper = Array.from(el.children).some((c) => c.getBoundingClientRect().right > limit);
    if (!deeper) culprits.push(`${path(el)} (right edge ${Math.round(r.right)}px)`);
  }
  const tablesOutside = Array.from(document.querySelectorAll("table"))
    .filter((t) => !t.closest(".table-wrap")).map(path);
  return {
    scrollWidth: doc.scrollWidth,
    innerWidth: window.innerWidth,
    culprits: culprits.slice(0, 8),
    tablesOutside,
  };
}"""


def layout_problems(page: Page) -> list[str]:
    """Horizontal overflow of the page (with its widest elements) and tables outside .table-wrap."""
    report = page.evaluate(_OVERFLOW_JS)
    problems = []
    if report["scrollWidth"] > report["innerWidth"] + 1:
        problems.append(
            f"{page.url}: page is {report['scrollWidth']}px wide in a {report['innerWidth']}px viewport; "
            f"sticking out: {report['culprits']}"
        )
    problems += [f"{page.url}: table outside .table-wrap: {t}" for t in report["tablesOutside"]]
    return problems


_UNLABELLED_JS = """(form) => Array.from(
    form.querySelectorAll("input:not([type=hidden]), select, textarea")
  ).filter((el) => {
    const labelled = Array.from(el.labels || []).some((l) => l.textContent.trim() !== "");
    const aria = (el.getAttribute("aria-label") || "").trim() !== "";
    return !(labelled || aria);
  }).map((el) => `${el.tagName.toLowerCase()}[name=${el.name}]#${el.id}`)"""


def unlabelled_controls(page: Page, form_selector: str) -> list[str]:
    """Controls of the form without a non-empty <label> or an aria-label."""
    form = page.locator(form_selector)
    expect(form).to_have_count(1)
    return form.evaluate(_UNLABELLED_JS)


def control_count(page: Page, form_selector: str) -> int:
    return page.locator(form_selector).locator("input:not([type=hidden]), select, textarea").count()


# --- screenshots -------------------------------------------------------------------------------


def wait_for_charts(page: Page) -> None:
    """Chart.js has drawn every chart of the page (it does so after DOMContentLoaded)."""
    # Polled with evaluate(), not wait_for_function(): when the first check fails, Playwright's
    # polling evaluates the expression as a string inside the page, which the panel's CSP
    # (script-src 'self', no 'unsafe-eval') refuses with an EvalError.
    drawn = poll(
        lambda: page.evaluate(
            "() => Array.from(document.querySelectorAll('canvas[data-chart]')).every((c) => c._chart)"
        ),
        timeout=10.0,
    )
    assert drawn, "the page's charts were not drawn within 10 s"


def screenshot(page: Page, name: str) -> Path:
    path = Path(settings.BASE_DIR) / SCREENSHOT_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
