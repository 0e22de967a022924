"""uWSGI entry point of a lab Glance API: the upstream WSGI app with the SQLite fix applied first."""
import sqlite_begin_immediate  # noqa: F401  (must be imported before the app creates engines)
from glance.wsgi.api import application  # noqa: E402,F401
