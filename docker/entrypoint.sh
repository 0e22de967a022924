#!/bin/sh
# Entry point of the service image: `glancesync-server <command>`.  Before a server command the
# database is upgraded to the head revision, retried while the database is still starting
# (GLANCESYNC_DB_ATTEMPTS tries, 3 s apart).  The server then replaces this shell (exec), so
# gunicorn's master process receives the container's signals directly.
set -eu

case "${1:-}" in
    gunicornserver|runserver)
        attempts=${GLANCESYNC_DB_ATTEMPTS:-20}
        try=1
        until glancesync-server db upgrade; do
            if [ "$try" -ge "$attempts" ]; then
                echo "glancesync-entrypoint: the database upgrade failed $attempts times; giving up" >&2
                exit 1
            fi
            try=$((try + 1))
            sleep 3
        done
        ;;
esac
exec glancesync-server "$@"
