"""The daemon's CPU time per cold 4 KiB read, everything included: a fixed
number of reads (QD16) over the 1 ms base, then (for intellicache) until
every fetch is stored.  The cold part's per-I/O figure stops at the end of
fio, before the stores behind the replies are done, and varies with how
many got dropped."""

import contextlib
import statistics

import intellicache_harness as h

from .common import BaseServer, log, random_reads_argv, remove_images, wait_stores_done


def run(bench):
    log("misscost (daemon CPU per cold miss, stores included)")
    n, rounds = bench.p["miss_reads"], bench.p["miss_rounds"]
    base = BaseServer(bench, "nbd-1ms")
    res = {"reads": n, "rounds": rounds, "base": base.name, "runs": {}}
    for i in range(rounds):
        order = ["direct", "ic"] if i % 2 == 0 else ["ic", "direct"]
        for config in order:
            d = bench.rundir("misscost", f"{config}-{i}")
            try:
                rec = misscost_run(bench, d, base, config, n)
            finally:
                remove_images(d)
            res["runs"].setdefault(config, []).append(rec)
            log(f"      {config:10s} {rec['cpu_us_per_read']:6.1f} us/read"
                + (f"  stored {rec['stored_fetches']} of {rec['fetches']} fetches"
                   if config == "ic" else ""))
    for config, runs in res["runs"].items():
        res[config] = {"cpu_us_per_read": statistics.mean(r["cpu_us_per_read"]
                                                          for r in runs),
                       "min": min(r["cpu_us_per_read"] for r in runs),
                       "max": max(r["cpu_us_per_read"] for r in runs)}
    res["ratio"] = res["ic"]["cpu_us_per_read"] / res["direct"]["cpu_us_per_read"]
    bench.results["misscost"] = res


def misscost_run(bench, d, base, config, n):
    with contextlib.ExitStack() as stack:
        qsd, exports = bench.start_config(d, base, config, stack)
        cpu0 = h.proc_cpu_s(qsd.pid)
        fio = h.run_fio_argv(random_reads_argv(qsd.uri_for(exports[0]), "miss", n),
                             d, "fio", 600)
        rec = {"fio": fio}
        if config == "ic":
            st = wait_stores_done(qsd, "ic0", durable=True)
            rec["stats"] = st
            rec["fetches"] = st["fetches"]
            rec["stored_fetches"] = st["fetches"] - st["store-skipped"]
            rec["store_skipped"] = st["store-skipped"]
        rec["daemon_cpu_s"] = h.proc_cpu_s(qsd.pid) - cpu0
        rec["cpu_us_per_read"] = rec["daemon_cpu_s"] * 1e6 / fio["total_ios"]
        qsd.stop_checked(f"misscost {config}")
        base.stop()
    return rec
