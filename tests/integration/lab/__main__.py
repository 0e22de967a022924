"""Manual and benchmark use of the lab: ``python -m tests.integration.lab start|env|stop``.

``start``  starts a lab that outlives this command; progress goes to stderr, ``export`` lines
           for the source cloud (and ``GLANCESYNC_LAB_STATE``, the run-state directory) to
           stdout, so ``eval "$(python -m tests.integration.lab start)"`` sets them up.  A
           ready-made glancesync.conf is written into the state directory.
``env``    prints the same lines again for a running lab.
``stop``   stops the lab's servers by PID and removes its state directory.

``env`` and ``stop`` take the state directory as argument, else ``$GLANCESYNC_LAB_STATE``, else
the lab this user started last.  Exit status: 0 done, 1 lab error, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .errors import LabError
from .launcher import start_lab
from .model import Lab
from .venv import cache_root

LAST_STATE = "last-state"  # file in the cache root naming the last started lab's state dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.integration.lab",
                                     description="Run the glancesync test lab by hand.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("start", help="start a lab that keeps running; print export lines")
    for name, text in (("env", "print the export lines of a running lab"),
                       ("stop", "stop a running lab and remove its state directory")):
        sub.add_parser(name, help=text).add_argument("state_dir", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            lab = start_lab(tie_to_parent=False)
            lab.write_glancesync_conf(lab.state_dir / "glancesync.conf")
            cache_root().mkdir(parents=True, exist_ok=True)
            (cache_root() / LAST_STATE).write_text(f"{lab.state_dir}\n")
            print(exports(lab))
        elif args.command == "env":
            print(exports(Lab.load(_state_dir(args.state_dir))))
        else:
            lab = Lab.load(_state_dir(args.state_dir))
            lab.stop()
            print(f"lab {lab.state_dir} stopped", file=sys.stderr)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    return 0


def exports(lab: Lab) -> str:
    lines = [f"export GLANCESYNC_LAB_STATE={shlex.quote(str(lab.state_dir))}"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in lab.source_env().items()]
    lines.append(f"# glancesync.conf for this lab: {lab.state_dir / 'glancesync.conf'}")
    for ks in lab.keystones.values():
        lines.append(f"# {ks.name} {ks.auth_url}  admin/{ks.admin.password} project "
                     f"{ks.admin.project_name}; qa/{ks.qa.password} project "
                     f"{ks.qa.project_name}; regions {', '.join(ks.regions)}")
    for region in lab.regions:
        lines.append(f"# Glance {region}: {lab.glance_url(region)}")
    return "\n".join(lines)


def _state_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    if os.environ.get("GLANCESYNC_LAB_STATE"):
        return Path(os.environ["GLANCESYNC_LAB_STATE"])
    try:
        return Path((cache_root() / LAST_STATE).read_text().strip())
    except OSError:
        raise LabError("no lab state directory: give one, or set GLANCESYNC_LAB_STATE") from None


if __name__ == "__main__":
    sys.exit(main())
