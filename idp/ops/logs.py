"""Log lines, as text in development or one JSON object per line in production (``IDP_LOG_FORMAT``).

Everything goes through the standard :mod:`logging` module, which the code already
uses (``logging.getLogger(__name__)``, ``current_app.logger``), and out of one handler
on the root logger (standard error). In json mode it is formatted by structlog's
:class:`~structlog.stdlib.ProcessorFormatter`: application events, libraries'
warnings and the request lines (:mod:`.recorder`) share one format. Each line has
``time`` (ISO 8601, UTC), ``level``, ``logger``, ``event`` (the message) and, inside a
request, ``request_id`` (bound by the recorder in a context variable, so a line
logged anywhere during the request carries it). In text mode (development) the
lines keep Flask's format, and there is no request line: the server's access log
(``idp serve``, ``idp run``) has one already.

What never goes in a line: the request lines name the route (the URL rule), never
the path or the query string; application messages name a client id, a user id, a
flow id, a route, never a password, code, token, link, cookie or NIR
(tests/test_promise_no_secret_in_logs.py reads a whole journey's logs for them).

``idp serve`` formats granian's own lines the same way in json mode
(:func:`granian_config`), so that a log pipeline reads only JSON.
"""

from __future__ import annotations

import logging
import sys

import structlog

FORMATS = ("text", "json")
#: The text format: Flask's own (``[time] WARNING in errors: Database unavailable (…)``), as before.
TEXT_FORMAT = "[%(asctime)s] %(levelname)s in %(module)s: %(message)s"
#: The name of the one handler this module installs on the root logger (replaced, never added twice).
HANDLER_NAME = "idp.ops.logs"
#: Where the request lines go (see :mod:`.recorder`).
REQUEST_LOGGER = "idp.request"


def _shared() -> list:
    """What every line gets, whether logged through structlog or the standard logging module."""
    return [
        structlog.contextvars.merge_contextvars,  # request_id, inside a request
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    ]


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (``text`` or ``json``) for standard logging handlers."""
    if log_format not in FORMATS:
        raise ValueError(f"IDP_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
    )


class GranianFormatter(logging.Formatter):
    """granian's own lines (``Spawning worker-1``) as JSON; named in :func:`granian_config`."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._json = formatter("json")

    def format(self, record: logging.LogRecord) -> str:
        return self._json.format(record)


def granian_config() -> dict:
    """granian's ``log_dictconfig`` for json mode: its lines as JSON, on standard error like the app's."""
    return {
        "formatters": {"json": {"()": f"{__name__}.GranianFormatter"}},
        "handlers": {"console": {"formatter": "json", "class": "logging.StreamHandler",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False}},
    }


def configure(log_format: str) -> None:
    """Install (or replace) the root handler with ``log_format``; the request lines on in json mode.

    The levels stay as they were (WARNING, unless the environment sets the root logger's):
    a request line is INFO, and goes out in json mode only; in text mode (development)
    the server's own access line (granian's, werkzeug's) already tells each request.
    """
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_shared(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(HANDLER_NAME)
        root.addHandler(handler)
    handler.setFormatter(formatter(log_format))
    from flask.logging import default_handler

    logging.getLogger("idp").removeHandler(default_handler)  # Flask's own: the root handler has its lines
    requests_log = logging.getLogger(REQUEST_LOGGER)
    requests_log.setLevel(logging.INFO if log_format == "json" else logging.WARNING)


def init_app(app) -> None:
    configure(app.config["IDP_LOG_FORMAT"])


def request_logger():
    return structlog.get_logger(REQUEST_LOGGER)
