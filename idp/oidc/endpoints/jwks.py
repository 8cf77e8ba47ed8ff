"""The public signing keys: next, active and retired, so that verification survives rotations."""

from .. import keys
from . import bp, public_document


@bp.route("/jwks.json")
def jwks():
    return public_document.serve(*keys.jwks_document())
