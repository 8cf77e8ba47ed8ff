"""``idp serve``: the production server, granian serving ``idp.wsgi:app``.

Why granian rather than gunicorn: measured on this project's benchmark machine
(one core, 16 clients, the worker's CPU time per request), gunicorn's threaded
worker spent about 0.55 ms around each request whose Flask part took 0.09 ms
(headers and body written by two system calls, a thread-pool future and a poller
re-registration per request on a kept-alive connection); granian, whose HTTP side
is Rust (hyper), spends about 0.2 ms. On the public documents that is twice the
requests per core, and a third of a millisecond on every other request.

What it is set to, and why:

* ``--workers`` processes × ``--threads`` threads each (``IDP_WORKERS``,
  ``IDP_THREADS``): the threads run the application (a password check holds one
  for the duration of its Argon2 hash); the processes share nothing but the
  database (and Redis for the per-IP limits), so any number of them, on any
  number of hosts, act as one provider;
* a worker that dies is replaced (``respawn_failed_workers``), and a worker whose
  memory grows past ``--max-rss`` MiB (``IDP_WORKER_MAX_RSS``, 0: never) is
  replaced after its requests end;
* on SIGTERM or SIGINT the workers finish the requests in progress for up to
  ``--graceful-timeout`` seconds;
* the access log, one line per request, holds the client address, the method,
  the path without its query string, the status and the duration: authorization
  requests carry ``login_hint`` (a NIR) and logout requests ``id_token_hint`` (an
  ID token with personal data) in their query strings; the login and recovery
  links carry no secret in their path (their tokens travel in the URL fragment,
  which browsers never send). No Referer is logged;
* with ``IDP_LOG_FORMAT=json`` (production) granian's access log is off: the
  application's own request line (:mod:`idp.ops.recorder`) replaces it, one JSON
  line per request that also has the request id, the route (the URL rule rather
  than the path), and the client's address after ``IDP_PROXY_COUNT`` (granian's is
  the proxy's). Two lines per request would double the volume for nothing: every
  request granian serves reaches the application. granian's own lines (workers
  started, stopped) are JSON too, on the standard error like the application's;
* the metrics of all workers are added up (prometheus_client's multiprocess mode):
  ``PROMETHEUS_MULTIPROC_DIR`` is set, before the workers start, to a fresh
  directory (or the one the environment names, emptied), removed when the server
  stops. A worker that dies leaves its files, and its counts stay in the sums.

With ``IDP_ENV=production`` it first runs ``idp check`` (in a child process: this
master process never builds the app) and refuses to start while anything is wrong.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

#: One access-log line: no query string, no Referer, no cookie (see the module docstring).
ACCESS_LOG_FORMAT = '%(addr)s - - [%(time)s] "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'


#: ``--workers`` when neither the option nor IDP_WORKERS says.
DEFAULT_WORKERS = min(4, multiprocessing.cpu_count() * 2)


def _refuse_if_unfit(workers: int) -> None:
    """With ``IDP_ENV=production``: ``idp check`` (its messages on the terminal), and no start if it failed."""
    from .. import config

    if config.BY_NAME["ENV"].parse(os.environ.get("IDP_ENV", "development")) != "production":
        return
    check = subprocess.run([sys.executable, "-m", "idp.cli", "check", "--workers", str(workers)])
    if check.returncode != 0:
        raise click.ClickException("IDP_ENV=production: not starting while `idp check` finds problems (above).")


def _split_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8000", param_hint="--bind")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.command("serve")
@click.option("--bind", envvar="IDP_BIND", default="127.0.0.1:8000", show_default=True,
              help="HOST:PORT to listen on (IDP_BIND).")
@click.option("--workers", envvar="IDP_WORKERS", type=click.IntRange(min=1),
              default=DEFAULT_WORKERS, show_default="min(4, 2 × cores)",
              help="Worker processes (IDP_WORKERS).")
@click.option("--threads", envvar="IDP_THREADS", type=click.IntRange(min=1), default=4, show_default=True,
              help="Threads per worker running the application (IDP_THREADS).")
@click.option("--max-rss", envvar="IDP_WORKER_MAX_RSS", type=click.IntRange(min=0), default=0, show_default=True,
              help="Replace a worker whose memory exceeds this many MiB (IDP_WORKER_MAX_RSS; 0: never).")
@click.option("--graceful-timeout", type=click.IntRange(min=1), default=10, show_default=True,
              help="Seconds the workers get to finish their requests when the server stops.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One line per request on the standard error (path without query string); "
                   "off with IDP_LOG_FORMAT=json, whose request lines replace it.")
@click.option("--app", "target", default="idp.wsgi:app", show_default=True,
              help="The WSGI application, MODULE:ATTRIBUTE, imported from --chdir.")
@click.option("--chdir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=Path(__file__).resolve().parents[2], show_default="the repository",
              help="Directory the application module is imported from.")
def serve(bind, workers, threads, max_rss, graceful_timeout, access_log, target, chdir) -> None:
    """Serve the provider in production (granian, WSGI)."""
    from granian import Granian
    from granian.constants import Interfaces

    from .. import config
    from ..ops.logs import FORMATS, granian_config

    host, port = _split_bind(bind)
    log_format = os.environ.get(config.BY_NAME["LOG_FORMAT"].env, config.BY_NAME["LOG_FORMAT"].default)
    if log_format not in FORMATS:
        raise click.BadParameter(f"{log_format!r}: expected one of {', '.join(FORMATS)}", param_hint="IDP_LOG_FORMAT")
    log_options = {"log_access": access_log, "log_access_format": ACCESS_LOG_FORMAT}
    if log_format == "json":  # the application's request lines replace the access log (module docstring)
        log_options = {"log_access": False, "log_dictconfig": granian_config()}
    _refuse_if_unfit(workers)
    metrics_dir, made = _metrics_dir()
    server = Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        respawn_failed_workers=True,
        workers_max_rss=max_rss or None,
        workers_kill_timeout=graceful_timeout,
        working_dir=chdir,
        **log_options,
    )
    try:
        server.serve()
    finally:
        if made:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_dir() -> tuple[Path, bool]:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers: the given one emptied, or a new one (then True)."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # counts of a previous run would be added to this one's
            stale.unlink()
        return folder, False
    folder = Path(tempfile.mkdtemp(prefix="idp-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder, True


COMMANDS = (serve,)
