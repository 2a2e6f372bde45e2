"""The time ``intellicache-ctl status`` takes with N intellicache nodes.

One qemu-storage-daemon with --nodes intellicache nodes (default 50), each
over its own nbd client node of one nbdkit (the pattern plugin, 64 MiB: no
storage) and its own cache file, each exported over NBD and read a little
so that its counters are not all zero.  The tool talks to a monitor of its
own.  ``intellicache-ctl status`` (and ``status --json``, ``metrics``) run
--runs times each, one after the other; the wall time of each run,
process start to exit, is measured.  Prints the median and the largest,
writes them as JSON; with --check exits 1 if the median of status is not
below --target-ms (200 ms: the target of issue 12).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import intellicache_harness as h


def parse_args():
    p = argparse.ArgumentParser(prog="scripts/bench-ctl.py",
                                description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--target-ms", type=float, default=200.0)
    p.add_argument("--check", action="store_true",
                   help="exit 1 if the median of status misses --target-ms")
    p.add_argument("--ctl", default=str(h.ctl_binary()))
    p.add_argument("--output", default=str(h.REPO / "build" / "bench-ctl.json"))
    return p.parse_args()


def timed(argv, runs):
    """Wall times in ms of @runs runs of @argv, each checked."""
    times = []
    for _ in range(runs):
        t = time.monotonic()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        times.append((time.monotonic() - t) * 1000)
        if r.returncode != 0:
            raise h.HarnessError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr}")
    return times


def main():
    args = parse_args()
    if not Path(args.ctl).exists():
        sys.exit(f"bench-ctl: {args.ctl} not built (scripts/build.sh)")
    with tempfile.TemporaryDirectory(prefix="ic-bench-ctl-") as tmp:
        tmp = Path(tmp)
        with h.Nbdkit(tmp, "pattern", {"size": "64M"}, tag="base") as nk:
            nk.start()
            blockdevs = []
            names = [f"ic{i}" for i in range(args.nodes)]
            for i, name in enumerate(names):
                cache = h.create_cache_file(tmp / f"cache{i}.img")
                blockdevs += [
                    dict(h.nbd_base(nk.socket), **{"node-name": f"base{i}", "read-only": True}),
                    h.file_node(f"cache{i}", cache, direct=False),
                    h.intellicache_node(name, f"base{i}", f"cache{i}"),
                ]
            d = h.StorageDaemon(tmp, blockdevs, names, tag="qsd")
            sock = tmp / "ctl.sock"
            d.argv += ["--chardev", f"socket,id=ctl,path={sock},server=on,wait=off",
                       "--monitor", "chardev=ctl"]
            with d:
                d.start(timeout=120)
                h.wait_until(lambda: h.unix_socket_ready(sock), 20, "the tool's monitor")
                for name in names:
                    c = h.NbdClient(d.socket, name)
                    try:
                        c.pread(0, 65536)
                    finally:
                        c.close()
                base = [args.ctl, "--qmp", str(sock)]
                out = subprocess.run(base + ["status"], capture_output=True, text=True,
                                     timeout=30, check=True).stdout
                rows = len(out.splitlines()) - 1
                if rows != args.nodes:
                    raise h.HarnessError(f"status listed {rows} nodes, not {args.nodes}")
                reply = d.qmp.cmd("query-blockstats", **{"query-nodes": True})
                result = {"nodes": args.nodes, "runs": args.runs,
                          "reply_bytes": len(json.dumps(reply))}
                print(f"query-blockstats reply with {args.nodes} nodes: "
                      f"{result['reply_bytes'] / 1024:.0f} KiB")
                for label, extra in (("status", ["status"]), ("status-json", ["status", "--json"]),
                                     ("metrics", ["metrics"])):
                    times = timed(base + extra, args.runs)
                    result[label] = {"median_ms": round(statistics.median(times), 1),
                                     "max_ms": round(max(times), 1)}
                    print(f"intellicache-ctl {' '.join(extra)} with {args.nodes} nodes: "
                          f"median {statistics.median(times):.1f} ms, "
                          f"max {max(times):.1f} ms ({args.runs} runs)")
    result["target_ms"] = args.target_ms
    result["met"] = result["status"]["median_ms"] < args.target_ms
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"status target < {args.target_ms:.0f} ms: {'met' if result['met'] else 'MISSED'}"
          f" (written to {args.output})")
    return 1 if args.check and not result["met"] else 0


if __name__ == "__main__":
    sys.exit(main())
