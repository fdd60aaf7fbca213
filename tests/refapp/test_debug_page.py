"""With DEBUG on (make run), the technical 500 page shows no secret: not SECRET_KEY, not the hash
salt (which used to default to SECRET_KEY under a name the page did not mask), not Stripe's keys."""

import secrets

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import path


def boom(request):
    raise RuntimeError("something failed")


urlpatterns = [path("boom", boom)]

# Made at run time: the page shows the source lines around the raising frame, and literals there
# would be found in the body whatever the filter does.
DB_PASSWORD = secrets.token_hex(12)
REDIS_PASSWORD = secrets.token_hex(12)


@pytest.fixture
def debug_page(settings):
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    settings.STRIPE_SECRET_KEY = f"sk_test_{secrets.token_hex(12)}"
    settings.STRIPE_WEBHOOK_SECRET = f"whsec_{secrets.token_hex(12)}"
    settings.REDIS_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6399/0"
    settings.DATABASE_URL = f"postgres://refapp:{DB_PASSWORD}@db.example/refapp"
    client = Client(raise_request_exception=False)
    # runserver hands the whole process environment to the request's META: so does this request.
    response = client.get(
        "/boom",
        SECRET_KEY=django_settings.SECRET_KEY,
        REFAPP_HASH_SALT=settings.REFAPP_HASH_SALT,
        STRIPE_SECRET_KEY=settings.STRIPE_SECRET_KEY,
        DATABASE_URL=settings.DATABASE_URL,
    )
    assert response.status_code == 500
    return response.content.decode()


def test_the_hash_salt_is_not_the_secret_key():
    assert django_settings.REFAPP_HASH_SALT
    assert django_settings.REFAPP_HASH_SALT != django_settings.SECRET_KEY
    assert django_settings.SECRET_KEY not in django_settings.REFAPP_HASH_SALT


@pytest.mark.django_db
def test_the_debug_page_masks_every_secret(debug_page, settings):
    body = debug_page
    assert "RuntimeError" in body and "something failed" in body  # it is the technical page
    for secret in (
        settings.SECRET_KEY,
        settings.REFAPP_HASH_SALT,
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_WEBHOOK_SECRET,
        DB_PASSWORD,
        REDIS_PASSWORD,
    ):
        assert secret not in body
    assert "REFAPP_HASH_SALT" in body  # listed, but masked
