"""``glancesync-server``: run and administer the REST service.

Commands (the original ``run.py``'s, same options):

* ``runserver [-t HOST] [-p PORT] [--debug]``: Flask's development server;
* ``gunicornserver [-H HOST] [-p PORT] [-w WORKERS]``: the production server (gunicorn,
  ``gthread`` workers of ``[gunicorn] THREADS`` threads); defaults from ``[glancesync]
  HOST/PORT`` and ``[gunicorn] WORKERS`` of fiware-glancesync.cfg;
* ``db <command>``: the Flask-Migrate commands (``upgrade``, ``downgrade``, ``current``,
  ``history``, ``migrate``, ``stamp``, ...) on the service's database;
* ``shell``: a Python shell with ``app``, ``db`` and ``Task`` in an application context.

Every command first checks the settings (see :mod:`fiwareglancesync.app.settings`) and exits 1
with the original's message when they are unusable.  gunicorn can also be started directly with
the application factory: ``gunicorn 'fiwareglancesync.run:create_server_app()'``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from typing import Any, Sequence

from flask import Flask

from .app import create_app
from .app.settings import ServiceSettings, SettingsError, configure_logging, load_settings

LOG = logging.getLogger("glancesync.app.server")

HOST_HELP = "IP address or hostname of the Glancesync server."
PORT_HELP = "Port in which the GlanceSync server is running"
WORKERS_HELP = "Number of concurrent workers to be launched, usually 2*core numbers+1."


def create_server_app() -> Flask:
    """The service as a server runs it: settings from the environment, logging configured."""
    settings = _settings_or_exit()
    _configure_logging_or_exit(settings)
    return create_app(settings.flask_config())


def serving_app() -> Flask:
    """:func:`create_server_app` with its background loops started at boot, not at the first
    request: an instance nobody asks anything must still fail the tasks of a dead instance and
    take its turn at the status refresh (README "Running on several hosts")."""
    app = create_server_app()
    app.extensions["glancesync"].start_loops()
    return app


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "db":
        return run_db_command(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "runserver":
        return run_development_server(args)
    if args.command == "gunicornserver":
        return run_gunicorn(args)
    return run_shell()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glancesync-server", description="GlanceSync REST service.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{gunicornserver,shell,db,runserver}")

    gunicorn = commands.add_parser("gunicornserver", help="run the service under gunicorn")
    gunicorn.add_argument("-H", "--host", help=HOST_HELP)
    gunicorn.add_argument("-p", "--port", type=int, help=PORT_HELP)
    gunicorn.add_argument("-w", "--workers", type=int, help=WORKERS_HELP)

    commands.add_parser("shell", help="Python shell in the application context")
    commands.add_parser("db", help="database migrations (Flask-Migrate): upgrade, downgrade, current, ...")

    dev = commands.add_parser("runserver", help="run Flask's development server")
    dev.add_argument("-t", "--host", help=HOST_HELP)
    dev.add_argument("-p", "--port", type=int, help=PORT_HELP)
    dev.add_argument("--debug", action="store_true", help="enable the debugger and the reloader")
    # Accepted for compatibility with the original's options; debugging is off unless --debug.
    dev.add_argument("-d", "--no-debug", action="store_true", help=argparse.SUPPRESS)
    dev.add_argument("-r", "--no-reload", action="store_true", help=argparse.SUPPRESS)
    dev.add_argument("--threaded", action="store_true", help=argparse.SUPPRESS)
    return parser


def run_development_server(args: argparse.Namespace) -> int:
    app = serving_app()
    settings = _settings_or_exit()
    debug = bool(args.debug and not args.no_debug)
    app.run(host=args.host or settings.host, port=args.port or settings.port, debug=debug,
            use_reloader=debug and not args.no_reload, threaded=True)
    return 0


def gunicorn_options(args: argparse.Namespace, settings: ServiceSettings) -> dict[str, Any]:
    """gunicorn settings: the command line wins over fiware-glancesync.cfg."""
    host = args.host or settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    options: dict[str, Any] = {
        "bind": f"{host}:{args.port or settings.port}",
        "workers": args.workers or settings.gunicorn_workers,
        # Threads: requests of a worker wait for Keystone and Glance side by side, and those that
        # want the same region's listing share one (app/engines.py: CoalescingFacade).
        "worker_class": "gthread",
        "threads": settings.gunicorn_threads,
        # A worker takes no more connections than it has threads: the others wait in the listen
        # queue for whichever worker is free first (fair latencies under load).
        "worker_connections": settings.gunicorn_threads,
        "loglevel": settings.gunicorn_loglevel,
        "timeout": settings.gunicorn_timeout,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "glancesync-server",
    }
    if settings.gunicorn_pidfile:
        options["pidfile"] = settings.gunicorn_pidfile
    return options


def run_gunicorn(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    from .app import preload

    settings = _settings_or_exit()
    options = gunicorn_options(args, settings)
    metrics_dir, remove_metrics_dir = prepare_metrics_dir()
    if not settings.secret_key:
        from .app import session_key

        # Every worker of this start signs the status page's cookies with this key.
        session_key.share_with_workers(os.environ)
        print(session_key.NO_KEY_NOTICE, file=sys.stderr)
    preload()  # in the master, before it forks the workers
    if "pidfile" in options:
        os.makedirs(os.path.dirname(os.path.abspath(options["pidfile"])), exist_ok=True)

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)
            # gunicorn >= 24 opens a control socket at one fixed path per user, which several
            # servers on a host would fight over; the service does not use it.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)
            self.cfg.set("child_exit", _worker_exited)

        def load(self) -> Flask:
            # Runs in each worker after the fork: every worker builds its own app.
            return serving_app()

    print(f"Starting gunicorn on {options['bind']} with {options['workers']} workers "
          f"(loglevel {options['loglevel']})", file=sys.stderr)
    try:
        Server().run()
    finally:
        if remove_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def prepare_metrics_dir() -> tuple[str, bool]:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers' metrics (app/metrics.py): the operator's
    directory, emptied of a previous run's files, or a new private one that the server removes
    when it stops.  Returns (directory, remove it at the end)."""
    from .app.metrics import MULTIPROC_ENV

    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.unlink(os.path.join(directory, name))
        return directory, False
    directory = tempfile.mkdtemp(prefix="glancesync-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    return directory, True


def _worker_exited(server, worker) -> None:
    """gunicorn ``child_exit`` (in the master): the dead worker's live gauges are dropped."""
    from .app.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def run_db_command(arguments: Sequence[str]) -> int:
    """``glancesync-server db ...``: Flask-Migrate's click commands on the service's app."""
    from flask.cli import ScriptInfo
    from flask_migrate.cli import db as db_commands

    from .app.extensions import db

    built: list[Flask] = []

    def app_for_commands() -> Flask:
        settings = _settings_or_exit()
        config = settings.flask_config()
        config["RECOVER_TASKS_AT_START"] = False  # the table may not exist yet
        built.append(create_app(config))
        return built[-1]

    try:
        db_commands.main(args=list(arguments), prog_name="glancesync-server db",
                         obj=ScriptInfo(create_app=app_for_commands), standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for app in built:  # close the connections (the command may run inside a longer process)
            with app.app_context():
                for engine in db.engines.values():
                    engine.dispose()
    return 0


def run_shell() -> int:
    import code

    from .app.extensions import db
    from .app.models import Task

    app = create_server_app()
    with app.app_context():
        database = db.engine.url.render_as_string(hide_password=True)
        code.interact(banner=f"GlanceSync service shell: app, db, Task (database {database})",
                      local={"app": app, "db": db, "Task": Task})
    return 0


def _settings_or_exit() -> ServiceSettings:
    try:
        return load_settings(os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


def _configure_logging_or_exit(settings: ServiceSettings) -> None:
    try:
        configure_logging(settings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    sys.exit(main())
