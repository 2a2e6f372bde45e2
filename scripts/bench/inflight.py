"""Cold-cache random reads: parallel misses (max-inflight=16) vs serial (1).

The base is slow on purpose: nbdkit's pattern plugin (reproducible content,
every 8 bytes hold their own offset, no storage) behind the delay filter
(2 ms per read), on a unix socket, opened by QEMU's nbd client driver.  The
random plugin (--plugin random) works too, but generating 64 KiB of random
data per fetch costs nbdkit enough CPU on a small machine to become the
limit of the max-inflight=16 run.  qemu-storage-daemon
exports it over NBD, and fio (nbd engine) does 4 KiB random reads at queue
depth 16 for a fixed time.  Three configurations, side by side in one run,
same random seed, fresh empty cache for each:

  base-direct        the base node exported as is (no cache): reference
  max-inflight=16    intellicache, up to 16 base reads in flight
  max-inflight=1     intellicache, one base read at a time (serial misses)

The base is large (64 GiB sparse) so the reads stay cold for the whole run;
the statistics prove it (share of bytes that missed).  Prints IOPS and the
ratio 16/1, writes a JSON result; with --check exits 1 if the ratio is below
--min-ratio or a run was not cold.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import intellicache_harness as h

# At least this share of the bytes read must have missed (or joined a
# miss in flight) for a run to count as cold.
MIN_COLD_SHARE = 0.9


def parse_args():
    p = argparse.ArgumentParser(prog="scripts/bench-inflight.py",
                                description=__doc__.split("\n")[0])
    p.add_argument("--output", default=str(h.REPO / "build" / "bench-inflight.json"),
                   help="JSON result file (default: %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if the ratio is below --min-ratio or a run was not cold")
    p.add_argument("--min-ratio", type=float, default=5.0)
    p.add_argument("--runtime", type=int, default=10, help="seconds per configuration")
    p.add_argument("--size", default="64G", help="base size for nbdkit (default 64G)")
    p.add_argument("--delay", default="2ms", help="base read latency (nbdkit delay-read)")
    p.add_argument("--iodepth", type=int, default=16)
    p.add_argument("--plugin", choices=("pattern", "random"), default="pattern",
                   help="nbdkit plugin of the base (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="fio (and random plugin) seed")
    p.add_argument("--cache-dir", default=None,
                   help="where the cache files go (default: a temporary directory)")
    return p.parse_args()


def measure(args, workdir, name, ic_options):
    """One configuration: its own nbdkit and daemon, fresh cache; fio.

    Returns fio's figures, the driver's statistics and how long the
    daemon's start and clean stop took (the stop persists the cache).
    """
    d = Path(workdir) / name.replace("=", "-")
    d.mkdir()
    cache = None
    if ic_options is not None:
        cache = h.create_cache_file(Path(args.cache_dir or d) / f"ic-bench-{os.getpid()}.img")
    try:
        plugin_args = {"size": args.size}
        if args.plugin == "random":
            plugin_args["seed"] = args.seed
        with h.Nbdkit(d, args.plugin, plugin_args,
                      filters=["delay"], filter_args={"delay-read": args.delay},
                      tag="base") as nk:
            nk.start()
            with h.IcDaemon(d, h.nbd_base(nk.socket), cache, ic_options,
                            cache_options=h.CACHE_DIRECT) as qsd:
                t = time.monotonic()
                qsd.start()
                result = {"start_s": time.monotonic() - t}
                result["fio"] = h.run_fio(qsd.uri, d, rw="randread", bs="4k",
                                          iodepth=args.iodepth, runtime=args.runtime,
                                          seed=args.seed, timeout=args.runtime + 120)
                if cache is not None:
                    st = qsd.stats()
                    guest = st["hit-bytes"] + st["miss-bytes"] + st["wait-bytes"]
                    result["stats"] = st
                    result["cold_share"] = (st["miss-bytes"] + st["wait-bytes"]) / guest
                t = time.monotonic()
                status, killed = qsd.stop(timeout=300)
                result["stop_s"] = time.monotonic() - t
                if killed or status != 0:
                    raise h.HarnessError(f"{name}: daemon exit status {status}, "
                                         f"killed={killed}")
    finally:
        if cache is not None:
            cache.unlink()
    return result


def main():
    args = parse_args()
    h.exit_on_sigterm()
    missing = h.missing_programs(["nbdkit", "fio"])
    if missing:
        sys.exit(f"bench-inflight: missing programs: {', '.join(missing)}")
    if not h.qsd_binary().exists():
        sys.exit(f"bench-inflight: {h.qsd_binary()} not built (set IC_QEMU_BUILD?)")

    configs = [("base-direct", None),
               ("max-inflight=16", {"max-inflight": 16}),
               ("max-inflight=1", {"max-inflight": 1})]
    print(f"bench-inflight: 4 KiB random reads, QD{args.iodepth}, {args.runtime} s each, "
          f"base: nbdkit {args.plugin} {args.size}, {args.delay} per read; cold cache")
    results = {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="ic-bench-inflight-") as workdir:
        for name, ic_options in configs:
            r = measure(args, workdir, name, ic_options)
            results[name] = r
            line = f"  {name:<16} {r['fio']['iops']:9.0f} IOPS"
            if "stats" in r:
                line += (f"   cold: {100 * r['cold_share']:.1f}% of bytes missed, "
                         f"{r['stats']['fetches']} base reads")
            print(line, flush=True)

    ratio = results["max-inflight=16"]["fio"]["iops"] / results["max-inflight=1"]["fio"]["iops"]
    cold = all(r["cold_share"] >= MIN_COLD_SHARE for r in results.values() if "stats" in r)
    passed = ratio >= args.min_ratio and cold
    print(f"  ratio max-inflight=16 / max-inflight=1: {ratio:.1f}x "
          f"(required >= {args.min_ratio:g}: {'PASS' if ratio >= args.min_ratio else 'FAIL'})")
    print(f"  vs base direct: max-inflight=16 reaches "
          f"{100 * results['max-inflight=16']['fio']['iops'] / results['base-direct']['fio']['iops']:.0f}%"
          " of the uncached base")
    if not cold:
        print(f"  NOT COLD: less than {100 * MIN_COLD_SHARE:.0f}% of the bytes missed; "
              "use a larger --size or a shorter --runtime")

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "parameters": {"bs": 4096, "iodepth": args.iodepth, "runtime_s": args.runtime,
                       "base_plugin": args.plugin, "base_size": args.size,
                       "base_read_delay": args.delay,
                       "seed": args.seed, "min_ratio": args.min_ratio,
                       "min_cold_share": MIN_COLD_SHARE},
        "results": results,
        "ratio": ratio,
        "cold": cold,
        "passed": passed,
    }, indent=2) + "\n")
    print(f"  result: {out}")
    if args.check and not passed:
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except h.HarnessError as e:
        sys.exit(f"bench-inflight: {e}")
