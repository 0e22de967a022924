#!/usr/bin/env bash
# Demo on the embedded default: installs glancesync into ./.venv, seeds the bundled demo scenario
# into a temporary file-backed mock store, then shows --show-status, --dry-run, the sync and
# --show-status again.  No cloud is contacted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "run-demo.sh: Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v "^WARNING: Location" || true
PATH=$PWD/.venv/bin:$PATH

store=$(mktemp -d "${TMPDIR:-/tmp}/glancesync-demo.XXXXXX")
trap 'rm -rf "$store"' EXIT
eval "$(glancesync-mock --path "$store" --confirm fiwareglancesync/demo/initial)"
export GLANCESYNC_CONFIG=$PWD/fiwareglancesync/demo/glancesync.conf
regions=(master: federation:)

step() { printf '\n\033[1m### %s\033[0m\n' "$*" >&2; }
step "sync.py --show-status ${regions[*]}     (before)"
sync.py --show-status "${regions[@]}"
step "sync.py --dry-run ${regions[*]}"
sync.py --dry-run "${regions[@]}"
step "sync.py ${regions[*]}     (the sync; one checksum conflict is left for the operator to decide)"
sync.py "${regions[@]}" || echo "(sync.py exit status $?)" >&2
step "sync.py --show-status ${regions[*]}     (after)"
sync.py --show-status "${regions[@]}"
