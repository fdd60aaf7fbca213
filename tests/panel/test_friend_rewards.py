"""Panel: the program's and a group's friend reward, and an affiliate's promotion code (issue 16):
saved through the services, bad input answered with form errors, nothing for outsiders."""

import pytest
from django.test import Client

from affiliates.models import FriendReward, PromotionCode
from affiliates.promotions import promotion_code_set
from tests.factories import AffiliateFactory, PartnerGroupFactory

pytestmark = pytest.mark.django_db

URL = "/panel/p/acme/friend-reward/"


def reward(**extra):
    return {"kind": "percent", "percent": "20", "currency": "USD", "duration": "once", **extra}


def test_admin_sets_the_programs_reward_and_settings_show_it(staff_client, program):
    assert staff_client.get(URL).status_code == 200
    response = staff_client.post(URL, reward(duration="repeating", duration_months="3"))
    assert response.status_code == 302
    saved = FriendReward.objects.get(program=program, group=None)
    assert (saved.kind, saved.percent_bp, saved.duration_months) == ("percent", 2000, 3)
    settings_page = staff_client.get("/panel/p/acme/settings/").content.decode()
    assert "20 % off your first 3 months" in settings_page
    page = staff_client.get(URL)
    assert page.context["form"]["percent"].value() == "20"
    staff_client.post(URL, {"remove": "1"})
    saved.refresh_from_db()
    assert saved.is_active is False


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (reward(percent="120"), "percent", "A percent discount is at most 100 %."),
        (
            reward(kind="amount", amount="10.00", currency="EUR"),
            "currency",
            "The coupon's currency must be the program's, USD.",
        ),
        (reward(kind="amount", amount="10.001"), "amount", None),
        (reward(duration="repeating"), "duration_months", "Give the number of months the discount lasts."),
    ],
)
def test_bad_rewards_are_form_errors(staff_client, program, data, field, message):
    response = staff_client.post(URL, data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors
    if message:
        assert errors[field] == [message]
        assert message.replace("'", "&#x27;") in response.content.decode()
    assert not FriendReward.objects.exists()


def test_group_reward_overrides_for_its_members(staff_client, program):
    group = PartnerGroupFactory(program=program, name="VIP")
    url = f"/panel/p/acme/groups/{group.public_id}/friend-reward/"
    assert (
        staff_client.post(url, reward(kind="amount", amount="15.00", duration="forever")).status_code == 302
    )
    saved = FriendReward.objects.get(group=group)
    assert (saved.amount_cents, saved.currency) == (1500, "USD")
    assert (
        "15.00 USD off every payment"
        in staff_client.get(f"/panel/p/acme/groups/{group.public_id}/").content.decode()
    )


def test_promotion_code_page_saves_and_refuses_a_taken_code(staff_client, program, affiliate):
    other = AffiliateFactory(program=program, code="ANN")
    promotion_code_set(affiliate=other, code="ANN20", actor=None)
    url = f"/panel/p/acme/affiliates/{affiliate.public_id}/promotion-code/"
    detail = staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/").content.decode()
    assert 'id="promotion-code">JOHN<' in detail
    taken = staff_client.post(url, {"promotion_code": "ann20"})
    assert taken.status_code == 200
    assert taken.context["form"].errors["promotion_code"] == [
        "The promotion code 'ann20' is already taken in this program."
    ]
    assert staff_client.post(url, {"promotion_code": "JO HN"}).status_code == 200
    assert not PromotionCode.objects.filter(affiliate=affiliate).exists()
    assert staff_client.post(url, {"promotion_code": "JOHN-20"}).status_code == 302
    assert PromotionCode.objects.get(affiliate=affiliate).code == "JOHN-20"


def test_outsiders_and_nobody_get_nothing(other_staff_client, program, affiliate):
    group = PartnerGroupFactory(program=program)
    urls = [
        URL,
        f"/panel/p/acme/groups/{group.public_id}/friend-reward/",
        f"/panel/p/acme/affiliates/{affiliate.public_id}/promotion-code/",
    ]
    for url in urls:
        assert other_staff_client.get(url).status_code == 404
        assert other_staff_client.post(url, reward()).status_code == 404
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and "/panel/login/" in anonymous["Location"]
    assert other_staff_client.post(urls[2], {"promotion_code": "X1"}).status_code == 404
    assert not FriendReward.objects.exists() and not PromotionCode.objects.exists()


def test_a_viewer_reads_but_does_not_change(program, django_user_model):
    from affiliates.models import ProgramStaff

    viewer = django_user_model.objects.create_user(
        "viewer", "v@acme.example", "pw-long-enough", is_staff=True
    )
    ProgramStaff.objects.create(program=program, user=viewer, role=ProgramStaff.Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    assert client.get(URL).status_code == 200
    assert client.post(URL, reward()).status_code == 404
    assert not FriendReward.objects.exists()
