"""``wsgi:app`` from a checkout (older unit files, ``--app wsgi:app``): the app of :mod:`idp.wsgi`."""

from idp.wsgi import app  # noqa: F401
