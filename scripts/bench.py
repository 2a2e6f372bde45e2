#!/usr/bin/python3
"""intellicache benchmark: every comparison side by side, in one run.

    python3 scripts/bench.py [--quick | --full | --smoke] [--output DIR | --publish]
    python3 scripts/bench.py --report-from JSON [--output DIR | --publish]
    python3 scripts/bench.py --help

The benchmark is the package scripts/bench/ (one module per part, see its
__init__.py and cli.py); results go to build/bench/ unless --output or
--publish (docs/) says otherwise.  This entry point only sets PYTHONPATH
(scripts/, tests/pylib/ for the harness, QEMU's python/ for qemu.qmp) and
runs ``python3 -m bench`` in this process (docs/e2e.rst, "Python harness").
"""

import sys

from bench.launch import exec_module  # scripts/bench/launch.py, standard library only

if __name__ == "__main__":
    # matplotlib draws the plots; Debian's is only for /usr/bin/python3.
    exec_module("bench", sys.argv[1:], want_matplotlib=True)
