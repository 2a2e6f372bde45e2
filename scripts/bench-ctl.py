#!/usr/bin/python3
"""How long ``intellicache-ctl status`` takes with many nodes in one daemon.

    scripts/bench-ctl.py [--nodes 50] [--runs 20] [--output FILE] [--check]

The benchmark is scripts/bench/ctlstatus.py; this entry point only sets
PYTHONPATH and runs ``python3 -m bench.ctlstatus`` in this process.
"""

import sys

from bench.launch import exec_module  # scripts/bench/launch.py, standard library only

if __name__ == "__main__":
    exec_module("bench.ctlstatus", sys.argv[1:])
