import json as jsonlib
import os

import pytest
from django.test import Client

from affiliates.services import apikey_create
from refapp import ratelimit
from tests.factories import AffiliateFactory, CommissionRuleFactory, ProgramFactory
from tracking import lookup


@pytest.fixture(autouse=True)
def _fresh_caches():
    from django.core.cache import cache

    lookup.clear()
    cache.clear()
    ratelimit.clear_leases()
    yield
    lookup.clear()
    ratelimit.clear_leases()


# The SQL write path of conversions exists on PostgreSQL only; elsewhere the ORM path is the only one.
EVENT_WRITE_PATHS = ["sql", "orm"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else ["orm"]


@pytest.fixture(params=EVENT_WRITE_PATHS)
def event_write_path(request, settings):
    """Run a test through each write path of conversions: on PostgreSQL both must give the same
    answers and rows (commissions/ingest_pg.py and services._event_ingest)."""
    settings.REFAPP_EVENT_SQL_PATH = request.param == "sql"
    return request.param


@pytest.fixture
def program(db):
    return ProgramFactory(slug="acme", name="Acme", website="https://acme.example")


@pytest.fixture
def affiliate(program):
    return AffiliateFactory(program=program, code="JOHN", email="john@partner.example", name="John")


@pytest.fixture
def sale_rule(program):
    return CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=2000)


class ApiClient:
    """A test client that speaks JSON with a Bearer key."""

    def __init__(self, secret: str):
        self.secret = secret
        self.client = Client()

    def _call(self, method: str, path: str, body=None, **headers):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {self.secret}", **headers}
        if body is not None:
            kwargs["data"] = body if isinstance(body, (bytes, str)) else jsonlib.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method)(path, **kwargs)

    def get(self, path, **kw):
        return self._call("get", path, **kw)

    def post(self, path, body=None, **kw):
        return self._call("post", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self._call("patch", path, body, **kw)

    def delete(self, path, **kw):
        return self._call("delete", path, **kw)


@pytest.fixture
def live_key(program):
    return apikey_create(program=program, mode="live")[1]


@pytest.fixture
def api_client(live_key):
    return ApiClient(live_key)


@pytest.fixture
def test_api_client(program):
    return ApiClient(apikey_create(program=program, mode="test")[1])


# --- panel and portal users -------------------------------------------------------------------


@pytest.fixture
def staff_user(program, django_user_model):
    """A staff admin of `program` only."""
    from affiliates.models import ProgramStaff

    user = django_user_model.objects.create_user(
        "admin", "admin@acme.example", "correct horse battery", is_staff=True
    )
    ProgramStaff.objects.create(program=program, user=user, role=ProgramStaff.Role.ADMIN)
    return user


@pytest.fixture
def staff_client(staff_user):
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def other_staff_client(db, django_user_model):
    """A staff admin of another program: must get 404 on everything of `program`."""
    from affiliates.models import ProgramStaff

    other = ProgramFactory(slug="globex", name="Globex", website="https://globex.example")
    user = django_user_model.objects.create_user(
        "stranger", "s@globex.example", "correct horse battery", is_staff=True
    )
    ProgramStaff.objects.create(program=other, user=user, role=ProgramStaff.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


def portal_login(client: Client, affiliate) -> Client:
    from affiliates.access import PORTAL_AFFILIATE, PORTAL_EMAIL

    session = client.session
    session[PORTAL_EMAIL] = affiliate.email
    session[PORTAL_AFFILIATE] = affiliate.pk
    session.save()
    return client


@pytest.fixture
def portal_client(affiliate):
    """The portal signed in as `affiliate` (John)."""
    return portal_login(Client(), affiliate)


@pytest.fixture
def other_portal_client(program):
    """Another affiliate of the same program: must never see John's rows."""
    other = AffiliateFactory(program=program, code="MARY", email="mary@partner.example", name="Mary")
    return portal_login(Client(), other)
