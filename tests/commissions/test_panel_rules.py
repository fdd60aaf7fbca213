import pytest

from affiliates.models import ProgramStaff
from commissions.models import CommissionRule
from refapp.models import AuditLog
from tests.factories import (
    AffiliateFactory,
    CommissionFactory,
    CommissionRuleFactory,
    PartnerGroupFactory,
    ProgramFactory,
)
from tests.helpers import staff_client_with_role

pytestmark = pytest.mark.django_db

LIST = "/panel/p/acme/rules/"
NEW = "/panel/p/acme/rules/new/"


def edit(rule):
    return f"/panel/p/acme/rules/{rule.public_id}/"


def deactivate(rule):
    return f"/panel/p/acme/rules/{rule.public_id}/deactivate/"


def form(**overrides):
    body = {
        "event_name": "sale",
        "type": "percent",
        "rate": "20",
        "amount": "",
        "scope": "program",
        "group": "",
        "affiliate": "",
        "duration_months": "",
        "max_events": "",
        "tiers": "",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["list", "new", "edit"])
def test_pages_answer_their_staff_and_hide_from_others(
    page, staff_client, other_staff_client, client, staff_user, sale_rule
):
    url = {"list": LIST, "new": NEW, "edit": edit(sale_rule)}[page]
    assert staff_client.get(url).status_code == 200
    assert other_staff_client.get(url).status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/panel/login/")


@pytest.mark.parametrize("page", ["new", "edit", "deactivate"])
def test_posts_are_refused_to_outsiders_viewers_and_anonymous(
    page, program, other_staff_client, client, staff_user, sale_rule
):
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    url = {"new": NEW, "edit": edit(sale_rule), "deactivate": deactivate(sale_rule)}[page]
    body = form(rate="50")
    assert other_staff_client.post(url, body).status_code == 404
    assert viewer.post(url, body).status_code == 404
    assert client.post(url, body)["Location"].startswith("/panel/login/")
    assert list(CommissionRule.objects.values_list("rate_bp", "is_active")) == [(2000, True)]


def test_viewer_sees_rules_without_actions(program, sale_rule):
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    response = viewer.get(LIST)
    assert response.status_code == 200 and sale_rule.describe() in response.text
    assert deactivate(sale_rule) not in response.text


def test_foreign_rule_is_404(staff_client):
    assert (
        staff_client.get(edit(CommissionRuleFactory(program=ProgramFactory(slug="globex")))).status_code
        == 404
    )


# --- list --------------------------------------------------------------------------------------


def test_list_shows_active_and_inactive_with_scope(staff_client, program, affiliate, sale_rule):
    group = PartnerGroupFactory(program=program, name="Gold")
    CommissionRuleFactory(program=program, group=group, rate_bp=3000)
    CommissionRuleFactory(program=program, affiliate=affiliate, type="fixed", rate_bp=None, amount_cents=500)
    CommissionRuleFactory(program=program, rate_bp=100, is_active=False)
    response = staff_client.get(LIST)
    assert len(response.context["active_rules"]) == 3 and len(response.context["inactive_rules"]) == 1
    assert "Group <a" in response.text and "Gold" in response.text
    assert "5.00 USD per sale" in response.text and "JOHN" in response.text


# --- create ------------------------------------------------------------------------------------


def test_create_percent_rule_converts_percent_to_basis_points(staff_client, program):
    response = staff_client.post(
        NEW, form(rate="12.5", first_event_only="on", duration_months="12", max_events="3")
    )
    assert response.status_code == 302 and response["Location"] == LIST
    rule = CommissionRule.objects.get()
    assert (rule.type, rule.rate_bp, rule.amount_cents) == ("percent", 1250, None)
    assert rule.first_event_only and rule.duration_months == 12 and rule.max_events == 3
    assert rule.group is None and rule.affiliate is None
    assert AuditLog.objects.filter(action="rule.created", object_id=rule.public_id).exists()


def test_create_fixed_rule_parses_the_amount_in_program_currency(staff_client, program):
    response = staff_client.post(NEW, form(type="fixed", rate="", amount="1,005.50", event_name="signup"))
    assert response.status_code == 302
    rule = CommissionRule.objects.get()
    assert (rule.type, rule.amount_cents, rule.rate_bp, rule.event_name) == ("fixed", 100550, None, "signup")


def test_create_tiered_rule(staff_client, program):
    response = staff_client.post(NEW, form(rate="20", tiers="5000.00 = 30\n\n1000 = 25 %\n"))
    assert response.status_code == 302
    assert CommissionRule.objects.get().tiers == [
        {"min_cents": 100000, "rate_bp": 2500},
        {"min_cents": 500000, "rate_bp": 3000},
    ]


def test_create_scoped_to_a_group_or_an_affiliate(staff_client, program, affiliate):
    group = PartnerGroupFactory(program=program, name="Gold")
    assert staff_client.post(NEW, form(scope="group", group=group.pk)).status_code == 302
    response = staff_client.post(NEW, form(scope="affiliate", affiliate="john", group=group.pk))
    assert response["Location"] == f"/panel/p/acme/affiliates/{affiliate.public_id}/"
    by_group, by_affiliate = CommissionRule.objects.order_by("pk")
    assert (by_group.group, by_group.affiliate) == (group, None)
    assert (by_affiliate.group, by_affiliate.affiliate) == (None, affiliate)


def test_create_form_is_prefilled_from_an_affiliate_or_group_link(staff_client, program, affiliate):
    response = staff_client.get(NEW, {"affiliate": affiliate.public_id})
    assert response.context["form"].initial == {"scope": "affiliate", "affiliate": "JOHN"}
    group = PartnerGroupFactory(program=program)
    response = staff_client.get(NEW, {"group": group.public_id})
    assert response.context["form"].initial == {"scope": "group", "group": group}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"rate": "150"}, "rate", "over 100 %"),
        ({"rate": "-1"}, "rate", "cannot be negative"),
        ({"rate": "12.345"}, "rate", "at most two decimals"),
        ({"rate": "abc"}, "rate", "Enter a percent"),
        ({"rate": ""}, "rate", "Enter the percent"),
        ({"type": "fixed", "rate": "", "amount": ""}, "amount", "Enter the amount"),
        (
            {"type": "fixed", "rate": "", "amount": "5.00 EUR"},
            "amount",
            "in the program currency, USD, not EUR",
        ),
        ({"type": "fixed", "rate": "", "amount": "5.001"}, "amount", "USD has 2 decimal places"),
        ({"type": "fixed", "rate": "", "amount": "5 XYZ"}, "amount", "not a currency code"),
        ({"type": "fixed", "rate": "10", "amount": "5.00"}, "rate", "A fixed rule has no rate"),
        ({"amount": "5.00"}, "amount", "A percent rule has no fixed amount"),
        ({"tiers": "1000.00 = 25\n1000 = 30"}, "tiers", "both start at 1,000.00 USD"),
        ({"tiers": "1000.00 = 125"}, "tiers", "Line 1: 125 % is over 100 %"),
        ({"tiers": "1000.00 25"}, "tiers", "Line 1: write"),
        ({"tiers": "1000.00 EUR = 25"}, "tiers", "Line 1: thresholds are in the program currency"),
        (
            {"type": "fixed", "rate": "", "amount": "5.00", "tiers": "1000 = 25"},
            "tiers",
            "percent rules only",
        ),
        ({"event_name": "Big Sale!"}, "event_name", "Use 1 to 64 characters"),
        ({"scope": "group"}, "group", "Choose the group"),
        ({"scope": "affiliate", "affiliate": "NOBODY"}, "affiliate", "No affiliate with this code"),
        ({"duration_months": "0"}, "duration_months", "greater than or equal to 1"),
    ],
)
def test_invalid_rules_show_the_error_next_to_the_field(staff_client, program, overrides, field, message):
    response = staff_client.post(NEW, form(**overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(message in text for text in errors[field]), errors[field]
    assert message in response.text.replace("&#x27;", "'").replace("&quot;", '"')
    assert not CommissionRule.objects.exists()


def test_an_affiliate_of_another_program_cannot_be_a_scope(staff_client):
    stranger = AffiliateFactory(program=ProgramFactory(slug="globex"), code="STRANGER")
    response = staff_client.post(NEW, form(scope="affiliate", affiliate=stranger.public_id))
    assert "affiliate" in response.context["form"].errors
    assert not CommissionRule.objects.exists()


# --- edit and deactivate -----------------------------------------------------------------------


def test_edit_form_shows_current_values(staff_client, program):
    rule = CommissionRuleFactory(
        program=program, rate_bp=1250, tiers=[{"min_cents": 100000, "rate_bp": 2500}]
    )
    response = staff_client.get(edit(rule))
    initial = response.context["form"].initial
    assert initial["rate"] == "12.5" and initial["tiers"] == "1000.00 = 25" and initial["scope"] == "program"
    assert "does not change the past" in response.text


def test_edit_retires_the_rule_and_creates_its_successor(staff_client, program, affiliate, sale_rule):
    old = CommissionFactory(affiliate=affiliate, rule=sale_rule, amount_cents=2_000)
    response = staff_client.post(edit(sale_rule), form(rate="25"))
    assert response.status_code == 302
    sale_rule.refresh_from_db()
    successor = CommissionRule.objects.exclude(pk=sale_rule.pk).get()
    assert not sale_rule.is_active and sale_rule.rate_bp == 2000
    assert successor.is_active and successor.rate_bp == 2500
    old.refresh_from_db()
    assert old.rule == sale_rule and old.amount_cents == 2_000
    replaced = AuditLog.objects.get(action="rule.replaced")
    assert replaced.object_id == sale_rule.public_id and replaced.data["replaced_by"] == successor.public_id
    page = staff_client.get(edit(sale_rule))
    assert "Inactive rules cannot be edited" in page.text and successor.public_id in page.text


def test_edit_without_changes_writes_nothing(staff_client, sale_rule):
    response = staff_client.post(edit(sale_rule), form(rate="20"), follow=True)
    assert "Nothing changed." in response.text
    assert CommissionRule.objects.get() == sale_rule and CommissionRule.objects.get().is_active


def test_invalid_edit_keeps_the_old_rule(staff_client, sale_rule):
    response = staff_client.post(edit(sale_rule), form(rate="101"))
    assert response.status_code == 200 and "over 100 %" in response.text
    assert list(CommissionRule.objects.values_list("rate_bp", "is_active")) == [(2000, True)]


def test_an_inactive_rule_cannot_be_edited(staff_client, sale_rule):
    sale_rule.is_active = False
    sale_rule.save()
    response = staff_client.post(edit(sale_rule), form(rate="30"))
    assert response.status_code == 200 and "Inactive rules cannot be edited" in response.text
    assert CommissionRule.objects.count() == 1


def test_deactivate(staff_client, sale_rule):
    response = staff_client.post(deactivate(sale_rule))
    assert response.status_code == 302 and response["Location"] == LIST
    sale_rule.refresh_from_db()
    assert not sale_rule.is_active
    assert AuditLog.objects.filter(action="rule.deactivated", object_id=sale_rule.public_id).exists()
    assert staff_client.get(deactivate(sale_rule)).status_code == 405


def test_test_mode_rules_stay_out_of_the_panel(staff_client, program, sale_rule):
    test_rule = CommissionRuleFactory(
        program=program, type="fixed", rate_bp=None, amount_cents=77700, livemode=False
    )
    listed = staff_client.get(LIST)
    assert sale_rule.public_id in listed.text and test_rule.public_id not in listed.text
    assert "777.00" not in listed.text
    assert staff_client.get(edit(test_rule)).status_code == 404
