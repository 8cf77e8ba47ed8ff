"""The public signing keys: next, active and retired, so that verification survives rotations."""

from flask import jsonify

from .. import keys
from . import bp


@bp.route("/jwks.json")
def jwks():
    response = jsonify(keys.jwks())
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response
