#!/usr/bin/env bash
# All tests: installs glancesync and the test tools into ./.venv, then runs pytest.  The
# integration tests install Keystone and Glance from PyPI into a cached virtualenv
# (~/.cache/glancesync-lab) and run them on 127.0.0.1; as root on Debian it also installs the
# postgresql server package, chromium with its chromedriver, qemu-utils, etcd-server, prometheus
# and prometheus-node-exporter, if missing.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "run-tests.sh: Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
# The REST service's PostgreSQL test starts Debian's server binaries (postgresql package).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v apt-get >/dev/null \
        && [ "$(id -u)" = 0 ]; then
    echo "run-tests.sh: installing Debian's postgresql server (for the PostgreSQL tests)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
# The status page's browser test drives Debian's headless chromium through its chromedriver.
if ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; } && command -v apt-get >/dev/null \
        && [ "$(id -u)" = 0 ]; then
    echo "run-tests.sh: installing Debian's chromium and chromium-driver (for the status page test)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null
fi
# The lab's converting region (Glance's image_conversion plugin) and the tests' qcow2 images run
# Debian's qemu-img (qemu-utils).
if ! command -v qemu-img >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "run-tests.sh: installing Debian's qemu-utils (qemu-img, for the image conversion tests)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null
fi
# The several-hosts tests lock regions in a real etcd (Debian's etcd-server package).
if ! command -v etcd >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "run-tests.sh: installing Debian's etcd-server (for the coordination tests)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi
# The alert rules' checks (promtool) and the monitoring lab test (a real Prometheus scraping the
# service and node_exporter's textfile collector) run Debian's prometheus and prometheus-node-exporter.
if ! { command -v promtool >/dev/null && command -v prometheus-node-exporter >/dev/null; } \
        && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "run-tests.sh: installing Debian's prometheus and prometheus-node-exporter (for the monitoring tests)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        prometheus prometheus-node-exporter >/dev/null
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e . -r test-requirements.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
exec .venv/bin/python -m pytest "$@"
