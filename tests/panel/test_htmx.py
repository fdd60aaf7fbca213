"""refapp.htmx.render_page: the named partial for htmx swaps, the whole page otherwise."""

import pytest
from django.test import RequestFactory
from django_htmx.middleware import HtmxDetails

from refapp.htmx import render_page

pytestmark = pytest.mark.django_db

TEMPLATE = "panel/events.html"  # a page with a `table` partial


def _request(**headers):
    request = RequestFactory().get("/panel/p/acme/events/", headers=headers)
    request.htmx = HtmxDetails(request)
    return request


def _render(request, program, staff_user):
    from refapp.panel.forms import EventFilterForm
    from refapp.panel.log_selectors import uncounted_page
    from tracking.models import Event

    request.user = staff_user
    context = {
        "program": program,
        "form": EventFilterForm({}),
        "page": uncounted_page(Event.objects.none(), None),
        "livemode": True,
    }
    return render_page(request, TEMPLATE, context, partial="table")


def test_a_plain_request_gets_the_whole_page(program, staff_user):
    response = _render(_request(), program, staff_user)
    assert b"<html" in response.content
    assert "HX-Request" in response["Vary"]


def test_an_htmx_request_gets_only_the_partial(program, staff_user):
    response = _render(_request(HX_Request="true"), program, staff_user)
    assert b"<html" not in response.content and b"<table" in response.content
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(program, staff_user):
    request = _request(HX_Request="true", HX_History_Restore_Request="true")
    response = _render(request, program, staff_user)
    assert b"<html" in response.content
    assert "HX-Request" in response["Vary"]


def test_status_is_passed_on(program, staff_user):
    request = _request()
    request.user = staff_user
    response = render_page(request, "panel/login.html", {"form": None, "next": "/panel/"}, status=429)
    assert response.status_code == 429 and "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    ("headers", "whole_page"),
    [
        ({}, True),
        ({"HX-Request": "true"}, False),
        ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, True),
    ],
)
def test_panel_pages_answer_htmx_through_the_helper(staff_client, program, headers, whole_page):
    response = staff_client.get("/panel/p/acme/commissions/", headers=headers)
    assert response.status_code == 200
    assert (b"<html" in response.content) is whole_page
    assert "HX-Request" in response["Vary"]


def test_portal_pages_answer_htmx_through_the_helper(portal_client):
    partial = portal_client.get("/portal/commissions/", headers={"HX-Request": "true"})
    restore = portal_client.get(
        "/portal/commissions/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert b"<html" not in partial.content and b"<html" in restore.content
    assert "HX-Request" in partial["Vary"] and "HX-Request" in restore["Vary"]
