"""`make test` beside a running `make run` in the same folder: the instance's worker never takes the
tests' tasks, because the test settings give every test process its own queue (refapp/settings_test.py)."""

import os
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings

from tests.refapp import test_celery_worker as worker_tests


def start_instance_worker() -> tuple[subprocess.Popen, list[str]]:
    """A worker as `make run` starts it: development settings, the project's own var/ folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFAPP_BROKER_", "DJANGO_SETTINGS"))}
    env.pop("DATABASE_URL", None)  # the embedded default's database (a running instance's own)
    env.update(DJANGO_SETTINGS_MODULE="refapp.settings", DEBUG="1", REFAPP_VAR_DIR=str(settings.VAR_DIR))
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "refapp", "worker", "--pool", "solo", "--concurrency", "1"]
        + ["--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    proc.reader = reader  # type: ignore[attr-defined]
    return proc, lines


@pytest.mark.worker
def test_worker_tests_pass_beside_a_running_instance_worker(transactional_db):
    instance, lines = start_instance_worker()
    try:
        deadline = time.monotonic() + 60
        while not any(" ready." in line for line in lines) and instance.poll() is None:
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.2)
        assert instance.poll() is None, "".join(lines)[-3000:]
        # The suite's worker test, its own worker racing the instance's for the task.
        worker_tests.test_worker_approves_due_commissions(transactional_db)
    finally:
        instance.terminate()
        try:
            instance.wait(timeout=20)
        except subprocess.TimeoutExpired:
            instance.kill()
            instance.wait()
        instance.reader.join(timeout=10)
        instance.stdout.close()
    assert not any("Task commissions.tasks.approve_due_commissions" in line for line in lines), "".join(
        lines
    )[-3000:]
