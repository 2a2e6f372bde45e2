"""Start a module of this package with the import path it needs.

scripts/bench.py and scripts/bench-inflight.py are thin entry points that
call exec_module(): it sets PYTHONPATH to scripts/ (this package),
tests/pylib/ (the harness, intellicache_harness) and QEMU's python/
directory (qemu.qmp), then replaces the process with
``python3 -m <module> <arguments>``: same pid, same exit status.

Standard library only: this runs before the harness is importable.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]
REPO = SCRIPTS.parent
SYSTEM_PYTHON = "/usr/bin/python3"


def qemu_source_dir():
    """$IC_QEMU_SRC, or src/ next to QEMU's build directory ($IC_QEMU_BUILD,
    default build/qemu/build): the tree whose python/ holds qemu.qmp."""
    build = Path(os.environ.get("IC_QEMU_BUILD", REPO / "build" / "qemu" / "build"))
    return Path(os.environ.get("IC_QEMU_SRC", build.parent / "src"))


def python_path():
    """PYTHONPATH for the benchmark: ours first, then what was set."""
    entries = [str(SCRIPTS), str(REPO / "tests" / "pylib"), str(qemu_source_dir() / "python")]
    old = os.environ.get("PYTHONPATH")
    return os.pathsep.join(entries + ([old] if old else []))


def interpreter(want_matplotlib):
    """This Python, or Debian's when only that one has matplotlib (the
    Debian package is for /usr/bin/python3)."""
    if not want_matplotlib or importlib.util.find_spec("matplotlib") is not None:
        return sys.executable
    if (os.path.exists(SYSTEM_PYTHON)
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
        r = subprocess.run([SYSTEM_PYTHON, "-c", "import matplotlib"], capture_output=True)
        if r.returncode == 0:
            return SYSTEM_PYTHON
    return sys.executable


def exec_module(module, argv, want_matplotlib=False):
    """Replace this process with ``python3 -m @module @argv``."""
    env = dict(os.environ, PYTHONPATH=python_path())
    python = interpreter(want_matplotlib)
    os.execve(python, [python, "-m", module] + list(argv), env)
