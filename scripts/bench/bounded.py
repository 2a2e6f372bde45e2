"""Bounded cache (cache-size, scan-threshold): what bounding the cache keeps
and what it costs, through the daemon, with the simulator's figures for the
same workloads next to them (tools/ic-cachesim, docs/cachesim.rst).

- scan: a boot set read twice, then the whole base read sequentially (a
  backup, a virus scan), then the boot set again: the share of that last
  pass's bytes that hit.  Three times: with the default scan-threshold and
  the sequential read at QD4, the same at QD1 (its reads reach the node in
  order), and with scan-threshold=0 (scans stored like any read: the
  eviction policy alone keeps the boot set).  The simulator replays the
  same reads (fio's I/O logs) and its own scan workload with the same
  sizes, LRU among others.
- zipf: 4 KiB random reads, Zipf(0.9) (fio's generator), through the
  daemon until the cache is full, then measured; against the simulator on
  the same reads (fio's I/O logs) and on its own Zipf(0.9) reads.
- warm: 4 KiB random hits at QD16 of a bounded node whose read region fits
  in its cache-size, against the raw local file and an unbounded node.
- cold: 4 KiB random reads at QD16 over the 1 ms base through a bounded
  node kept full (every miss makes room: eviction all the time), against
  the base read directly and an unbounded node.
- memory: the daemon's memory over a 1 TiB base at 64 KiB clusters with
  cache-size 100 GiB and without: what bounding costs (mostly the eviction
  policy) per cluster the cache can hold.
"""

import contextlib
import json
import subprocess
import time
from pathlib import Path

import intellicache_harness as h
from intellicache_harness import KiB, MiB

from .common import (IC_OPTIONS, SEED, BaseServer, alternate, fio_argv, log, mean_run,
                     remove_images, round_ratio)

SIM = h.REPO / "build" / "tools" / "ic-cachesim"
COUNTERS = ("hit-bytes", "miss-bytes", "wait-bytes", "fetched-bytes", "read-ahead-bytes",
            "stored-bytes", "evicted-bytes", "scan-bytes", "no-room-bytes")
SIM_POLICIES = ("S3-FIFO", "LRU", "FIFO", "SIEVE", "MIN")
ZIPF = 0.9
BOOT_BS = 64 * KiB      # boot set reads, as the simulator's boot extents
SCAN_BS = 1 * MiB       # scan reads, as the simulator's --scan-read default
MEM_CLUSTER = 64 * KiB


def run(bench):
    q = bench.p["bounded"]
    res = bench.results["bounded"] = {}
    steps = (("scan", scan), ("zipf", zipf), ("warm", warm_speed), ("cold", cold_speed),
             ("memory", memory))
    for name, step in steps:
        t = time.monotonic()
        try:
            res[name] = step(bench, q)
            res[name]["elapsed_s"] = time.monotonic() - t
        except Exception as e:  # noqa: BLE001 -- keep the other measurements
            log(f"bench: bounded {name} failed: {e!r}")
            bench.results["errors"].append(f"bounded {name}: {e!r}")
            bench.results["failed_runs"].append(f"bounded {name}")


# ---------------------------------------------------------------------------
# Nodes and counters


def bounded_nodes(d, bnode, cache_size, **options):
    """The base node, the cache file node (discard=unmap, which cache-size
    needs) and an intellicache node ic0 bounded to @cache_size (None: not
    bounded) with --ic-option's options and @options."""
    cache = h.create_cache_file(d / "cache.img")
    cache_node = dict(h.file_node("cache0", cache), discard="unmap")
    ic = h.intellicache_node("ic0", "base0", "cache0", **IC_OPTIONS)
    if cache_size:
        ic["cache-size"] = cache_size
    ic.update(options)
    return [bnode, cache_node, ic]


@contextlib.contextmanager
def ic_daemon(d, base, cache_size, tag="qsd", **options):
    """Start @base and a daemon exporting ic0 over it; both stop at the
    end, and the cache file is deleted."""
    with contextlib.ExitStack() as stack:
        bnode = base.start(d, stack)
        qsd = h.StorageDaemon(d, bounded_nodes(d, bnode, cache_size, **options), ["ic0"],
                              tag=tag)
        stack.callback(qsd.stop)
        qsd.start()
        try:
            yield qsd
        finally:
            remove_images(d)


def delta(st0, st1):
    return {k: st1.get(k, 0) - st0.get(k, 0) for k in COUNTERS}


def shares(dl):
    """Of the bytes read: hit, and hit or joined a fetch in flight."""
    read = dl["hit-bytes"] + dl["miss-bytes"] + dl["wait-bytes"]
    return {"read_bytes": read,
            "hit_share": dl["hit-bytes"] / read if read else 0.0,
            "hit_or_wait_share": (dl["hit-bytes"] + dl["wait-bytes"]) / read if read else 0.0}


def nbd_job(uri, name, seed=SEED):
    """fio's options for a job @name on @uri whose random offsets follow
    @seed: fio (3.33) takes --randseed for them only with --randrepeat=0,
    and otherwise gives every job the same offsets whatever the seed."""
    return ["--ioengine=nbd", f"--uri={uri}", f"--name={name}", f"--randseed={seed}",
            "--randrepeat=0"]


def settle(qsd, timeout=300):
    """Wait until the node has no fetch in flight and nothing waiting to
    be stored, twice in a row 50 ms apart (the stores behind the replies
    are done); returns its stats then."""
    last = {"idle": False}

    def idle():
        st = qsd.stats("ic0")
        now = st["inflight-fetches"] == 0 and st["store-backlog-bytes"] == 0
        was, last["idle"] = last["idle"], now
        return st if now and was else None
    return h.wait_until(idle, timeout, "stores to finish", interval=0.05)


def random_fill_argv(uri, offset, size, seed):
    """[offset, offset + size) read once in 64 KiB reads in random order,
    QD16: fills a cache without looking like a scan (a sequential fill
    longer than scan-threshold would not be stored)."""
    return nbd_job(uri, "fill", seed) + [f"--offset={offset}", f"--size={size}",
                                         "--rw=randread", f"--bs={BOOT_BS}", "--iodepth=16"]


def wait_cached(qsd, clusters, timeout=180):
    """Wait until at least @clusters are cached and stores are done."""
    def enough():
        st = qsd.stats()
        return st if st["cached-clusters"] >= clusters else None
    h.wait_until(enough, timeout, f"{clusters} clusters cached", interval=0.1)
    return settle(qsd, timeout)


# ---------------------------------------------------------------------------
# The simulator


def simulate(*args):
    """ic-cachesim with @args and --json: its result as a dict."""
    out = subprocess.run([str(SIM), *map(str, args), "--json"], capture_output=True,
                         text=True, timeout=600, check=True).stdout
    return json.loads(out)["workloads"][0]


def sim_ratios(w, which="all"):
    """{policy: byte hit ratio} of a simulator workload."""
    return {p["name"]: p[which]["byte_hit_ratio"] for p in w["policies"]}


def sim_available(bench, what):
    if SIM.exists():
        return True
    note = f"bounded {what}: simulator figures ({SIM} not built: meson compile -C build)"
    if note not in bench.results["skipped"]:
        bench.results["skipped"].append(note)
    return False


def iolog_reads(path):
    """(offset, length) of the reads in a fio I/O log (version 2 or 3)."""
    reads = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 4 and f[-3] == "read":
            reads.append((int(f[-2]), int(f[-1])))
    return reads


def write_trace(path, reads):
    with open(path, "w") as f:
        f.writelines(f"{o} {n}\n" for o, n in reads)
    return path


# ---------------------------------------------------------------------------
# Scan resistance


def scan(bench, q):
    size, cache, boot = q["scan_base"], q["cache_size"], q["boot_size"]
    base = BaseServer(bench, "plain", size=size)
    log(f"bounded scan ({size // MiB} MiB base, cache-size {cache // MiB} MiB, "
        f"boot set {boot // MiB} MiB)")
    res = {"base_size": size, "cache_size": cache, "boot_size": boot,
           "boot_offset": size // 8, "runs": {}}
    # The sequential read at QD4 (a backup tool's), and at QD1: reads in
    # flight together may reach the node out of order.
    for name, options, qd in (("default", {}, 4), ("default-qd1", {}, 1),
                              ("threshold-0", {"scan-threshold": 0}, 4)):
        r = scan_run(bench, base, name, size, cache, boot, options, qd)
        res["runs"][name] = r
        log(f"      {name:<12} boot set after the scan (QD{qd}): hits "
            f"{100 * r['passes']['boot3']['hit_share']:.1f}%; scan "
            f"{r['passes']['scan']['fio']['mib_s']:.0f} MiB/s, evicted "
            f"{r['passes']['scan']['delta']['evicted-bytes'] / MiB:.0f} MiB, not stored "
            f"(scan) {r['passes']['scan']['delta']['scan-bytes'] / MiB:.0f} MiB")
    res["cluster_size"] = res["runs"]["default"]["cluster_size"]
    if sim_available(bench, "scan"):
        cs = res["cluster_size"]
        w = simulate("--scan-workload", "--base-size", size, "--cache-size", cache,
                     "--boot-size", boot, "--scan-read", SCAN_BS, "--cluster-size", cs)
        res["sim_workload"] = {"last_pass": sim_ratios(w, "measured"),
                               "description": w["description"]}
        res["sim_trace"] = scan_trace_sim(bench, res["runs"]["default"]["logs"], size,
                                          cache, cs)
        log("      simulator, last pass: " + ", ".join(
            f"{p} {100 * res['sim_workload']['last_pass'][p]:.1f}%" for p in SIM_POLICIES)
            + " (its scan workload); on these reads: " + ", ".join(
            f"{p} {100 * res['sim_trace'][p]:.1f}%" for p in SIM_POLICIES
            if res["sim_trace"][p] is not None))
    for r in res["runs"].values():
        del r["logs"]       # in the work directory, removed at the end
    return res


def scan_run(bench, base, name, size, cache, boot, options, scan_qd):
    d = bench.rundir("bounded", "scan", name)
    offset = size // 8
    passes = {}
    logs = {}
    with ic_daemon(d, base, cache, **options) as qsd:
        uri = qsd.uri
        # The boot set: BOOT_BS reads in random order, each block once
        # per pass, a different order each pass (a boot reads files
        # scattered over the disk: random order, no sequential stream).
        boot_job = [f"--offset={offset}", f"--size={boot}", "--rw=randread",
                    f"--bs={BOOT_BS}", "--iodepth=8"]
        scan_job = [f"--size={size}", "--rw=read", f"--bs={SCAN_BS}", f"--iodepth={scan_qd}"]
        st0 = qsd.stats()
        for i, (tag, job) in enumerate((("boot1", boot_job), ("boot2", boot_job),
                                        ("scan", scan_job), ("boot3", boot_job))):
            logs[tag] = d / f"{tag}.iolog"
            argv = nbd_job(uri, tag, SEED + i) + job + [f"--write_iolog={logs[tag]}"]
            fio = h.run_fio_argv(argv, d, tag, 1800)
            # Stores run behind the replies: the next pass starts on a
            # settled cache, as a boot after another would.
            st1 = settle(qsd)
            dl = delta(st0, st1)
            passes[tag] = dict(shares(dl), fio=fio, delta=dl,
                               used_bytes=st1.get("used-bytes"),
                               cached_clusters=st1["cached-clusters"])
            st0 = st1
        cs = st0["cluster-size"]
        qsd.stop_checked(f"bounded scan {name}")
        base.stop()
    return {"options": options, "scan_qd": scan_qd, "passes": passes, "cluster_size": cs,
            "logs": {k: str(v) for k, v in logs.items()}, "final_stats": st0}


def scan_trace_sim(bench, logs, size, cache, cs):
    """The simulator on the reads of the daemon's run (fio's logs): each
    policy's byte hit ratio over the last pass (None for MIN)."""
    d = bench.rundir("bounded", "scan", "sim")
    reads = {tag: iolog_reads(Path(p)) for tag, p in logs.items()}
    before = reads["boot1"] + reads["boot2"] + reads["scan"]
    common = ["--format", "plain", "--base-size", size, "--cache-size", cache,
              "--cluster-size", cs]
    return sim_phases(lambda rs: ["--trace", write_trace(d / f"{len(rs)}.trace", rs)] + common,
                      before, before + reads["boot3"])["last"]


# ---------------------------------------------------------------------------
# Zipf


def zipf(bench, q):
    size, cache, n = q["zipf_base"], q["cache_size"], q["zipf_reads"]
    base = BaseServer(bench, "plain", size=size)
    d = bench.rundir("bounded", "zipf")
    logs = {"warmup": d / "warmup.iolog", "measured": d / "measured.iolog"}
    with ic_daemon(d, base, cache) as qsd:
        cs = qsd.stats()["cluster-size"]
        # From an empty cache until it is full (at most a third of these
        # reads miss once it is, more before), then the measured reads.
        counts = {"warmup": 3 * (cache // cs), "measured": n}
        log(f"bounded zipf ({counts['warmup']} then {n} 4 KiB reads at QD16, Zipf({ZIPF}), "
            f"{size // MiB} MiB base, cache-size {cache // MiB} MiB)")
        stats = [qsd.stats()]
        fios = {}
        for i, phase in enumerate(("warmup", "measured")):
            # The same hot blocks in both phases (fio's Zipf centre fixed:
            # otherwise the seed moves them), different draws.
            argv = nbd_job(qsd.uri, phase, SEED + 10 + i) + [
                "--rw=randread", "--bs=4k", "--iodepth=16", "--norandommap",
                f"--random_distribution=zipf:{ZIPF}:0.5", f"--number_ios={counts[phase]}",
                f"--write_iolog={logs[phase]}"]
            fios[phase] = h.run_fio_argv(argv, d, phase, 3600)
            stats.append(settle(qsd))
        qsd.stop_checked("bounded zipf")
        base.stop()
    res = {"base_size": size, "cache_size": cache, "cluster_size": cs, "alpha": ZIPF,
           "reads": counts, "fio": fios, "used_bytes": stats[-1].get("used-bytes")}
    for phase, st0, st1 in (("measured", stats[1], stats[2]), ("all", stats[0], stats[2])):
        dl = delta(st0, st1)
        res[phase] = dict(shares(dl), delta=dl)
    m = res["measured"]
    log(f"      daemon: hits {100 * m['hit_share']:.2f}% of the measured reads' bytes (with "
        f"joined fetches {100 * m['hit_or_wait_share']:.2f}%; all reads "
        f"{100 * res['all']['hit_share']:.2f}%), {fios['measured']['iops']:.0f} IOPS, "
        f"evicted {m['delta']['evicted-bytes'] / MiB:.0f} MiB, not stored for lack of "
        f"room {m['delta']['no-room-bytes'] / MiB:.0f} MiB")
    if sim_available(bench, "zipf"):
        common = ["--base-size", size, "--cache-size", cache, "--cluster-size", cs]
        reads = {k: iolog_reads(v) for k, v in logs.items()}
        res["sim_trace"] = sim_phases(
            lambda rs: ["--trace", write_trace(d / f"{len(rs)}.trace", rs), "--format",
                        "plain"] + common,
            reads["warmup"], reads["warmup"] + reads["measured"])
        res["sim_zipf"] = sim_phases(
            lambda k: ["--zipf", ZIPF, "--requests", k] + common,
            counts["warmup"], counts["warmup"] + counts["measured"])
        for key, label in (("sim_trace", "on fio's reads"), ("sim_zipf", "its own Zipf  ")):
            log(f"      simulator {label}: measured " + ", ".join(
                f"{p} {100 * res[key]['last'][p]:.2f}%" for p in SIM_POLICIES
                if res[key]["last"].get(p) is not None) + "; all reads " + ", ".join(
                f"{p} {100 * res[key]['all'][p]:.2f}%" for p in SIM_POLICIES))
    for f in logs.values():
        f.unlink(missing_ok=True)
    return res


def sim_phases(args_of, before, everything):
    """The simulator on @everything and on @before, a prefix of it
    (args_of(x) gives its arguments for either): each policy's byte hit
    ratio over all reads ("all") and over the reads after the prefix
    ("last": its hits over both runs less those over the prefix, exact for
    the online policies; None for MIN, whose choices in the prefix depend
    on what follows)."""
    runs = {}
    for tag, x in (("before", before), ("all", everything)):
        runs[tag] = {p["name"]: p["all"] for p in simulate(*args_of(x))["policies"]}
    out = {"all": {}, "last": {}}
    for p, a in runs["all"].items():
        b = runs["before"][p]
        out["all"][p] = a["byte_hit_ratio"]
        nbytes = a["bytes"] - b["bytes"]
        out["last"][p] = ((a["hit_bytes"] - b["hit_bytes"]) / nbytes
                          if nbytes and p != "MIN" else None)
    return out


# ---------------------------------------------------------------------------
# Speed


def warm_speed(bench, q):
    region, cache = q["warm_region"], q["warm_cache"]
    runtime, rounds = bench.args.runtime or q["speed_runtime"], q["rounds"]
    log(f"bounded warm (4 KiB random QD16 over {region // MiB} MiB, cache-size "
        f"{cache // MiB} MiB, base nbd-1ms of {bench.base_size_bytes // (1024 * MiB)} GiB)")
    raw = bench.work / "bounded-raw.img"
    h.make_base_image(raw, region, SEED)
    configs = ["bounded", "raw-local", "ic"]
    res = {"region_bytes": region, "cache_size": cache, "base": "nbd-1ms",
           "rounds": rounds, "runtime_s": runtime, "fill": {}}
    try:
        with contextlib.ExitStack() as stack:
            daemons = {}
            for cfg in configs:
                d = bench.rundir("bounded", "warm", cfg)
                if cfg == "raw-local":
                    qsd = h.StorageDaemon(d, [h.file_node("raw0", raw, read_only=True)],
                                          ["raw0"])
                    stack.callback(qsd.stop)
                    qsd.start()
                    daemons[cfg] = {"qsd": qsd, "dir": d}
                    continue
                base = BaseServer(bench, "nbd-1ms")
                bnode = base.start(d, stack)
                qsd = h.StorageDaemon(d, bounded_nodes(d, bnode, cache if cfg == "bounded"
                                                       else None), ["ic0"])
                stack.callback(qsd.stop)
                qsd.start()
                t = time.monotonic()
                h.run_fio_argv(random_fill_argv(qsd.uri, 0, region, SEED), d, "fill", 600)
                cs = qsd.stats()["cluster-size"]
                st = wait_cached(qsd, region // cs)
                res["fill"][cfg] = {"fill_s": time.monotonic() - t,
                                    "cached_clusters": st["cached-clusters"],
                                    "used_bytes": st.get("used-bytes")}
                daemons[cfg] = {"qsd": qsd, "dir": d, "base": base, "prev": st}

            def one(cfg, rnd):
                dm = daemons[cfg]
                qsd = dm["qsd"]
                cpu0 = h.proc_cpu_s(qsd.pid)
                r = {"fio": h.run_fio_argv(fio_argv(qsd.uri, "rand4k-qd16", runtime, region),
                                           dm["dir"], f"fio-{rnd}", runtime * 4 + 180)}
                r["daemon_cpu_us_per_io"] = ((h.proc_cpu_s(qsd.pid) - cpu0) * 1e6
                                             / max(1, r["fio"]["total_ios"]))
                if cfg != "raw-local":
                    st = qsd.stats()
                    r.update(shares(delta(dm["prev"], st)))
                    dm["prev"] = st
                log(f"      {cfg:<10} {r['fio']['iops']:9.0f} IOPS"
                    + (f"  hits {100 * r['hit_share']:.1f}%" if "hit_share" in r else ""))
                return r
            for cfg, runs in alternate(rounds, configs, one).items():
                res[cfg] = mean_run(runs)
            for cfg, dm in daemons.items():
                dm["qsd"].stop_checked(f"bounded warm {cfg}")
                if "base" in dm:
                    dm["base"].stop()
    finally:
        raw.unlink(missing_ok=True)
        for cfg in configs:
            remove_images(bench.work / "bounded" / "warm" / cfg)
    res["ratio_raw"], res["ratios_raw"] = round_ratio(res, "bounded", "raw-local")
    res["ratio_unbounded"] = res["bounded"]["iops"] / res["ic"]["iops"]
    log(f"      bounded / raw local {res['ratio_raw']:.3f} (median of the rounds; means "
        f"{res['bounded']['iops'] / res['raw-local']['iops']:.3f}), bounded / unbounded "
        f"{res['ratio_unbounded']:.3f} (means)")
    return res


def cold_speed(bench, q):
    cache = q["evict_cache"]
    runtime, rounds = bench.args.runtime or q["speed_runtime"], q["rounds"]
    size = bench.base_size_bytes
    log(f"bounded cold (4 KiB random QD16 over the {size // (1024 * MiB)} GiB nbd-1ms base, "
        f"cache-size {cache // MiB} MiB kept full)")
    configs = ["bounded", "direct", "ic"]
    res = {"cache_size": cache, "base": "nbd-1ms", "base_size": size, "rounds": rounds,
           "runtime_s": runtime, "prepare": {}}
    with contextlib.ExitStack() as stack:
        daemons = {}
        for cfg in configs:
            d = bench.rundir("bounded", "cold", cfg)
            base = BaseServer(bench, "nbd-1ms")
            bnode = base.start(d, stack)
            if cfg == "direct":
                qsd = h.StorageDaemon(d, [bnode], ["base0"])
            else:
                qsd = h.StorageDaemon(d, bounded_nodes(d, bnode, cache if cfg == "bounded"
                                                       else None), ["ic0"])
            stack.callback(qsd.stop)
            qsd.start()
            dm = daemons[cfg] = {"qsd": qsd, "dir": d, "base": base}
            if cfg == "bounded":
                dm["prev"] = fill_to_evict(qsd, d, cache, res["prepare"])
            elif cfg == "ic":
                dm["prev"] = qsd.stats()

        def one(cfg, rnd):
            dm = daemons[cfg]
            qsd = dm["qsd"]
            # A new seed each round: a round must not read again what an
            # earlier one cached.
            argv = fio_argv(qsd.uri, "rand4k-qd16", runtime, None,
                            seed=SEED + 100 + rnd) + ["--randrepeat=0"]
            cpu0 = h.proc_cpu_s(qsd.pid)
            r = {"fio": h.run_fio_argv(argv, dm["dir"], f"fio-{rnd}", runtime * 4 + 180)}
            r["daemon_cpu_us_per_io"] = ((h.proc_cpu_s(qsd.pid) - cpu0) * 1e6
                                         / max(1, r["fio"]["total_ios"]))
            if cfg != "direct":
                # Fetches still being stored count with the next round.
                st = qsd.stats()
                dl = delta(dm["prev"], st)
                r.update(shares(dl), delta=dl)
                dm["prev"] = st
            log(f"      {cfg:<10} {r['fio']['iops']:9.0f} IOPS"
                + (f"  hits {100 * r['hit_share']:.1f}%, evicted "
                   f"{r['delta']['evicted-bytes'] / MiB:.1f} MiB, no room "
                   f"{r['delta']['no-room-bytes'] / MiB:.1f} MiB" if cfg == "bounded" else ""))
            return r
        for cfg, runs in alternate(rounds, configs, one).items():
            res[cfg] = mean_run(runs)
        for cfg, dm in daemons.items():
            if cfg == "bounded":
                res["final_stats"] = dm["qsd"].stats()
            dm["qsd"].stop_checked(f"bounded cold {cfg}")
            dm["base"].stop()
            remove_images(dm["dir"])
    b = res["bounded"]["runs"]
    fetched = sum(r["delta"]["fetched-bytes"] for r in b)
    res["evicted_per_fetched"] = (sum(r["delta"]["evicted-bytes"] for r in b) / fetched
                                  if fetched else 0.0)
    res["no_room_per_fetched"] = (sum(r["delta"]["no-room-bytes"] for r in b) / fetched
                                  if fetched else 0.0)
    res["hit_share"] = sum(r["hit_share"] for r in b) / len(b)
    res["ratio_direct"], res["ratios_direct"] = round_ratio(res, "bounded", "direct")
    res["ratio_unbounded"] = res["bounded"]["iops"] / res["ic"]["iops"]
    log(f"      bounded / direct {res['ratio_direct']:.3f} (median of the rounds; means "
        f"{res['bounded']['iops'] / res['direct']['iops']:.3f}), bounded / unbounded "
        f"{res['ratio_unbounded']:.3f}; evicted {res['evicted_per_fetched']:.2f} and not "
        f"stored for lack of room {res['no_room_per_fetched']:.2f} of the bytes fetched")
    return res


def fill_to_evict(qsd, d, cache, out):
    """Fill the bounded cache, then read until what filled it is gone, so
    that the timed runs find it full of clusters of 4 KiB misses and each
    of their misses makes room: 64 KiB random reads of the first
    cache-size bytes, then as many 4 KiB random misses over the base as
    the cache holds clusters.  Returns the stats after."""
    t = time.monotonic()
    cs = qsd.stats()["cluster-size"]
    h.run_fio_argv(random_fill_argv(qsd.uri, 0, cache, SEED + 50), d, "fill", 600)
    wait_cached(qsd, cache // cs * 9 // 10)
    argv = nbd_job(qsd.uri, "evict", SEED + 51) + [
        "--rw=randread", "--bs=4k", "--iodepth=16", "--norandommap",
        f"--number_ios={cache // cs}"]
    h.run_fio_argv(argv, d, "evict", 600)
    st = settle(qsd)
    out.update(seconds=time.monotonic() - t, used_bytes=st.get("used-bytes"),
               evicted_bytes=st["evicted-bytes"], cluster_size=cs)
    return st


# ---------------------------------------------------------------------------
# Memory


def memory(bench, q):
    size, cache = q["mem_base"], q["mem_cache"]
    log(f"bounded memory ({size // (1024 ** 4)} TiB base, {MEM_CLUSTER // KiB} KiB "
        f"clusters, cache-size {cache // (1024 ** 3)} GiB and none)")
    res = {"base_size": size, "cache_size": cache, "cluster_size": MEM_CLUSTER,
           "capacity_clusters": cache // MEM_CLUSTER,
           "base_clusters": size // MEM_CLUSTER}
    for name, cs in (("unbounded", None), ("bounded", cache)):
        res[name] = memory_one(bench, name, size, cs)
    per = res["capacity_clusters"]
    for key in ("rss", "anon", "data", "heap"):
        diff = res["bounded"][f"{key}_kib"] - res["unbounded"][f"{key}_kib"]
        res[f"{key}_diff_kib"] = diff
        res[f"{key}_per_cluster"] = diff * 1024 / per
    # What the policy allocates (docs/design.rst, Eviction, Memory): 4
    # bits per base cluster, and rings of 32-bit indices: small and main
    # with room for the capacity each, the ghosts for main's share (90%).
    res["expected_bytes"] = (res["base_clusters"] // 2
                             + 4 * (2 * per + per - per // 10))
    res["expected_per_cluster"] = res["expected_bytes"] / per
    log(f"      difference: resident {res['rss_diff_kib']} KiB "
        f"({res['rss_per_cluster']:.1f} B per cached cluster), allocated "
        f"{res['heap_diff_kib']} KiB ({res['heap_per_cluster']:.1f} B per cached cluster; "
        f"the policy's computed {res['expected_per_cluster']:.1f}; VmData "
        f"{res['data_per_cluster']:.1f})")
    return res


def heap_kib(pid):
    """KiB of the process's private anonymous writable mappings, stacks
    left out: where malloc's memory lives, brk heap and mmap'd blocks.
    A stack (a thread's, or one of QEMU's coroutines', allocated as the
    pool grows) is the mapping right above its PROT_NONE guard page; those
    come and go with threads and concurrency, whole MiBs at a time, and
    are not the node's memory."""
    maps = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        f = line.split()
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        maps.append((lo, hi, f[1], f[4], f[5] if len(f) > 5 else ""))
    guards = {hi for lo, hi, perms, _, _ in maps if perms == "---p"}
    return sum(hi - lo for lo, hi, perms, inode, path in maps
               if perms == "rw-p" and inode == "0" and path in ("", "[heap]")
               and lo not in guards) // 1024


def memory_one(bench, name, size, cache_size):
    """A daemon over the base alone, read through (so that serving reads
    is in the baseline), then the cache nodes and intellicache node
    added by QMP: the growth of its resident and allocated memory.

    The cache file node sits under a raw node: cache-size is refused on a
    file node whose file system has less room than the bound (100 GiB),
    and nothing but the cache's metadata is written here."""
    d = bench.rundir("bounded", "memory", name)
    fields = {"rss": "VmRSS:", "anon": "RssAnon:", "data": "VmData:"}

    def figures():
        out = {k: h.proc_status_kib(qsd.pid, f) for k, f in fields.items()}
        out["heap"] = heap_kib(qsd.pid)
        return out
    with contextlib.ExitStack() as stack:
        base = BaseServer(bench, "plain", size=size)
        bnode = base.start(d, stack)
        qsd = h.StorageDaemon(d, [bnode], ["base0"])
        stack.callback(qsd.stop)
        qsd.start()
        argv = nbd_job(qsd.uri_for("base0"), "mem") + [
            "--rw=randread", "--bs=4k", "--iodepth=1", "--norandommap",
            f"--number_ios={bench.p['mem_reads']}"]
        h.run_fio_argv(argv, d, "fio-base", 300)
        time.sleep(0.5)
        before = figures()
        cache = h.create_cache_file(d / "cache.img")
        qsd.qmp.cmd("blockdev-add", **dict(h.file_node("cachef", cache), discard="unmap"))
        qsd.qmp.cmd("blockdev-add", driver="raw", file="cachef", discard="unmap",
                    **{"node-name": "cache0"})
        ic = h.intellicache_node("ic0", "base0", "cache0", **{"cluster-size": MEM_CLUSTER})
        if cache_size:
            ic["cache-size"] = cache_size
        qsd.qmp.cmd("blockdev-add", **ic)
        time.sleep(1)
        after = figures()
        st = qsd.stats("ic0")
        if cache_size and st.get("cache-size") != cache_size:
            raise h.HarnessError(f"bounded memory: cache-size {st.get('cache-size')}, "
                                 f"asked for {cache_size}")
        qsd.stop_checked(f"bounded memory {name}")
        base.stop()
        remove_images(d)
    out = {f"{k}_kib": after[k] - before[k] for k in before}
    out.update({f"{k}_before_kib": v for k, v in before.items()})
    return out
