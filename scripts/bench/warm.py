"""Warm runs: one filled node per configuration (WARM_CONFIGS), all
running at once; each workload then runs on every configuration back to
back, in rounds of alternating order (ABC, CBA, ...)."""

import contextlib
import time

import intellicache_harness as h

from .common import (SEED, WARM_CONFIGS, BaseServer, config_nodes, fill_argv, fio_argv,
                     fmt_run, log)


def run(bench):
    p = bench.p
    region = p["warm_region"]
    raw = bench.work / "raw-local.img"
    h.make_base_image(raw, region, SEED)
    res = bench.results["warm"]
    res["base"] = "nbd-1ms"
    res["region_bytes"] = region
    res["rounds"] = p["warm_rounds"]
    res["fill"] = {}
    res["workloads"] = {}
    with contextlib.ExitStack() as stack:
        daemons = {}
        for cfg in WARM_CONFIGS:
            d = bench.rundir("warm", cfg)
            base = BaseServer(bench, "nbd-1ms")
            bnode = base.start(d, stack) if cfg in ("ic", "qcow2-cor") else None
            nodes, exports = config_nodes(cfg, d, bnode, base.size, raw_file=raw)
            qsd = h.StorageDaemon(d, nodes, exports)
            stack.callback(qsd.stop)
            qsd.start()
            node = exports[0]
            filled = fill(qsd, node, cfg, region, d) if cfg != "raw-local" else {}
            res["fill"][cfg] = {k: v for k, v in filled.items() if k != "stats"}
            daemons[cfg] = {"qsd": qsd, "node": node, "dir": d, "base": base,
                            "prev": filled.get("stats")}
            log(f"warm  {cfg} ready" + (f" (filled in {filled['fill_s']:.1f} s)"
                                        if filled else ""))
        for wl in p["warm_workloads"]:
            log(f"warm  {wl}")
            runs = {cfg: [] for cfg in WARM_CONFIGS}
            for rnd in range(p["warm_rounds"]):
                order = WARM_CONFIGS if rnd % 2 == 0 else WARM_CONFIGS[::-1]
                for cfg in order:
                    r = warm_one(bench, daemons[cfg], cfg, wl, region, f"{wl}-{rnd}")
                    runs[cfg].append(r)
                    log("      " + fmt_run(cfg, r))
            res["workloads"][wl] = {cfg: merge_rounds(rs) for cfg, rs in runs.items()}
        for cfg, dm in daemons.items():
            dm["qsd"].stop_checked(f"warm {cfg}")
            if cfg in ("ic", "qcow2-cor"):
                res["fill"][cfg]["base_read_bytes_total"] = dm["base"].stop()
                # Every request the base saw, fill and warm runs
                # together (e.g. block status queries during hits).
                res["fill"][cfg]["base_ops_total"] = dm["base"].last_stats
    raw.unlink()


def fill(qsd, node, config, region, d):
    """Read [0, region) once (1 MiB, QD4); for intellicache wait until
    every cluster of it is stored (stores run behind the replies)."""
    t = time.monotonic()
    h.run_fio_argv(fill_argv(qsd.uri_for(node), region), d, "fill", 600)
    rec = {"fill_s": time.monotonic() - t}
    if config.startswith("ic"):
        want = region // qsd.stats()["cluster-size"]
        last = {"n": -1, "t": time.monotonic()}

        def settled():
            st = qsd.stats()
            n = st["cached-clusters"]
            if n != last["n"]:
                last.update(n=n, t=time.monotonic())
                return None
            return st if n >= want and time.monotonic() - last["t"] >= 0.3 else None
        st = h.wait_until(settled, 120, f"{want} clusters cached", interval=0.1)
        rec["stats"] = st
        rec["cached_clusters"] = st["cached-clusters"]
        rec["settle_s"] = time.monotonic() - t - rec["fill_s"]
    return rec


def warm_one(bench, dm, cfg, wl, region, tag):
    p = bench.p
    qsd = dm["qsd"]
    cpu0 = h.proc_cpu_s(qsd.pid)
    r = {"fio": h.run_fio_argv(fio_argv(qsd.uri_for(dm["node"]), wl, p["warm_runtime"], region),
                               dm["dir"], f"fio-{tag}", p["warm_runtime"] * 4 + 180)}
    r["daemon_cpu_s"] = h.proc_cpu_s(qsd.pid) - cpu0
    if r["fio"]["total_ios"]:
        r["daemon_cpu_us_per_io"] = r["daemon_cpu_s"] * 1e6 / r["fio"]["total_ios"]
    if cfg.startswith("ic"):
        st = qsd.stats()
        prev = dm["prev"]
        delta = {k: st[k] - prev[k] for k in
                 ("hit-bytes", "miss-bytes", "wait-bytes", "fetched-bytes",
                  "read-ahead-bytes")}
        guest = delta["hit-bytes"] + delta["miss-bytes"] + delta["wait-bytes"]
        r["hit_share"] = delta["hit-bytes"] / guest if guest else 0.0
        r["stats_delta"] = delta
        dm["prev"] = st
    return r


def merge_rounds(runs):
    """The mean of several runs of one configuration; the runs are kept."""
    if len(runs) == 1:
        return runs[0]
    out = {"fio": {k: sum(r["fio"][k] for r in runs) / len(runs) for k in runs[0]["fio"]},
           "rounds": runs}
    for k in ("daemon_cpu_s", "daemon_cpu_us_per_io", "hit_share"):
        if all(k in r for r in runs):
            out[k] = sum(r[k] for r in runs) / len(runs)
    return out
