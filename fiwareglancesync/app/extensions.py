"""Flask extensions, created unbound here and bound to an app in :func:`create_app`.

No application state lives on these objects, so one module-level instance serves every app a
process builds (one per gunicorn worker, many in the test suite).
"""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of the service's models."""


# Objects stay readable after commit: a view renders the task it has just committed, and a task
# finished meanwhile by a worker must not change what the POST that created it answers.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
