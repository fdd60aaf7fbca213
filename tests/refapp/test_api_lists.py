"""What every list of the automation API shares (issue 17 part B): a key reads its
own program in its own mode, the affiliate filter takes an id or a code, an unknown filter value is
a 400 in the error shape, and the cursor walks every row once."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from affiliates.services import apikey_create
from tests.conftest import ApiClient
from tests.factories import (
    AffiliateFactory,
    ClickFactory,
    CommissionFactory,
    EventFactory,
    PayoutFactory,
    ProgramFactory,
    ReferralFactory,
)

pytestmark = pytest.mark.django_db


def _referral(affiliate, **kw):
    return ReferralFactory(affiliate=affiliate, livemode=affiliate.livemode, **kw).public_id


def _event(affiliate, **kw):
    return EventFactory(affiliate=affiliate, livemode=affiliate.livemode, **kw).public_id


def _click(affiliate, **kw):
    return f"clk_{ClickFactory(affiliate=affiliate, **kw).pk}"


_periods = itertools.count(1)


def _payout(affiliate, **kw):
    # One payout per affiliate and period: each gets a period of its own.
    return PayoutFactory(affiliate=affiliate, period=f"2000-{next(_periods) % 12 + 1:02d}", **kw).public_id


def _commission(affiliate, **kw):
    return CommissionFactory(affiliate=affiliate, livemode=affiliate.livemode, **kw).public_id


# (path, maker, the field of a row's time, its filter's time field for `from`/`to`)
LISTS = {
    "/api/v1/referrals": (_referral, "created_at"),
    "/api/v1/events": (_event, "occurred_at"),
    "/api/v1/clicks": (_click, "created_at"),
    "/api/v1/payouts": (_payout, "created_at"),
    "/api/v1/commissions": (_commission, "created_at"),
}
PATHS = sorted(LISTS)


def _ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


@pytest.mark.parametrize("path", PATHS)
def test_a_key_reads_its_program_only(path, api_client, program, affiliate):
    make, _ = LISTS[path]
    mine = make(affiliate)
    stranger = AffiliateFactory(program=ProgramFactory(slug="other"))
    theirs = make(stranger)
    assert _ids(api_client.get(path)) == [mine]
    other_client = ApiClient(apikey_create(program=stranger.program, mode="live")[1])
    assert _ids(other_client.get(path)) == [theirs]


@pytest.mark.parametrize("path", [p for p in PATHS if p != "/api/v1/payouts"])
def test_test_key_reads_test_rows_and_live_key_live_rows(
    path, api_client, test_api_client, program, affiliate
):
    make, _ = LISTS[path]
    live = make(affiliate)
    test_affiliate = AffiliateFactory(program=program, livemode=False, code="TESTY")
    test = make(test_affiliate)
    assert _ids(api_client.get(path)) == [live]
    assert _ids(test_api_client.get(path)) == [test]
    # A filter naming the other mode's affiliate names nobody.
    assert test_api_client.get(f"{path}?affiliate=JOHN").status_code == 400
    assert api_client.get(f"{path}?affiliate={test_affiliate.public_id}").status_code == 400


def test_test_key_reads_no_live_payout(test_api_client, affiliate):
    _payout(affiliate)
    assert _ids(test_api_client.get("/api/v1/payouts")) == []


@pytest.mark.parametrize("path", PATHS)
def test_affiliate_filter_takes_the_id_or_the_code(path, api_client, program, affiliate):
    make, _ = LISTS[path]
    johns = make(affiliate)
    make(AffiliateFactory(program=program, code="ANN"))
    assert _ids(api_client.get(f"{path}?affiliate={affiliate.public_id}")) == [johns]
    assert _ids(api_client.get(f"{path}?affiliate=john")) == [johns]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("affiliate=MARIA", "affiliate"),
        ("affiliate=aff_nope", "affiliate"),
        ("from=2026-02-30", "from"),
        ("to=yesterday", "to"),
        ("from=2026-03-02&to=2026-03-01", "to"),
        ("from=1999-12-31", "from"),
    ],
)
def test_an_unknown_filter_value_is_a_400(path, query, field, api_client, affiliate):
    response = api_client.get(f"{path}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in error["fields"]


@pytest.mark.parametrize("path", ["/api/v1/payouts", "/api/v1/commissions"])
def test_an_unknown_status_is_a_400(path, api_client):
    response = api_client.get(f"{path}?status=lost")
    assert response.status_code == 400 and "status" in response.json()["error"]["fields"]


@pytest.mark.parametrize("path", PATHS)
def test_from_and_to_are_inclusive_utc_days(path, api_client, affiliate):
    make, field = LISTS[path]
    day = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=10)
    before = make(affiliate, **{field: day - timedelta(days=1)})
    inside = make(affiliate, **{field: day})
    after = make(affiliate, **{field: day + timedelta(days=1)})
    iso = day.date().isoformat()
    assert _ids(api_client.get(f"{path}?from={iso}&to={iso}")) == [inside]
    assert set(_ids(api_client.get(f"{path}?from={iso}"))) == {inside, after}
    assert set(_ids(api_client.get(f"{path}?to={iso}"))) == {before, inside}


@pytest.mark.parametrize("path", PATHS)
def test_pagination_walks_two_pages(path, api_client, affiliate):
    make, _ = LISTS[path]
    made = [make(affiliate) for _ in range(3)]
    first = api_client.get(f"{path}?limit=2").json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = api_client.get(f"{path}?limit=2&cursor={first['next_cursor']}").json()
    assert second["next_cursor"] is None
    walked = [row["id"] for row in first["data"] + second["data"]]
    assert sorted(walked) == sorted(made) and len(set(walked)) == 3
    assert api_client.get(f"{path}?limit=101").status_code == 400


@pytest.mark.parametrize("path", PATHS)
def test_without_a_key_is_401(path, client):
    assert client.get(path).status_code == 401
