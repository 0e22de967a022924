#!/usr/bin/env bash
# All tests: installs glancesync and the test tools into ./.venv, then runs pytest.  The
# integration tests install Keystone and Glance from PyPI into a cached virtualenv
# (~/.cache/glancesync-lab) and run them on 127.0.0.1; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "run-tests.sh: Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e . -r test-requirements.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
exec .venv/bin/python -m pytest "$@"
