"""Run one nightly run without Prefect in this process, optionally SIGKILLing it at a named point.

Used by tests/test_ops_crash.py as a subprocess:

    python tests/ops_crash_driver.py INBOX WAREHOUSE PUBLISH QUALITY [--config TOML] [--crash POINT]

Crash points: the flow's own (``start``, ``ingest``, ``geocode``, ``link``, ``hotspots``,
``publish``, ``validate_*``: after that stage committed and was recorded, see ops.stage), plus
points inside stages installed here by wrapping package functions (test-only, the package code
is unchanged):

* ``ingest/<n>``: after the n-th delivery of this run committed;
* ``ingest/<n>-uncommitted``: the n-th delivery's rows are written, its transaction not committed;
* ``geocode-uncommitted``, ``link-uncommitted``, ``hotspots-uncommitted``: inside the stage's
  transaction, after most of its writes;
* ``publish-swap``: publication renamed the old layers away, the new ones not yet in place.

Exit status 0 on success, 3 when the run lock was held (the message on stderr), 1 on another
error; -9 (SIGKILL) at the crash point.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skadestue.runtime import prepare_environment  # noqa: E402

prepare_environment(Path(os.environ.get("PREFECT_HOME", REPO / ".prefect")))


def _die() -> None:
    from skadestue import ops

    os.environ[ops.CRASH_ENV] = "now"
    ops.crash_point("now")


def _after(module, name: str, nth: int = 1):
    """Wrap module.name so the process is killed after its nth call returns."""
    original = getattr(module, name)  # AttributeError if the package renamed it: the test must fail
    calls = {"n": 0}

    def wrapper(*a, **kw):
        out = original(*a, **kw)
        calls["n"] += 1
        if calls["n"] == nth:
            _die()
        return out

    setattr(module, name, wrapper)


def install(point: str) -> None:
    """Install an in-stage crash point (the flow's own points need nothing)."""
    if point.startswith("ingest/"):
        from skadestue.ingest import delivery

        n, _, suffix = point.split("/", 1)[1].partition("-")
        _after(delivery, "write_loaded" if suffix == "uncommitted" else "load_file", int(n))
    elif point == "geocode-uncommitted":
        import skadestue.geocode as geocode

        _after(geocode, "geocode_er_contacts")
    elif point == "link-uncommitted":
        from skadestue.link import pipeline

        _after(pipeline, "build_casualties")
    elif point == "hotspots-uncommitted":
        from skadestue.hotspots import build

        _after(build, "_build_junctions")
    elif point == "publish-swap":
        from skadestue.publish import writer

        original = writer._swap
        writer._previous_publication = lambda con, target: {}  # unchanged marts: rewrite anyway, to kill the swap

        def swap(new: Path, target: Path, run_id: str) -> None:
            real_rename = Path.rename

            def rename(self: Path, dest):
                out = real_rename(self, dest)
                if self == target:  # the old layers were moved away; the new are not in place
                    _die()
                return out

            Path.rename = rename
            try:
                original(new, target, run_id)
            finally:
                Path.rename = real_rename

        writer._swap = swap
    else:
        os.environ["SKADESTUE_CRASH_AFTER"] = point


def hold_at_start(barrier: Path) -> None:
    """Block at the ``start`` point (run lock held, run row written) until ``barrier`` exists."""
    import time

    from skadestue import ops

    original = ops.crash_point

    def point(name: str) -> None:
        if name == "start":
            while not barrier.exists():
                time.sleep(0.05)
        original(name)

    ops.crash_point = point


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("inbox", "warehouse", "publish_dir", "quality_dir"):
        parser.add_argument(name)
    parser.add_argument("--config")
    parser.add_argument("--crash")
    parser.add_argument("--run-id")
    parser.add_argument("--wait-for", help="after the run started (lock held), wait until this file exists")
    args = parser.parse_args()
    if args.crash:
        install(args.crash)
    if args.wait_for:
        hold_at_start(Path(args.wait_for))
    from flows.nightly import run_nightly
    from skadestue.db import RunLocked

    try:
        summary = run_nightly(args.inbox, args.warehouse, args.publish_dir, args.quality_dir, args.config,
                              args.run_id)
    except RunLocked as exc:
        print(f"RunLocked: {exc}", file=sys.stderr)
        return 3
    print(f"run {summary['run_id']}: {summary['rows_loaded']} rows loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
