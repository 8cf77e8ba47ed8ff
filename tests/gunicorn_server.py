"""The provider served by gunicorn with several worker processes, for races and faults.

A pytest plugin (``pytest_plugins`` of ``conftest``). :func:`gunicorn` starts
``gunicorn -c gunicorn.conf.py served_app:app`` with 2 workers × 4 threads on
the test's database and settings (those of the ``app`` fixture, passed as
``IDP_*`` variables), waits until it answers, and stops it after the test. The
access log and the error log (application logs included) are files the test can
read; :meth:`Gunicorn.checks` counts the secrets really checked (see
:mod:`served_app`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from idp import config

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _env_value(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class Gunicorn:
    def __init__(self, app, port: int, folder: Path, workers: int = 2, threads: int = 4, extra_env: dict | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.folder = folder
        self.access_log = folder / "access.log"
        self.error_log = folder / "error.log"
        self.checks_file = folder / "checks.txt"
        self.stderr_log = folder / "stderr.log"  # what the workers write to stderr (Python's logging by default)
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        for setting in config.SETTINGS:
            value = app.config.get(setting.env)
            if value is not None:
                env[setting.env] = _env_value(value)
        env["IDP_TEST_CHECKS_FILE"] = str(self.checks_file)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT)])
        env.update(extra_env or {})
        self.command = [
            sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
            "--access-logfile", str(self.access_log), "--error-logfile", str(self.error_log),
            "--graceful-timeout", "2", "served_app:app",
        ]
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Gunicorn":
        with open(self.stderr_log, "ab") as stderr:
            self.process = subprocess.Popen(self.command, cwd=TESTS, env=self.env, stdout=stderr, stderr=stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.logs()}")
            try:
                if requests.get(self.url + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                    self._wait_for_workers(deadline)
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{self.logs()}")

    def _wait_for_workers(self, deadline: float) -> None:
        while len(self.workers()) < int(self.command[self.command.index("--workers") + 1]) \
                and time.monotonic() < deadline:
            time.sleep(0.05)

    def workers(self) -> list[int]:
        """The pids of the worker processes now alive."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def kill_worker(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def checks(self, label: str) -> int:
        """How many secrets of kind ``label`` (``password``, ``code``) the workers really checked."""
        if not self.checks_file.exists():
            return 0
        return self.checks_file.read_text().split().count(label)

    def reset_checks(self) -> None:
        self.checks_file.unlink(missing_ok=True)

    def logs(self) -> str:
        """Everything the server logged: access log, error log, then the workers' stderr (application logs)."""
        parts = [p.read_text(errors="replace") for p in (self.access_log, self.error_log, self.stderr_log)
                 if p.exists()]
        return "\n".join(parts)


@pytest.fixture
def gunicorn(app, port, tmp_path):
    """The test's app served by gunicorn, 2 workers × 4 threads, on the test's database (``.url``)."""
    server = Gunicorn(app, port, tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def make_gunicorn(app, port, tmp_path):
    """Start it with other options: ``make_gunicorn(workers=3, extra_env={...})``; stopped after the test."""
    started: list[Gunicorn] = []

    def _make(**kwargs) -> Gunicorn:
        server = Gunicorn(app, port, tmp_path, **kwargs).start()
        started.append(server)
        return server

    yield _make
    for server in started:
        server.stop()
