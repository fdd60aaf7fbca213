"""The click's friend reward answers alike through the fast path and the Django view (issue 16)."""

import json

import pytest
from django.test import Client

from affiliates.promotions import friend_reward_set, promotion_code_set
from tests.refapp.test_fastpath import UA, call, click_body
from tracking.models import Click

pytestmark = pytest.mark.django_db


def both(**extra) -> tuple[dict, dict]:
    status, _, content = call(body=click_body(**extra))
    view = Client().post(
        "/api/v1/track/click", data=click_body(**extra), content_type="text/plain", HTTP_USER_AGENT=UA
    )
    assert status == view.status_code == 202
    return json.loads(content), view.json()


def test_coupon_answers_alike_through_both_doors(affiliate, program):
    friend_reward_set(
        program=program, group=None, actor=None, kind="amount", amount_cents=1000, duration="once"
    )
    promotion_code_set(affiliate=affiliate, code="JOHN10", actor=None)
    fast, slow = both()
    assert fast == slow
    assert fast["coupon"] == {"code": "JOHN10", "label": "Referred by John: 10.00 USD off your first payment"}
    assert Click.objects.count() == 2


def test_no_reward_no_coupon_and_a_recorded_visit_stores_no_click(affiliate, program):
    fast, slow = both()
    assert fast == slow and "coupon" not in fast
    assert Click.objects.count() == 2
    fast, slow = both(recorded=True)
    assert fast == slow == {"visitor_id": "visitor-0001", "attributed": True}
    assert Click.objects.count() == 2  # the /go/ redirect stored it already


def test_recorded_must_be_a_boolean(affiliate):
    status, _, content = call(body=click_body(recorded="yes"))
    assert status == 400 and "recorded" in json.loads(content)["error"]["fields"]
