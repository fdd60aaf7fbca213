"""The hand-written IPv4 parse agrees with the ipaddress module on every input."""

import ipaddress
import random

import pytest

from refapp.hashing import _ipv4_prefix, ip_prefix_and_hash, salted_hash


def expected_prefix(text: str) -> str | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.version != 4 or str(addr) != text:
        return None
    return str(ipaddress.ip_network(f"{addr}/24", strict=False))


EDGE_CASES = [
    "1.2.3.4",
    "255.255.255.255",
    "0.0.0.0",
    "01.2.3.4",
    "1.2.3.04",
    "0.0.0.00",
    "256.1.1.1",
    "1.2.3.1000",
    "1.2.3",
    "1.2.3.4.5",
    "1..3.4",
    "1.2.3.-4",
    "1.2.3.+4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4\n",
    "\uff11.2.3.4",  # a full-width digit: isdigit() but not ASCII
    "1.2.3.\u00b2",  # a superscript two
    "::1",
    "::ffff:1.2.3.4",
    "",
    "a.b.c.d",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_agree_with_ipaddress(text):
    assert _ipv4_prefix(text) == expected_prefix(text)


def test_random_strings_agree_with_ipaddress():
    rng = random.Random(5)
    parts = lambda: rng.choice(  # noqa: E731
        [str(rng.randint(0, 300)), f"0{rng.randint(0, 9)}", "", "x", str(rng.randint(0, 255))]
    )
    for _ in range(20_000):
        text = ".".join(parts() for _ in range(rng.choice([3, 4, 4, 4, 5])))
        assert _ipv4_prefix(text) == expected_prefix(text), text


def test_prefix_and_hash_of_both_families():
    assert ip_prefix_and_hash("203.0.113.9") == ("203.0.113.0/24", salted_hash("ip", "203.0.113.9"))
    assert ip_prefix_and_hash("2001:db8::1") == ("2001:db8::/48", salted_hash("ip", "2001:db8::1"))
    assert ip_prefix_and_hash("not an ip") == ("", "")
