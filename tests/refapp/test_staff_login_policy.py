"""One login policy for every staff sign-in path: the Django admin's login cannot get around the
panel's lockout, in either order (docs/architecture.md, "Security")."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

RIGHT = "correct horse battery"


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def lock_out_on_the_panel(client: Client) -> None:
    for _ in range(5):
        assert client.post("/panel/login/", {"username": "admin", "password": "wrong"}).status_code == 200
    assert client.post("/panel/login/", {"username": "admin", "password": "wrong"}).status_code == 429


def admin_attempts(client: Client, password: str, times: int = 1) -> None:
    for _ in range(times):
        response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": password})
        assert response.status_code != 200 or "errornote" not in response.content.decode()
        assert not signed_in(client)


def test_a_user_locked_out_on_the_panel_cannot_sign_in_through_the_admin(staff_user):
    client = Client()
    lock_out_on_the_panel(client)
    admin_attempts(client, "wrong", times=12)
    admin_attempts(client, RIGHT)
    assert client.get("/panel/").status_code == 302 and client.get("/admin/").status_code == 302
    # From another client too: the lock is the username's, not the browser's.
    other = Client()
    admin_attempts(other, RIGHT)
    assert other.post("/panel/login/", {"username": "admin", "password": RIGHT}).status_code == 429
    assert not signed_in(other)


def test_failing_at_the_admin_first_never_signs_in_and_the_panel_still_locks(staff_user):
    client = Client()
    admin_attempts(client, "wrong", times=12)
    admin_attempts(client, RIGHT)
    lock_out_on_the_panel(client)
    locked = client.post("/panel/login/", {"username": "admin", "password": RIGHT})
    assert locked.status_code == 429 and not signed_in(client)
    admin_attempts(client, RIGHT)


def test_the_admin_login_is_the_panels_and_leads_back_to_the_admin(staff_user):
    client = Client()
    response = client.get("/admin/")
    assert response.status_code == 302
    followed = client.get(response["Location"])
    assert followed.status_code == 302 and followed["Location"] == "/panel/login/?next=/admin/"
    page = client.get(followed["Location"])
    assert page.status_code == 200 and 'name="next" value="/admin/"' in page.content.decode()
    signed = client.post("/panel/login/", {"username": "admin", "password": RIGHT, "next": "/admin/"})
    assert signed.status_code == 302 and signed["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_the_panel_login_still_checks_passwords_while_the_cache_is_unreachable(
    staff_user, settings, monkeypatch
):
    """The lockout's counters live in the cache (Redis in production). Without it, sign-in is not a
    500: the password is still checked, only the counting pauses."""
    import socket

    from refapp import ratelimit

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(ratelimit, "_down_until", 0.0)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": ratelimit.redis_options(),
        }
    }
    client = Client()
    assert client.post("/panel/login/", {"username": "admin", "password": "wrong"}).status_code == 200
    assert not signed_in(client)
    assert client.post("/panel/login/", {"username": "admin", "password": RIGHT}).status_code == 302
    assert signed_in(client)
