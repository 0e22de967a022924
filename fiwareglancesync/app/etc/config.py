# Optional Flask configuration of the GlanceSync REST service: set GLANCESYNCAPP_CONFIG to the
# absolute path of a copy of this file.  It is executed as Python; upper-case names become
# Flask configuration values.  Everything here is optional.

# The database (the environment variables SQLALCHEMY_DATABASE_URI / DATABASE_URL and
# [database] URL of fiware-glancesync.cfg take precedence):
# SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://glancesync:secret@db/glancesync"

# Options passed to SQLAlchemy's create_engine:
# SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

# A callable returning the sync engine, for requests and tasks (default: a per-process pool that
# reads glancesync.conf from GLANCESYNC_CONFIG like sync.py does, keeps the Keystone sessions
# across requests and bounds the requests' calls by REQUEST_TIMEOUT):
# from fiwareglancesync.glancesync import GlanceSync
# ENGINE_FACTORY = lambda: GlanceSync.from_environment(config_path="/etc/glancesync/glancesync.conf")

# Seconds each server process trusts its list of region names (what sync.py --show-regions
# lists; listing costs a Keystone login per target) before listing again:
# REGIONS_TTL = 60

# GET /metrics (Prometheus text, no token needed: counts only); False answers 404:
# METRICS_ENABLED = True

# The key that signs the status page's session cookies (see fiware-glancesync.cfg); the same on
# every host sharing the database:
# SECRET_KEY = "a long random string"
# Cookies only over https:
# SESSION_COOKIE_SECURE = True
