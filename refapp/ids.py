"""Public ids: a type prefix plus random characters (`aff_3kq…`), stable and unguessable."""

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE = len(_ALPHABET)


def new_public_id(prefix: str, length: int = 16) -> str:
    """`length` characters drawn uniformly from [0-9a-z]: one random number below 36**length, written
    in base 36 (one call to the system's randomness instead of one per character)."""
    n = secrets.randbelow(_BASE**length)
    chars = []
    for _ in range(length):
        n, digit = divmod(n, _BASE)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_" + "".join(chars)
