import pytest

from affiliates.models import PartnerGroup, ProgramStaff
from commissions.calculation import rules_for
from refapp.models import AuditLog
from tests.factories import AffiliateFactory, CommissionRuleFactory, PartnerGroupFactory
from tests.helpers import staff_client_with_role

pytestmark = pytest.mark.django_db

LIST = "/panel/p/acme/groups/"
NEW = "/panel/p/acme/groups/new/"


def edit(group):
    return f"/panel/p/acme/groups/{group.public_id}/"


@pytest.fixture
def group(program):
    return PartnerGroupFactory(program=program, name="Gold")


@pytest.mark.parametrize("page", ["list", "new", "edit"])
def test_pages_answer_their_staff_and_hide_from_others(
    page, staff_client, other_staff_client, client, staff_user, group
):
    url = {"list": LIST, "new": NEW, "edit": edit(group)}[page]
    assert staff_client.get(url).status_code == 200
    assert other_staff_client.get(url).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/panel/login/")


@pytest.mark.parametrize("page", ["new", "edit"])
def test_posts_are_refused_to_outsiders_viewers_and_anonymous(
    page, program, other_staff_client, client, staff_user, group
):
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    url = {"new": NEW, "edit": edit(group)}[page]
    body = {"name": "Hacked", "is_active": ""}
    assert other_staff_client.post(url, body).status_code == 404
    assert viewer.post(url, body).status_code == 404
    assert client.post(url, body)["Location"].startswith("/panel/login/")
    assert list(PartnerGroup.objects.values_list("name", "is_active")) == [("Gold", True)]


def test_manager_may_create_groups(program):
    manager = staff_client_with_role(program, ProgramStaff.Role.MANAGER, "manager")
    assert manager.post(NEW, {"name": "Silver", "is_active": "on"}).status_code == 302


def test_list_counts_members_and_rules(staff_client, program, group):
    AffiliateFactory.create_batch(3, program=program, group=group)
    CommissionRuleFactory(program=program, group=group)
    CommissionRuleFactory(program=program, group=group, is_active=False)
    response = staff_client.get(LIST)
    row = response.context["groups"].get(pk=group.pk)
    assert (row.members, row.active_rules) == (3, 1)
    assert "Gold" in response.text


def test_create_group(staff_client, program):
    response = staff_client.post(NEW, {"name": "Silver", "is_active": "on"})
    assert response.status_code == 302 and response["Location"] == LIST
    silver = PartnerGroup.objects.get(name="Silver")
    assert silver.program == program and silver.is_active
    assert AuditLog.objects.filter(action="group.created", object_id=silver.public_id).exists()


def test_create_refuses_duplicate_and_empty_names(staff_client, group):
    duplicate = staff_client.post(NEW, {"name": "gold", "is_active": "on"})
    assert duplicate.status_code == 200 and "already has this name" in duplicate.text
    empty = staff_client.post(NEW, {"name": " "})
    assert empty.status_code == 200 and "This field is required." in empty.text
    assert PartnerGroup.objects.count() == 1


def test_same_name_in_another_program_is_fine(staff_client):
    PartnerGroupFactory(name="Gold")  # another program's
    assert staff_client.post(NEW, {"name": "Gold", "is_active": "on"}).status_code == 302


def test_deactivating_keeps_members(staff_client, program, group):
    member = AffiliateFactory(program=program, group=group)
    response = staff_client.post(edit(group), {"name": "Gold", "is_active": ""})
    assert response.status_code == 302
    group.refresh_from_db()
    member.refresh_from_db()
    assert not group.is_active and member.group == group
    assert AuditLog.objects.filter(action="group.updated", data__is_active=[True, False]).exists()


def test_rename_to_a_taken_name_shows_the_error(staff_client, program, group):
    PartnerGroupFactory(program=program, name="Silver")
    response = staff_client.post(edit(group), {"name": "Silver", "is_active": "on"})
    assert response.status_code == 200 and "already has this name" in response.text
    group.refresh_from_db()
    assert group.name == "Gold"


def test_edit_page_lists_members_and_rules(staff_client, program, group):
    AffiliateFactory(program=program, group=group, name="Zed")
    rule = CommissionRuleFactory(program=program, group=group, rate_bp=3000)
    response = staff_client.get(edit(group))
    assert "Zed" in response.text and rule.describe() in response.text


def test_foreign_group_is_404(staff_client):
    assert staff_client.get(edit(PartnerGroupFactory(name="Foreign"))).status_code == 404


def test_a_group_deactivated_in_the_panel_stops_its_rules(staff_client, program, group):
    member = AffiliateFactory(program=program, group=group)
    CommissionRuleFactory(program=program, rate_bp=1000)
    CommissionRuleFactory(program=program, group=group, rate_bp=3000)
    assert rules_for(program=program, affiliate=member, event_name="sale")[0] == "group"
    staff_client.post(edit(group), {"name": "Gold", "is_active": ""})
    scope, rules = rules_for(program=program, affiliate=member, event_name="sale")
    assert scope == "program" and [r.rate_bp for r in rules] == [1000]
