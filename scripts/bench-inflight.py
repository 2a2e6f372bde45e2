#!/usr/bin/python3
"""Cold-cache random reads: parallel misses (max-inflight=16) vs serial (1).

    scripts/bench-inflight.py [--check] [--output FILE] [--runtime S] ...

The benchmark is scripts/bench/inflight.py; this entry point only sets
PYTHONPATH and runs ``python3 -m bench.inflight`` in this process.
"""

import sys

from bench.launch import exec_module  # scripts/bench/launch.py, standard library only

if __name__ == "__main__":
    exec_module("bench.inflight", sys.argv[1:])
