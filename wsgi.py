"""What the production server serves: ``idp serve`` (granian) imports ``wsgi:app``."""

from idp import create_app

app = create_app()
