"""What the production server serves: ``idp serve`` (granian) imports ``idp.wsgi:app``.

The served app never migrates (``idp init`` and ``idp db upgrade`` do), so it is
made without Flask-Migrate and alembic. Inside the package, so that an installed
wheel serves it as well as a checkout does.
"""

from idp import create_app

app = create_app(migrations=False)
