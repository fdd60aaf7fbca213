"""Portal: the affiliate sees their promotion code with a copy button and what their audience gets
(issue 16, item 5); another affiliate never sees it."""

import pytest
from django.test import Client

from affiliates.promotions import friend_reward_set, promotion_code_set
from tests.factories import PartnerGroupFactory

pytestmark = pytest.mark.django_db


def test_dashboard_shows_the_promotion_code_and_the_discount(portal_client, affiliate, program):
    content = portal_client.get("/portal/").content.decode()
    assert 'id="promotion-code" type="text" readonly value="JOHN"' in content
    assert 'data-copy="#promotion-code"' in content
    assert "even without a click" in content  # no reward yet: the code still credits them

    friend_reward_set(program=program, group=None, actor=None, kind="percent", percent_bp=2000)
    promotion_code_set(affiliate=affiliate, code="JOHN-20", actor=None)
    content = portal_client.get("/portal/").content.decode()
    assert 'value="JOHN-20"' in content
    assert "Your audience gets 20 % off your first payment" in content

    # Their group's own reward is what their audience gets.
    group = PartnerGroupFactory(program=program)
    affiliate.group = group
    affiliate.save()
    friend_reward_set(
        program=program, group=group, actor=None, kind="amount", amount_cents=1000, duration="forever"
    )
    assert "10.00 USD off every payment" in portal_client.get("/portal/").content.decode()


def test_another_affiliate_does_not_see_it(other_portal_client, affiliate):
    promotion_code_set(affiliate=affiliate, code="JOHN-SECRET", actor=None)
    content = other_portal_client.get("/portal/").content.decode()
    assert "JOHN-SECRET" not in content and 'value="MARY"' in content
    assert Client().get("/portal/").status_code == 302
