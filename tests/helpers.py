"""Small test helpers that build no domain rows (those are in tests/factories.py)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from affiliates.models import Program, ProgramStaff


def staff_client_with_role(program: Program, role: str, username: str = "viewer") -> Client:
    """A client signed in as a staff user with `role` in `program` only."""
    user = User.objects.create_user(
        username, f"{username}@acme.example", "correct horse battery", is_staff=True
    )
    ProgramStaff.objects.create(program=program, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def csv_lines(response) -> list[str]:
    """The lines of a streamed CSV export."""
    assert response.streaming
    return b"".join(response.streaming_content).decode().splitlines()
