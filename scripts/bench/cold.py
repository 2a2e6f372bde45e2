"""Cold runs: for every base and workload, each cold configuration
(COLD_CONFIGS) on a fresh base server, daemon and empty cache or overlay."""

import contextlib
import subprocess
import time

import intellicache_harness as h

from .common import (COLD_CONFIGS, BaseServer, alternate, fio_argv, fmt_run, log,
                     remove_images, round_ratio)

# The workloads whose ratio to the base read directly has a target close
# to 1 (docs/benchmarks.rst): they get rounds, not one run per config.
# Sequential 1 MiB reads need them as much as 4 KiB random ones: on a
# shared 2-core machine the base read directly moved 161-480 MiB/s
# between runs a minute apart with nothing changed.
ROUNDS_WORKLOADS = ("rand4k-qd16", "seq1m-qd4", "seq1m-qd1")


def run(bench):
    p = bench.p
    for bname in p["bases"]:
        workloads = p["cold_workloads"].get(bname, [])
        if not workloads:
            continue
        base = BaseServer(bench, bname)
        with contextlib.ExitStack() as stack:
            if bname == "nfs":
                if not bench.start_ganesha(stack):
                    continue
            res = bench.results["cold"].setdefault(bname, {})
            for wl in workloads:
                log(f"cold  {bname:<9} {wl}")
                # fio's region: the whole base (64 GiB) keeps random
                # and sequential reads cold; the boot mix does a fixed
                # amount of work on its own region, as a booting VM
                # reads a small part of its image, some of it again.
                region = p["boot_region"] if wl == "boot" else None
                fixed = region // 8 if wl == "boot" else None
                for cfg in COLD_CONFIGS:
                    d = bench.rundir("cold", bname, wl, cfg)
                    r = None
                    for attempt in (1, 2):
                        try:
                            r = one_run(bench, d, base, cfg, wl, p["runtime"], region,
                                        fixed=fixed, label=f"cold {bname} {wl} {cfg}")
                            break
                        except (h.HarnessError, OSError, subprocess.CalledProcessError) as e:
                            # One failed run must not lose the others:
                            # record it, retry once, go on.
                            bench.results["errors"].append(f"attempt {attempt}: {e}")
                            log(f"      {cfg}: FAILED (attempt {attempt}): {e}")
                            d = bench.rundir("cold", bname, wl, f"{cfg}-retry{attempt}")
                    if r is None:
                        bench.results["failed_runs"].append(f"cold {bname} {wl} {cfg}")
                        continue
                    res.setdefault(wl, {})[cfg] = r
                    log("      " + fmt_run(cfg, r))
                if wl in ROUNDS_WORKLOADS and p["cold_rounds"] > 1:
                    more_rounds(bench, base, bname, wl, res.get(wl, {}), region)


def more_rounds(bench, base, bname, wl, res, region):
    """Rounds 2.. of the base read directly and intellicache, each on a
    fresh base, daemon and cache, in alternating order starting with the
    order the first round did not have; the median of the rounds' ratios
    goes to res["rounds"].  On a shared machine one run's ratio moves by
    several percent with what else runs; a target close to 1 needs the
    median."""
    if "ic" not in res or "direct" not in res:
        return
    rounds = bench.p["cold_rounds"]
    configs = ["ic", "direct"]

    def one(cfg, rnd):
        d = bench.rundir("cold", bname, wl, f"{cfg}-round{rnd + 2}")
        r = one_run(bench, d, base, cfg, wl, bench.p["runtime"], region,
                    label=f"cold {bname} {wl} {cfg} round {rnd + 2}")
        log("      " + fmt_run(f"{cfg} (round {rnd + 2})", r))
        return r

    try:
        runs = alternate(rounds - 1, configs, one)
    except (h.HarnessError, OSError, subprocess.CalledProcessError) as e:
        bench.results["errors"].append(f"cold {bname} {wl} rounds: {e}")
        log(f"      rounds: FAILED: {e}")
        return
    rr = {cfg: {"runs": [res[cfg]] + runs[cfg]} for cfg in configs}
    median, ratios = round_ratio(rr, "ic", "direct")
    res["rounds"] = {"ic_iops": [r["fio"]["iops"] for r in rr["ic"]["runs"]],
                     "direct_iops": [r["fio"]["iops"] for r in rr["direct"]["runs"]],
                     "ratio_direct": median, "ratios_direct": ratios}
    log(f"      ic / direct {median:.3f} (median of {len(ratios)} rounds: "
        + " ".join(f"{x:.3f}" for x in ratios) + ")")


def ic_summary(st, fio):
    """Shares of the bytes read that were cold, missed or hit, from the
    node's counters after a run."""
    guest = st["hit-bytes"] + st["miss-bytes"] + st["wait-bytes"]
    # Hits on data fetched ahead during this very run are cold data
    # too: count them via read-ahead bytes, bounded by the hits.
    ra_hits = min(st["hit-bytes"], st["read-ahead-bytes"])
    return {"cold_share": (st["miss-bytes"] + st["wait-bytes"] + ra_hits) / guest
            if guest else 0.0,
            "miss_share": (st["miss-bytes"] + st["wait-bytes"]) / guest if guest else 0.0,
            "hit_share": st["hit-bytes"] / guest if guest else 0.0,
            "fetched_per_read": st["fetched-bytes"] / fio["io_bytes"]
            if fio["io_bytes"] else 0.0}


def one_run(bench, d, base, config, workload, runtime, region, fixed=None, label=""):
    """Fresh base server, daemon and cache or overlay; fio; collect; stop.
    The cache file or overlays are deleted afterwards (a --full run
    fills tens of GiB otherwise)."""
    try:
        return _one_run(bench, d, base, config, workload, runtime, region, fixed, label)
    finally:
        remove_images(d)


def _one_run(bench, d, base, config, workload, runtime, region, fixed, label):
    rec = {}
    with contextlib.ExitStack() as stack:
        qsd, exports = bench.start_config(d, base, config, stack)
        uri = qsd.uri_for(exports[0])
        timeout = 900 if fixed else runtime * 4 + 180
        cpu0, t0 = h.proc_cpu_s(qsd.pid), time.monotonic()
        try:
            rec["fio"] = h.run_fio_argv(fio_argv(uri, workload, runtime, region, fixed=fixed),
                                        d, "fio", timeout)
        except h.HarnessError as e:
            first = str(e).split("\n{", 1)[0]       # without fio's JSON
            nk = base.nbdkit
            raise h.HarnessError(
                f"{label}: {first}\n"
                f"qemu-storage-daemon: {h.proc_state(qsd.proc)}; log:\n"
                f"{h.log_tail(qsd.log_path)}\n"
                + (f"nbdkit: {h.proc_state(nk.proc)}; log:\n{h.log_tail(nk.log_path)}"
                   if nk else "")) from e
        rec["daemon_cpu_s"] = h.proc_cpu_s(qsd.pid) - cpu0
        rec["wall_s"] = time.monotonic() - t0
        if rec["fio"]["total_ios"]:
            rec["daemon_cpu_us_per_io"] = rec["daemon_cpu_s"] * 1e6 / rec["fio"]["total_ios"]
        if config.startswith("ic"):
            st = qsd.stats()
            rec["stats"] = st
            rec.update(ic_summary(st, rec["fio"]))
        rec["stop_s"] = qsd.stop_checked(label)
        rec["base_read_bytes"] = base.stop()
        rec["base_ops"] = base.last_stats
    return rec
