"""Fixtures shared by the tracking tests."""

import json

import pytest
from django.test import Client

from tracking import buffer

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


@pytest.fixture
def buffered(settings, affiliate):
    settings.REFAPP_CLICK_BUFFER = True
    redis_conn = buffer.client()
    redis_conn.delete(buffer.LIST_KEY, buffer.SEQ_KEY, buffer.EPOCH_KEY)
    yield redis_conn
    redis_conn.delete(buffer.LIST_KEY, buffer.SEQ_KEY, buffer.EPOCH_KEY)


@pytest.fixture
def post_clicks():
    """post_clicks(n, start=0) reports n clicks of John through the tracker endpoint; each must be accepted."""
    return _post_clicks


def _post_clicks(n, start=0):
    client = Client()
    for i in range(start, start + n):
        body = {
            "program": "acme",
            "ref": "JOHN",
            "visitor_id": f"visitor-{i:04d}",
            "url": f"https://acme.example/p{i}?ref=JOHN&utm_source=s",
        }
        assert (
            client.post(
                "/api/v1/track/click", data=json.dumps(body), content_type="text/plain", HTTP_USER_AGENT=UA
            ).status_code
            == 202
        )
