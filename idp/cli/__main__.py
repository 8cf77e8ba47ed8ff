"""``python -m idp.cli``: the ``idp`` command (``idp serve`` runs ``idp check`` this way)."""

from . import main

main()
