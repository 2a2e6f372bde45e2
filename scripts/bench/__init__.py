"""intellicache's benchmark (scripts/bench.py) and the max-inflight
benchmark (scripts/bench-inflight.py), one module per part:

  launch     how scripts/bench.py and scripts/bench-inflight.py start the
             package (PYTHONPATH, interpreter); standard library only
  cli        command line, output directory, --report-from
  runner     runs the chosen parts, records the machine and its load
  common     what the parts share: modes, workloads, bases, node
             configurations, fio arguments, the Bench context
  cold, warm, bootstorm, misscost, warmup, bounded, memory, cpu
             the parts
  targets    targets evaluated from the results
  report     renders results.json, the plots and benchmarks.rst
  inflight   max-inflight=16 vs 1 on a slow base (bench-inflight.py)

This file imports nothing, so that launch can be imported before the
harness (tests/pylib) and QEMU's qemu.qmp are on the import path.
"""
