"""What the production server serves: ``idp serve`` (granian) imports ``wsgi:app``.

The served app never migrates (``idp init`` and ``idp db upgrade`` do), so it is
made without Flask-Migrate and alembic.
"""

from idp import create_app

app = create_app(migrations=False)
