"""intellicache benchmark: every comparison side by side, in one run.

    python3 scripts/bench.py [--quick | --full | --smoke] [--output DIR | --publish]
    python3 scripts/bench.py --report-from JSON [--output DIR | --publish]

Builds nothing.  Starts every server it needs on loopback (nfs-ganesha with
rpcbind, nbdkit, qemu-storage-daemon), stops each one by its pid at the end
of its run, also on failure, SIGINT or SIGTERM, and writes:

  DIR/benchmarks.rst               the report (tables, plots, targets)
  DIR/benchmarks/results.json      every figure, ratio and target
  DIR/benchmarks/*.png             plots (when matplotlib is available)

DIR is build/bench/ by default, docs/ with --publish (the published report,
docs/benchmarks.rst), and a temporary directory (removed at the end) for
--smoke unless --output or --publish is given.

Configurations, each exported by qemu-storage-daemon over NBD and read by
fio's nbd engine:

  direct      the base node exported as is (no cache)
  ic-mi1      intellicache, max-inflight=1 (serial misses)
  ic          intellicache with its defaults
  qcow2-cor   an empty qcow2 overlay whose backing is the base node, under
              QEMU's copy-on-read filter (QEMU's own alternative)
  raw-local   a raw file on the local disk (the reference for hits)

Bases: nfs-ganesha on loopback through QEMU's nfs driver; nbdkit's pattern
plugin behind the delay filter (1 ms and 5 ms per read) or the rate filter
(1 Gbit/s), through QEMU's nbd client.  nbdkit's stats filter counts the
bytes each run read from the base.

Parts (one module each): cold runs (fresh cache or overlay for every run),
warm runs (the same node after a full pass over the region read), a boot
storm (N clients, each through its own qcow2 overlay, over one shared
intellicache node or over N copy-on-read overlays), the daemon's CPU time
per cold miss with every store done, the warm-up (the prefetch job and boot
profiles over the 1 ms base), the bounded cache (cache-size: a boot set kept
through a scan, Zipf hit ratios next to the simulator's, warm and cold speed
with eviction in place, the eviction policy's memory), memory (daemon RSS
over a 1 TiB base) and CPU (callgrind instructions per warm 4 KiB read
through qemu-io).  --parts runs a subset, e.g. --parts=bounded.

Targets are evaluated and reported (PASS/FAIL) but never fail the command;
it exits non-zero only if the benchmark itself could not run (and, with
--smoke, if a run produced no result).
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import intellicache_harness as h
from intellicache_harness import GiB

from . import report, runner
from .common import BASES, IC_OPTIONS, MODES, WORKLOADS, Bench, log
from .targets import evaluate_targets

DEFAULT_OUTPUT = h.REPO / "build" / "bench"
PUBLISHED = h.REPO / "docs"


def parse_ic_option(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE")
    try:
        return key, int(value)
    except ValueError:
        return key, value


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="scripts/bench.py",
                                description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="1-3 minutes, short runs (default)")
    g.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="every workload on every base, longer runs (~20 minutes)")
    g.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                   help="seconds per part, tiny sizes, output to a temporary directory")
    p.set_defaults(mode="quick")
    o = p.add_mutually_exclusive_group()
    o.add_argument("--output", help=f"output directory (default: {DEFAULT_OUTPUT}, or a "
                                    "temporary directory for --smoke)")
    o.add_argument("--publish", action="store_true",
                   help=f"write the published report: {PUBLISHED}/benchmarks.rst and "
                        f"{PUBLISHED}/benchmarks/")
    p.add_argument("--parts", default="all",
                   help=f"comma-separated subset of {','.join(runner.PARTS)} (default: all)")
    p.add_argument("--runtime", type=float, help="override seconds per fio run")
    p.add_argument("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--bases", help=f"comma-separated subset of {','.join(BASES)}")
    p.add_argument("--ic-option", metavar="KEY=VALUE", action="append", default=[],
                   type=parse_ic_option,
                   help="an intellicache option for every intellicache configuration, "
                        "e.g. cluster-size=16384 (repeatable)")
    p.add_argument("--report-from", metavar="JSON",
                   help="only evaluate the targets and render the report again from a "
                   "results file (no runs)")
    p.add_argument("--baseline", metavar="JSON",
                   help="an earlier results.json: the report compares each target "
                        "with it (before and after)")
    p.add_argument("--work-dir", help="where cache files and overlays go "
                                      "(default: the system's temporary directory)")
    args = p.parse_args(argv)
    if args.publish and args.mode == "smoke" and not args.report_from:
        p.error("--publish is for --quick and --full runs, not --smoke")
    return args


def reproduce_command(args):
    cmd = ["python3", "scripts/bench.py", f"--{args.mode}"]
    if args.runtime:
        cmd.append(f"--runtime={args.runtime:g}")
    for opt in ("parts", "workloads", "bases"):
        if getattr(args, opt) not in (None, "all"):
            cmd.append(f"--{opt}={getattr(args, opt)}")
    for key, value in args.ic_option:
        cmd.append(f"--ic-option={key}={value}")
    if args.publish:
        cmd.append("--publish")
    return " ".join(cmd)


def output_dir(args):
    """Where the report goes: --output, docs/ for --publish, else build/bench/."""
    if args.output:
        return Path(args.output)
    return PUBLISHED if args.publish else DEFAULT_OUTPUT


def add_baseline(results, path):
    """Keep what the report compares with from an earlier run: its commit,
    date and targets (compared by name)."""
    if not path:
        return
    old = json.loads(Path(path).read_text())
    results["baseline"] = {
        "git_commit": old["machine"]["git_commit"],
        "started": old["started"],
        "command": old["command"],
        "targets": old["targets"],
    }


def report_from(args):
    results = json.loads(Path(args.report_from).read_text())
    # Targets are derived from the figures: evaluate them again, so
    # that a change to a target's wording or limit reaches the report.
    results["targets"] = evaluate_targets(results)
    add_baseline(results, args.baseline)
    files = report.write(results, output_dir(args))
    log(f"bench: rendered {', '.join(str(f) for f in files)}")
    return 0


def main(argv=None):
    args = parse_args(argv)
    IC_OPTIONS.update(args.ic_option)
    if args.report_from:
        return report_from(args)
    h.exit_on_sigterm()
    missing = h.missing_programs(["nbdkit", "fio"])
    if missing:
        sys.exit(f"bench: missing programs: {', '.join(missing)}")
    for b in ("qemu-storage-daemon", "qemu-img", "qemu-io"):
        if not h.qemu_binary(b).exists():
            sys.exit(f"bench: {h.qemu_binary(b)} not built (set IC_QEMU_BUILD?)")
    parts = tuple(runner.PARTS) if args.parts == "all" else tuple(args.parts.split(","))
    for part in parts:
        if part not in runner.PARTS:
            sys.exit(f"bench: unknown part {part}")
    if "nfs" in MODES[args.mode]["bases"] and "cold" in parts:
        missing = h.missing_programs(["ganesha.nfsd", "rpcbind", "nfs-ls"])
        if missing:
            sys.exit(f"bench: missing programs for the NFS base: {', '.join(missing)}")

    tmp_out = None
    if args.mode == "smoke" and not args.output and not args.publish:
        tmp_out = tempfile.TemporaryDirectory(prefix="ic-bench-smoke-")
        out = Path(tmp_out.name)
    else:
        out = output_dir(args)
    st = os.statvfs(args.work_dir or tempfile.gettempdir())
    if st.f_bavail * st.f_frsize < 8 * GiB:
        sys.exit("bench: less than 8 GiB free for cache files and overlays (see --work-dir)")
    log(f"bench: {args.mode} mode, parts {','.join(parts)}, output {out}")
    results = runner.run(Bench(args), parts, reproduce_command(args))
    add_baseline(results, args.baseline)
    files = report.write(results, out)
    log("")
    for t in results["targets"]:
        state = {True: "PASS", False: "FAIL", None: "n/a "}[t["pass"]]
        log(f"{state}  {t['name']}: {t['measured']:.3f} (target {t['op']} {t['target']:g}; "
            f"{t['detail']}){' [' + t['note'] + ']' if t['note'] else ''}")
    if tmp_out is not None:
        log(f"bench: {results['elapsed_s']:.0f} s; wrote {len(files)} files to {out} "
            "(temporary, now removed)")
        tmp_out.cleanup()
    else:
        log(f"bench: {results['elapsed_s']:.0f} s; wrote {', '.join(str(f) for f in files)}")
    if results.get("failed_runs"):
        log(f"bench: runs without a result: {', '.join(results['failed_runs'])}")
        # --smoke checks that the harness works: a lost run is a failure.
        return 1 if args.mode == "smoke" else 0
    return 0
