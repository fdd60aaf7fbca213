"""Test settings: the same as production plus speed-ups. DATABASE_URL/REDIS_URL still pick the engine."""

import atexit
import os
import shutil

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")

from .settings import *  # noqa: E402,F403
from .settings import ALLOWED_HOSTS, REFAPP_RATE_LIMITS  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
# Tests that exercise the limiter lower these themselves.
REFAPP_RATE_LIMITS = dict.fromkeys(REFAPP_RATE_LIMITS, 100000)
REFAPP_PROGRAM_CACHE_SECONDS = 0
REFAPP_API_KEY_CACHE_SECONDS = 0
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver", "localhost", "127.0.0.1"]
# Serve static files from the source folders; tests never run collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Each test process gets its own SQLite file, so parallel runs on one machine do not collide.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-refapp-{os.getpid()}.sqlite3")}  # noqa: F405

# Never share a queue or a cache with a running instance (`make run` in the same folder): each test
# process has its own file-broker folder, broker key prefix and cache key prefix. The real workers
# the integration tests start are given the same (tests/refapp/worker.py).
TEST_INSTANCE = f"test-{os.getpid()}"
if REDIS_URL:  # noqa: F405
    REFAPP_BROKER_KEY_PREFIX = f"refapp-{TEST_INSTANCE}:"
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": REFAPP_BROKER_KEY_PREFIX}
    CACHES["default"]["KEY_PREFIX"] = TEST_INSTANCE  # noqa: F405
else:
    REFAPP_BROKER_DIR = VAR_DIR / f"{TEST_INSTANCE}-broker"  # noqa: F405
    for _sub in ("out", "processed", "control"):
        (REFAPP_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
        "data_folder_in": str(REFAPP_BROKER_DIR / "out"),
        "data_folder_out": str(REFAPP_BROKER_DIR / "out"),
        "processed_folder": str(REFAPP_BROKER_DIR / "processed"),
        "control_folder": str(REFAPP_BROKER_DIR / "control"),
    }
    atexit.register(shutil.rmtree, REFAPP_BROKER_DIR, ignore_errors=True)
