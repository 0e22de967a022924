"""``GET /``: what this service is (no token needed)."""

from flask import current_app

from .blueprint import bp


@bp.get("/")
def get_info():
    """200 with id, owner, status, version, updated, runningfrom, href (the original's keys and order)."""
    config = current_app.config
    return {
        "id": "v" + config["INFO_VERSION"],
        "owner": config["INFO_OWNER"],
        "status": config["INFO_STATUS"],
        "version": config["INFO_VERSION"],
        "updated": config["INFO_UPDATED"],
        "runningfrom": current_app.extensions["glancesync"].running_from,
        "href": config["INFO_HREF"],
    }
