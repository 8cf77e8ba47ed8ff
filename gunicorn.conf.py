"""gunicorn's settings for idp (gunicorn reads ./gunicorn.conf.py by itself).

Production: ``gunicorn wsgi:app`` from the repository root. Flags given on the
command line win over these.

The access log never holds a query string or a Referer: authorization requests
carry ``login_hint`` (a NIR) and logout requests ``id_token_hint`` (an ID token
with personal data) in their query strings, and a Referer repeats a previous
URL. ``%(U)s`` is the path alone; the login and recovery links carry no secret in
their path (their tokens travel in the URL fragment, which browsers never send).
"""

import multiprocessing
import os

bind = os.environ.get("IDP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("IDP_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("IDP_THREADS", 4))
timeout = 30
graceful_timeout = 10
# Remote address, time, method and path (no query string), status, size, duration in µs.
access_log_format = '%(h)s - - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(D)s'
accesslog = "-"
errorlog = "-"
