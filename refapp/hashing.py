"""One-way hashes for personal data we only ever compare (IPs, customer emails)."""

import hashlib
import hmac
import ipaddress

from django.conf import settings


def salted_hash(kind: str, value: str) -> str:
    key = f"{settings.REFAPP_HASH_SALT}:{kind}".encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def email_hash(email: str) -> str:
    return salted_hash("email", email.strip().lower())


def _ipv4_prefix(ip: str) -> str | None:
    """The /24 of a dotted-quad IPv4 address in the form ipaddress accepts (no leading zeros), or
    None for anything else. The ipaddress module's parse was a tenth of a buffered click's CPU."""
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    for part in parts:
        if not (part.isascii() and part.isdigit() and len(part) <= 3) or (part[0] == "0" and part != "0"):
            return None
        if int(part) > 255:
            return None
    return f"{parts[0]}.{parts[1]}.{parts[2]}.0/24"


def ip_prefix_and_hash(ip: str) -> tuple[str, str]:
    """A truncated prefix (/24 for IPv4, /48 for IPv6) to show, and a salted hash to compare."""
    prefix = _ipv4_prefix(ip)
    if prefix is not None:
        return prefix, salted_hash("ip", ip)
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "", ""
    prefix_len = 24 if addr.version == 4 else 48
    network = ipaddress.ip_network(f"{addr}/{prefix_len}", strict=False)
    return str(network), salted_hash("ip", str(addr))


def client_ip(request) -> str:
    if settings.REFAPP_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")
