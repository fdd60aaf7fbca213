"""The /go/ link's own query encoding and parsing against the standard library's and Django's, which
they replace on the fast path for speed (tracking/redirects.py, refapp/fastpath.py)."""

from urllib.parse import urlencode

import pytest
from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st

from refapp.fastpath import _query_pairs
from tracking.redirects import _query

# Any text a query may carry once the input gate has passed it: no NUL, no unpaired surrogate.
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(text, text), max_size=6))
def test_query_is_urlencode(pairs):
    assert _query(pairs) == urlencode(pairs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(text, text), max_size=6))
def test_query_pairs_are_querydicts(pairs):
    raw = urlencode(pairs).encode()
    parsed = _query_pairs({"QUERY_STRING": raw.decode("latin-1")})
    query = QueryDict(raw)
    assert [(k, v) for k, values in query.lists() for v in values] == sorted(
        parsed, key=lambda kv: list(query).index(kv[0])
    )
    assert list(dict(parsed).items()) == list(query.items())


@pytest.mark.parametrize("raw", ["a=1&a=2&b=&c", "%ff=%fe", "x=%E2%82%AC+y", ";", "=&="])
def test_query_pairs_of_odd_strings(raw):
    query = QueryDict(raw.encode())
    parsed = _query_pairs({"QUERY_STRING": raw})
    assert list(dict(parsed).items()) == list(query.items())


def test_too_many_fields(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    with pytest.raises(TooManyFieldsSent):
        _query_pairs({"QUERY_STRING": "a=1&b=2&c=3&d=4"})
