"""The /go/ link's own query encoding and parsing against the standard library's and Django's, which
they replace on the fast path for speed (tracking/redirects.py, refapp/fastpath.py): the query's
pairs (split without parse_qsl when there is nothing to decode), the Location's URI (iri_to_uri
skipped when it would change nothing) and the click's query (the link's pairs, not parsed back)."""

from urllib.parse import parse_qs, parse_qsl, urlencode

import pytest
from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from django.utils.encoding import iri_to_uri
from hypothesis import given, settings
from hypothesis import strategies as st

from refapp.fastpath import _query_pairs
from tracking.redirects import GoAnswer, _parsed, _query

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


# A query with nothing to decode, which the fast path splits itself instead of calling parse_qsl.
plain = st.text(st.sampled_from("ab_.~-=&09"), max_size=30)


@settings(max_examples=500, deadline=None)
@given(plain)
def test_plain_query_pairs_are_parse_qsl(raw):
    assert _query_pairs({"QUERY_STRING": raw}) == parse_qsl(raw, keep_blank_values=True)
    query = QueryDict(raw.encode())
    assert list(dict(_query_pairs({"QUERY_STRING": raw})).items()) == list(query.items())


@pytest.mark.parametrize("raw", ["a=1&b=2&c=3", "a=1&b=2&", "&&a"])  # three fields, empty ones count
def test_as_many_fields_as_allowed(settings, raw):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    assert _query_pairs({"QUERY_STRING": raw}) == parse_qsl(raw, keep_blank_values=True)


@pytest.mark.parametrize("raw", ["a=1&b=2&c=3&d", "a=%201&b&c&d"])  # plain, and one to decode
def test_one_field_too_many(settings, raw):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    with pytest.raises(TooManyFieldsSent):
        _query_pairs({"QUERY_STRING": raw})


def test_no_limit_on_fields(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = None
    assert len(_query_pairs({"QUERY_STRING": "&".join(["a=1"] * 2000)})) == 2000


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_location_uri_is_iri_to_uri(location):
    assert GoAnswer(location).uri() == iri_to_uri(location)


def test_location_uri_is_iri_to_uri_for_every_ascii_character():
    for char in map(chr, range(128)):
        location = f"https://acme.example/a{char}b?x={char}"
        assert GoAnswer(location).uri() == iri_to_uri(location), repr(char)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(text, text), max_size=6))
def test_parsed_pairs_are_parse_qs_of_the_query(pairs):
    assert _parsed(pairs) == parse_qs(_query(pairs))
