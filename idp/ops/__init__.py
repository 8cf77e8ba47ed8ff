"""What an operations team needs around the provider: request logs, application logs as JSON, metrics,
health and readiness, start-up checks.

One module per concern (:mod:`.request_id`, :mod:`.logs`, :mod:`.metrics`,
:mod:`.recorder`, :mod:`.health`, :mod:`.checks`, :mod:`.schema`); ``create_app``
calls :func:`init_app` once (and registers :mod:`.health`), and the views know
nothing of them. :mod:`.metrics` holds the counters other modules move
(``idp.errors``, ``idp.mail``, ``idp.oidc.backchannel``); it imports nothing of the
provider, so any layer may use it.
"""

from __future__ import annotations


def init_app(app) -> None:
    """Logging as ``IDP_LOG_FORMAT`` says, ``/metrics``, and the request recorder around everything.

    Called last in ``create_app``: the recorder must be the outermost WSGI layer, so that
    the public documents answered before Flask (:class:`idp.oidc.endpoints.public_document.Shortcut`)
    get their request line and their count too.
    """
    from . import logs, metrics, recorder

    logs.init_app(app)
    metrics.init_app(app)
    app.wsgi_app = recorder.Recorder(app, app.wsgi_app)
