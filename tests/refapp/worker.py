"""Start a real Celery worker process against the test database and the configured broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{Path(db['NAME']).resolve()}"


def start_worker(**env: str) -> subprocess.Popen:
    from webhooks import queued

    queued.unmark()  # a deliver_due flag left by an earlier test would hold the first publish back
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "refapp.settings",
        "DEBUG": "1",
        # the test process's own queue, never the one a running instance's worker reads
        **(
            {"REFAPP_BROKER_KEY_PREFIX": settings.REFAPP_BROKER_KEY_PREFIX}
            if settings.REDIS_URL
            else {"REFAPP_BROKER_DIR": str(settings.REFAPP_BROKER_DIR)}
        ),
        **env,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "refapp",
            "worker",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=settings.BASE_DIR,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_worker(worker: subprocess.Popen) -> str:
    if worker.poll() is None:
        worker.terminate()
    try:
        return worker.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.communicate()[0]
