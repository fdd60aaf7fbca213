"""A PayPal email that a spreadsheet would run as a formula is refused where it is entered."""

import pytest
from django.core.exceptions import ValidationError

from affiliates.models import Affiliate

FORMULAS = ["=1+1@csv.example", "+cmd@x.example", "-2+3@x.example", "\t=1@x.example"]


@pytest.mark.django_db
@pytest.mark.parametrize("email", FORMULAS)
def test_the_portal_refuses_a_formula_as_paypal_email(portal_client, affiliate, email):
    response = portal_client.post("/portal/settings/payout/", {"paypal_email": email})
    assert response.status_code == 200  # the form again, with its error
    affiliate.refresh_from_db()
    assert affiliate.payout_method == "" and affiliate.paypal_email == ""


@pytest.mark.django_db
def test_the_model_refuses_a_formula_as_paypal_email(affiliate):
    affiliate.paypal_email = "=1+1@csv.example"
    with pytest.raises(ValidationError) as error:
        affiliate.full_clean()
    assert "paypal_email" in error.value.message_dict
    affiliate.paypal_email = "pay+tag@partner.example"  # a plus inside the address is fine
    affiliate.full_clean()


def test_the_field_carries_the_validator():
    field = Affiliate._meta.get_field("paypal_email")
    assert any(getattr(v, "__name__", "") == "validate_paypal_email" for v in field.validators)
