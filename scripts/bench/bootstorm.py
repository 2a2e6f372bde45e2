"""Boot storm: N clients, each through its own qcow2 overlay, over one
shared intellicache node or over N copy-on-read overlays of the base."""

import contextlib
import time
from pathlib import Path

import intellicache_harness as h
from intellicache_harness import MiB

from .common import BaseServer, config_nodes, fio_argv, log, remove_images


def run(bench):
    p = bench.p
    region = p["boot_region"]
    fixed = region // 8             # bytes of small random reads per client
    res = bench.results["bootstorm"]
    res["base"] = "nbd-1ms"
    res["region_bytes"] = region
    res["small_io_bytes_per_client"] = fixed
    res["runs"] = {}
    unique = None
    for n in p["storm_n"]:
        for cfg in ("ic", "qcow2-cor"):
            log(f"storm N={n} {cfg}")
            d = bench.rundir("storm", f"{cfg}-{n}")
            r = storm_run(bench, d, cfg, n, region, fixed)
            if unique is None:
                # In the cache's own unit: what any cache with that
                # cluster size must fetch at least.
                cluster = r["stats"]["cluster-size"]
                unique = unique_bytes([d / "iolog0.small", d / "iolog0.seq"], cluster)
                res["unique_bytes"], res["unique_cluster_bytes"] = unique
                res["cluster_size"] = cluster
            r["base_per_unique"] = r["base_read_bytes"] / unique[0]
            r["base_per_unique_clusters"] = r["base_read_bytes"] / unique[1]
            res["runs"].setdefault(str(n), {})[cfg] = r
            log(f"      {cfg:<10} N={n}: {r['makespan_s']:.2f} s, base read "
                f"{r['base_read_bytes'] / MiB:.1f} MiB "
                f"({r['base_per_unique_clusters']:.2f}x unique clusters)")


def unique_bytes(paths, cluster):
    """Bytes covered by the reads in fio iologs @paths: exact, and rounded
    out to @cluster (what any cache with that unit must fetch)."""
    ranges, clusters = [], set()
    for p in paths:
        for line in Path(p).read_text().splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[2] == "read":
                off, ln = int(parts[3]), int(parts[4])
                ranges.append((off, off + ln))
                clusters.update(range(off // cluster, (off + ln - 1) // cluster + 1))
    ranges.sort()
    total, end = 0, -1
    for a, b in ranges:
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total, len(clusters) * cluster


def storm_run(bench, d, cfg, n, region, fixed):
    try:
        return _storm_run(bench, d, cfg, n, region, fixed)
    finally:
        remove_images(d)


def _storm_run(bench, d, cfg, n, region, fixed):
    base = BaseServer(bench, "nbd-1ms")
    rec = {}
    with contextlib.ExitStack() as stack:
        bnode = base.start(d, stack)
        if cfg == "ic":
            nodes, _ = config_nodes("ic", d, bnode, base.size)
            exports = []
            for i in range(n):
                ov = h.qcow2_overlay(d / f"overlay{i}.qcow2", base.size)
                nodes.append(h.file_node(f"ovf{i}", ov))
                nodes.append(h.qcow2_node(f"ov{i}", f"ovf{i}", "ic0"))
                exports.append(f"ov{i}")
        else:
            nodes, exports = config_nodes("qcow2-cor", d, bnode, base.size, overlays=n)
        qsd = h.StorageDaemon(d, nodes, exports)
        stack.callback(qsd.stop)
        qsd.start()
        procs = []
        t0 = time.monotonic()
        cpu0 = h.proc_cpu_s(qsd.pid)
        for i, node in enumerate(exports):
            argv = fio_argv(qsd.uri_for(node), "boot", None, region, fixed=fixed,
                            iolog=d / f"iolog{i}" if i == 0 else None)
            out = d / f"fio{i}.json"
            procs.append((h.fio_start(argv, out), out))
            stack.callback(lambda pr=procs[-1][0]: pr.poll() is None and pr.kill())
        clients = [h.fio_finish(pr, out, 900) for pr, out in procs]
        rec["makespan_s"] = time.monotonic() - t0
        rec["daemon_cpu_s"] = h.proc_cpu_s(qsd.pid) - cpu0
        rec["clients"] = clients
        rec["client_bytes"] = sum(c["io_bytes"] for c in clients)
        if cfg == "ic":
            rec["stats"] = qsd.stats("ic0")
        qsd.stop_checked(f"storm {cfg} {n}")
        rec["base_read_bytes"] = base.stop()
        rec["base_ops"] = base.last_stats
    return rec
