"""Settings come from the environment (12-factor), with an optional `.env` file.

With no DATABASE_URL the project runs on a SQLite file under var/ and with no REDIS_URL Celery uses
kombu's filesystem transport under var/: the embedded default that `make run` and `make test` use on
a fresh machine. PostgreSQL and Redis are the production path.
"""

import hashlib
import hmac
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REFAPP_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _load_dotenv(path: Path) -> None:
    """Minimal .env reader: KEY=VALUE lines; the real environment always wins."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


_load_dotenv(BASE_DIR / ".env")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


DEBUG = env_bool("DEBUG", False)
DATABASE_URL = os.environ.get("DATABASE_URL", "")
EMBEDDED = not DATABASE_URL


def _embedded_secret_key() -> str:
    """The embedded default keeps a random key in var/ so a newcomer needs no configuration."""
    import secrets

    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or EMBEDDED):
        raise RuntimeError("SECRET_KEY must be set in production (DATABASE_URL set and DEBUG off).")
    SECRET_KEY = _embedded_secret_key()

BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:8000").rstrip("/")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if not ALLOWED_HOSTS:
    from urllib.parse import urlsplit

    ALLOWED_HOSTS = [urlsplit(BASE_URL).hostname or "localhost"]
    if DEBUG or EMBEDDED:
        ALLOWED_HOSTS += ["localhost", "127.0.0.1", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = [BASE_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "refapp",
    "affiliates",
    "tracking",
    "commissions",
    "payouts",
    "webhooks",
    "refapp.panel",
    "refapp.portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the path, query or form: a NUL or lone surrogate answers 400 here.
    "refapp.middleware.InputGateMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "refapp.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "refapp.urls"
WSGI_APPLICATION = "refapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "refapp.panel.context_processors.navigation",
                "refapp.portal.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600))}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Off by default (Django's default): a check costs a SELECT 1 round trip on every request,
        # the largest share of a click after the INSERT. A connection the server dropped fails one
        # request and is then replaced.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DB_CONN_HEALTH_CHECKS", False)
        # JIT compiling costs more than it saves on queries of this size (measured: 796 ms of the
        # affiliates list's 1,139 ms at 20,000 affiliates); the server's default stays for others.
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
        # Prepared statements for the conversion path's reads and writes (`commissions.ingest_pg`
        # prepares them itself when this is set); the ORM keeps client-side binding and never
        # prepares. Turn off behind a pooler in transaction mode that cannot keep them.
        if env_bool("DB_PREPARED_STATEMENTS", True):
            DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "refapp.sqlite3",
            # WAL lets readers run beside the single writer; IMMEDIATE takes the write lock at
            # BEGIN so two writers queue instead of failing with "database is locked" mid-way.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
            },
            "TEST": {"NAME": str(VAR_DIR / "test-refapp.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Covering indexes (INCLUDE columns) serve PostgreSQL's index-only scans; SQLite builds the same
    # index on its key columns alone, which is all it needs, so its warning about them says nothing.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Cache, broker ----------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Redis is not allowed to stall the web path: a dead or unreachable Redis costs one short connect
# timeout, then refapp/ratelimit.py skips it for REFAPP_REDIS_RETRY_SECONDS (tracking degrades, never fails).
REFAPP_REDIS_CONNECT_TIMEOUT = env_float("REFAPP_REDIS_CONNECT_TIMEOUT", 0.25)
REFAPP_REDIS_SOCKET_TIMEOUT = env_float("REFAPP_REDIS_SOCKET_TIMEOUT", 0.5)
REFAPP_REDIS_RETRY_SECONDS = env_float("REFAPP_REDIS_RETRY_SECONDS", 5.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": REFAPP_REDIS_CONNECT_TIMEOUT,
                "socket_timeout": REFAPP_REDIS_SOCKET_TIMEOUT,
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # A prefix on every broker key keeps two sets of processes on one Redis apart (the test suite
    # sets one per test process, so a running instance's worker never takes the tests' tasks).
    if os.environ.get("REFAPP_BROKER_KEY_PREFIX"):
        CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": os.environ["REFAPP_BROKER_KEY_PREFIX"]}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The queue folder is the instance's: the test suite gives each test process its own, so a
    # running `make run` worker never takes the tests' tasks.
    _broker_dir = Path(os.environ.get("REFAPP_BROKER_DIR", VAR_DIR / "broker"))
    for sub in ("out", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control in the cwd
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless told to
# reuse it: a new PostgreSQL connection per payout was a quarter of a payout task's time. Reused, a
# connection a task left broken or older than CONN_MAX_AGE is closed after it (refapp/celery.py).
CELERY_DB_REUSE_MAX = 1000

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# In development (DEBUG or the embedded default without collectstatic) serve from the source folders.
WHITENOISE_USE_FINDERS = DEBUG or not (BASE_DIR / "staticfiles").is_dir()
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Email --------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "refapp <noreply@localhost>")

# --- Stripe -------------------------------------------------------------------------------------
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")

# --- refapp -------------------------------------------------------------------------------------
# Salt for the one-way hashes of IPs and customer emails. Set it apart from SECRET_KEY so that rotating
# the session key does not orphan every stored hash. No secret is another setting's default (a value
# copied under a name the debug page does not mask showed SECRET_KEY): unset, it is derived from
# SECRET_KEY one way, under a fixed label, so it reveals nothing about the key (docs/decisions.md).
REFAPP_HASH_SALT = (
    os.environ.get("REFAPP_HASH_SALT", "")
    or hmac.new(SECRET_KEY.encode(), b"refapp.hash-salt.v1", hashlib.sha256).hexdigest()
)
REFAPP_MAX_BODY_BYTES = 64 * 1024
REFAPP_RATE_LIMITS = {
    # requests per minute per client IP (clicks, redirects) or per API key (events, automation)
    "click": env_int("RATE_LIMIT_CLICKS_PER_MINUTE", 600),
    "go": env_int("RATE_LIMIT_GO_PER_MINUTE", 600),
    "api": env_int("RATE_LIMIT_API_PER_MINUTE", 6000),
    # failed API authentications (missing or wrong key) per client IP; valid keys never count
    "auth-fail": env_int("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", 20),
}
REFAPP_TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
REFAPP_PROGRAM_CACHE_SECONDS = env_int("REFAPP_PROGRAM_CACHE_SECONDS", 30)
REFAPP_API_KEY_CACHE_SECONDS = env_int("REFAPP_API_KEY_CACHE_SECONDS", 10)
# Answer click beacons in a WSGI layer before Django's request cycle (refapp/fastpath.py).
REFAPP_CLICK_FAST_PATH = env_bool("REFAPP_CLICK_FAST_PATH", True)
# The same for conversions, POST /api/v1/events.
REFAPP_EVENTS_FAST_PATH = env_bool("REFAPP_EVENTS_FAST_PATH", True)
# The same for the tracker script GET /t.js and the redirect links GET /go/…
REFAPP_TRACKER_FAST_PATH = env_bool("REFAPP_TRACKER_FAST_PATH", True)
REFAPP_GO_FAST_PATH = env_bool("REFAPP_GO_FAST_PATH", True)
# On PostgreSQL a conversion is decided from one read and written with one statement
# (commissions/ingest_pg.py); off, every database takes the ORM path.
REFAPP_EVENT_SQL_PATH = env_bool("REFAPP_EVENT_SQL_PATH", True)
# Outgoing webhooks may target loopback and private addresses (development, tests) only with this.
REFAPP_WEBHOOKS_ALLOW_PRIVATE = env_bool("REFAPP_WEBHOOKS_ALLOW_PRIVATE", False)
# Accept clicks into Redis and copy them into PostgreSQL in batches (tracking/buffer.py). Needs
# REDIS_URL; use Redis with appendonly if a Redis crash must not lose the last second of clicks.
REFAPP_CLICK_BUFFER = env_bool("REFAPP_CLICK_BUFFER", False)

DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# The panel's import page (commissions/imports.py): the largest CSV it accepts. Bigger files go
# through `manage.py import_affiliates`, which has no limit.
REFAPP_IMPORT_MAX_BYTES = env_int("REFAPP_IMPORT_MAX_BYTES", 20 * 1024 * 1024)

# The debug page (DEBUG on) masks every secret-like setting and request variable, not only Django's
# KEY/SECRET/PASS/TOKEN names: salts, DSNs, URLs that carry credentials, anything Stripe.
DEFAULT_EXCEPTION_REPORTER_FILTER = "refapp.reporting.SecretsFilter"

# --- Security -------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG and BASE_URL.startswith("https://"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
