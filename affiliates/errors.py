"""The errors of the affiliates app's writes, shared by its service modules."""

from __future__ import annotations


class Conflict(Exception):
    """A unique value (code, email, slug) is already taken."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class Invalid(Exception):
    """Values that cannot be saved, every problem at once: {field: [message, …]}."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors
