"""The provider served as in production (``idp serve``) with several worker processes, for races and faults.

A pytest plugin (``pytest_plugins`` of ``conftest``). :func:`served` starts
``idp serve --app served_app:app`` (granian) with 2 workers × 4 threads on the
test's database and settings (those of the ``app`` fixture, passed as ``IDP_*``
variables), waits until it answers, and stops it after the test. Everything the
server writes (granian's own lines, the access log, the application's log) goes
to one file; :meth:`Served.access_lines` and :meth:`Served.app_lines` sort it.
:meth:`Served.checks` counts the secrets really checked (see :mod:`served_app`).
"""

from __future__ import annotations

import os
import re
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

#: An access-log line (``idp.cli.serve.ACCESS_LOG_FORMAT``); group 1 is the status.
ACCESS_LINE = re.compile(r'^\S+ - - \[[^\]]+\] "[A-Z]+ \S* [^"]*" (\d{3}) [\d.]+$')
#: granian's own lines: ``[INFO] Spawning worker-1 with PID: 1234``.
SERVER_LINE = re.compile(r"^\[(INFO|WARNING|ERROR|DEBUG)\] ")


def _env_value(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class Served:
    def __init__(self, app, port: int, folder: Path, workers: int = 2, threads: int = 4, extra_env: dict | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.folder = folder
        self.log = folder / "server.log"  # granian's lines, the access log and the application's log
        self.checks_file = folder / "checks.txt"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        for setting in config.SETTINGS:
            value = app.config.get(setting.env)
            if value is not None:
                env[setting.env] = _env_value(value)
        env["IDP_TEST_CHECKS_FILE"] = str(self.checks_file)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT)])
        env.update(extra_env or {})
        self.workers_wanted = workers
        self.command = [
            str(Path(sys.executable).with_name("idp")), "serve",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
            "--graceful-timeout", "2", "--app", "served_app:app", "--chdir", str(TESTS),
        ]
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Served":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, cwd=TESTS, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.logs()}")
            try:
                if requests.get(self.url + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                    self._wait_for_workers(deadline)
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout} s:\n{self.logs()}")

    def _wait_for_workers(self, deadline: float) -> None:
        while len(self.workers()) < self.workers_wanted and time.monotonic() < deadline:
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
        """Everything the server wrote: granian's lines, the access log and the application's log."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def access_lines(self) -> list[str]:
        return [line for line in self.logs().splitlines() if ACCESS_LINE.match(line)]

    def statuses(self) -> list[int]:
        """The status of every request answered so far, from the access log."""
        return [int(ACCESS_LINE.match(line).group(1)) for line in self.access_lines()]

    def app_lines(self) -> list[str]:
        """What the application (or a library) logged: neither an access line nor one of granian's own."""
        return [line for line in self.logs().splitlines()
                if line.strip() and not ACCESS_LINE.match(line) and not SERVER_LINE.match(line)]


@pytest.fixture
def served(app, port, tmp_path):
    """The test's app served by ``idp serve``, 2 workers × 4 threads, on the test's database (``.url``)."""
    server = Served(app, port, tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def make_served(app, port, tmp_path):
    """Start it with other options: ``make_served(workers=3, extra_env={...})``; stopped after the test."""
    started: list[Served] = []

    def _make(**kwargs) -> Served:
        server = Served(app, port, tmp_path, **kwargs).start()
        started.append(server)
        return server

    yield _make
    for server in started:
        server.stop()
