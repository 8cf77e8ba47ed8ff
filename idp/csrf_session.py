"""Flask's signed-cookie session, opened only when the browser sent one.

The session holds one thing: the CSRF token of the provider's forms (Flask-WTF),
in the ``idp_csrf`` cookie. Flask opens the session at the start of every request,
and its stock interface builds a signing serializer each time before it even looks
for the cookie: relying parties calling the protocol endpoints never send that
cookie, so for them (and for any first visit) the empty session is answered at
once. A request with the cookie is opened exactly as Flask does it.
"""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class CsrfSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)
