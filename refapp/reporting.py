"""What Django's error reports (the DEBUG page, the error emails) may show of settings and requests."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class SecretsFilter(SafeExceptionReporterFilter):
    """Masks every setting, nested setting key and request META name that may hold a secret.

    Django's own pattern (API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE) misses salts, DSNs,
    URLs with credentials in them (DATABASE_URL, REDIS_URL, the broker, a cache's LOCATION) and
    Stripe settings; under runserver the request META also holds the whole process environment.
    """

    hidden_settings = re.compile(
        r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|SALT|DSN|DATABASE_URL|REDIS_URL|BROKER|LOCATION"
        r"|STRIPE|CREDENTIAL|PRIVATE|AUTH",
        flags=re.IGNORECASE,
    )
