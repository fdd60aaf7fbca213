"""The tracker tag a site owner pastes (refapp/tracker.py), and where the panel and createprogram show it."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from refapp.tracker import tracker_bundle, tracker_snippet, tracker_url

SRC = re.escape(f'src="http://testserver.example/t.js?v={tracker_bundle()[1]}"')


def tag(**kwargs) -> str:
    return tracker_snippet(base_url="http://testserver.example", **kwargs)


def test_default_program_gets_the_short_tag():
    assert tag(slug="acme") == (
        f'<script async src="http://testserver.example/t.js?v={tracker_bundle()[1]}" '
        'data-program="acme"></script>'
    )


def test_extra_parameter_names_are_carried_in_order_without_ref_or_duplicates():
    html = tag(slug="acme", params=["via", "ref", " aff ", "via", ""])
    assert re.fullmatch(rf'<script async {SRC} data-program="acme" data-params="via,aff"></script>', html)


def test_cookie_days_are_carried_when_they_differ_from_the_default():
    assert 'data-cookie-days="7"' in tag(slug="acme", cookie_days=7)
    assert "data-cookie-days" not in tag(slug="acme", cookie_days=30)


def test_params_and_cookie_days_together():
    html = tag(slug="acme", params=["via"], cookie_days=90)
    assert re.fullmatch(
        rf'<script async {SRC} data-program="acme" data-params="via" data-cookie-days="90"></script>', html
    )


def test_every_attribute_is_html_escaped():
    html = tracker_snippet(slug='a"><x', params=["v<i>a", "b&c"], base_url='http://h.example/"&')
    assert html == (
        f'<script async src="http://h.example/&quot;&amp;/t.js?v={tracker_bundle()[1]}" '
        'data-program="a&quot;&gt;&lt;x" data-params="v&lt;i&gt;a,b&amp;c"></script>'
    )


def test_url_uses_base_url_setting_at_call_time(settings):
    settings.BASE_URL = "https://refapp.example"
    assert tracker_url() == f"https://refapp.example/t.js?v={tracker_bundle()[1]}"
    assert tracker_snippet(slug="acme").startswith('<script async src="https://refapp.example/t.js?v=')


def test_bundle_is_built_once():
    assert tracker_bundle() is tracker_bundle()


@pytest.mark.django_db
def test_panel_shows_the_programs_params_and_cookie_days(staff_client, program):
    program.ref_params = ["via", "aff"]
    program.cookie_days = 7
    program.save()
    page = staff_client.get("/panel/p/acme/keys/").content.decode()
    # Inside the <textarea>, so the tag itself is escaped once more.
    assert "data-params=&quot;via,aff&quot; data-cookie-days=&quot;7&quot;&gt;&lt;/script&gt;" in page


@pytest.mark.django_db
def test_createprogram_prints_the_tag_with_cookie_days(capsys):
    call_command(
        "createprogram", "--name", "Acme", "--slug", "acme", "--website", "https://acme.example",
        "--cookie-days", "14",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert re.search(
        r'<script async src="[^"]+/t\.js\?v=\w+" data-program="acme" data-cookie-days="14">', out
    )
