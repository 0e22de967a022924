"""The API v1 blueprint object, in a module of its own so that the route modules that add to it
and the package that registers them do not import each other."""

from flask import Blueprint

bp = Blueprint("api", "fiwareglancesync.app.api")
