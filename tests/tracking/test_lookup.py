"""The click path's cached lookups: what a miss reads, and that a hit reads nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AffiliateFactory, ProgramFactory
from tracking import lookup

pytestmark = pytest.mark.django_db


def test_a_miss_reads_the_active_affiliate_of_the_code_in_one_query_and_a_hit_none(settings):
    settings.REFAPP_PROGRAM_CACHE_SECONDS = 30
    acme, other = ProgramFactory(slug="acme"), ProgramFactory(slug="other")
    john = AffiliateFactory(program=acme, code="John")
    AffiliateFactory(program=acme, code="GONE", status="suspended")
    AffiliateFactory(program=other, code="JANE")
    with CaptureQueriesContext(connection) as queries:
        assert lookup.active_affiliate_by_code(acme, "JOHN") == (john.pk, "John")  # any case
        assert lookup.active_affiliate_by_code(acme, "gone") is None  # suspended
        assert lookup.active_affiliate_by_code(acme, "jane") is None  # another program's code
        assert lookup.active_affiliate_by_code(acme, "nobody") is None
    assert len(queries) == 4
    with CaptureQueriesContext(connection) as queries:
        assert lookup.active_affiliate_by_code(acme, "john") == (john.pk, "John")
        assert lookup.active_affiliate_by_code(acme, "NOBODY") is None  # a miss is remembered too
    assert len(queries) == 0


def test_a_program_without_a_friend_reward_costs_one_cached_query_for_all_its_affiliates(
    program, settings, django_assert_num_queries
):
    settings.REFAPP_PROGRAM_CACHE_SECONDS = 60
    affiliates = [AffiliateFactory(program=program, code=f"A{n}") for n in range(5)]
    lookup.clear()
    with django_assert_num_queries(1):
        assert [lookup.coupon_for(a.pk, program.pk) for a in affiliates] == [None] * 5
        assert lookup.coupon_for(affiliates[0].pk, program.pk) is None
