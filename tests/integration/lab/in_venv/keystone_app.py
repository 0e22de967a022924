"""uWSGI entry point of a lab Keystone: the upstream WSGI app with the SQLite fix applied first."""
import sqlite_begin_immediate  # noqa: F401  (must be imported before the app creates engines)
from keystone.wsgi.api import application  # noqa: E402,F401
