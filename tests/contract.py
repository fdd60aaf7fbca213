"""The API contract check: every /api/v1/ response the tests see is held to /api/v1/openapi.json.

`check()` finds the operation of a (method, path) in the document and validates the body against
the schema of the answered status with jsonschema (Draft 2020-12). A path, method or status the
document does not list fails the test that got it; so does a body that does not match. One
exception is written into the document itself: a method a path does not list answers 405 in the
error shape. Every check is recorded in SEEN as (path template, method, status).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:refapp:openapi"
SEEN: set[tuple[str, str, int]] = set()


@functools.cache
def document() -> dict[str, Any]:
    from refapp.urls_api import openapi_document

    return openapi_document("http://testserver")


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(DOC_URI, Resource(contents=document(), specification=DRAFT202012))


@functools.cache
def _templates() -> list[tuple[re.Pattern, str]]:
    out = []
    for template in document()["paths"]:
        regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        out.append((re.compile(f"^{regex}$"), template))
    return out


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@functools.cache
def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=_registry())


def operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in document()["paths"].items() for method in item}


def template_of(path: str) -> str | None:
    for regex, template in _templates():
        if regex.match(path):
            return template
    return None


def check(method: str, path: str, status: int, content_type: str | None, content: bytes) -> None:
    """Fail (AssertionError) unless the document lists this answer and the body matches it."""
    method = method.lower()
    template = template_of(path)
    assert template is not None, f"{method.upper()} {path}: path not in /api/v1/openapi.json"
    item = document()["paths"][template]
    if method not in item:
        assert status == 405, f"{method.upper()} {template}: method not in the document, answered {status}"
        pointer = "/components/schemas/Error"
    else:
        assert str(status) in item[method]["responses"], (
            f"{method.upper()} {template}: status {status} not in the document "
            f"(lists {', '.join(item[method]['responses'])})"
        )
        response = item[method]["responses"][str(status)]
        media = response.get("content")
        if not media:
            assert not content, f"{method.upper()} {template} {status}: documented without a body, got one"
            SEEN.add((template, method, status))
            return
        (media_type,) = media
        assert (content_type or "").split(";")[0].strip() == media_type, (
            f"{method.upper()} {template} {status}: Content-Type {content_type!r}, documented {media_type}"
        )
        if media_type != "application/json":
            SEEN.add((template, method, status))
            return
        pointer = "/".join(
            [
                "",
                "paths",
                _escape(template),
                method,
                "responses",
                str(status),
                "content",
                _escape(media_type),
                "schema",
            ]
        )
    body = json.loads(content)
    errors = sorted(_validator(pointer).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, (
        f"{method.upper()} {template} {status}: body does not match the document:\n"
        + "\n".join(f"  at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors)
    )
    if method in item:
        SEEN.add((template, method, status))
