"""Targets: each a ratio or figure from the results with a limit.  They are
evaluated from the results alone, so --report-from can evaluate them again
on an old results file."""

from intellicache_harness import KiB, MiB

from .common import CLUSTER, MIN_COLD_SHARE, WORKLOADS, round_ratio


def evaluate_targets(res):
    targets = []

    def add(name, measured, op, limit, detail, valid=True, note=""):
        ok = (measured >= limit if op == ">=" else measured <= limit) if valid else None
        targets.append({"name": name, "measured": measured, "op": op, "target": limit,
                        "pass": ok, "detail": detail, "note": note})

    def iops(part, *keys):
        r = part
        for k in keys:
            r = r.get(k) if isinstance(r, dict) else None
            if r is None:
                return None
        return r["fio"]["iops"]

    def cold_ok(base, wl, cfg):
        r = res["cold"].get(base, {}).get(wl, {}).get(cfg, {})
        return r.get("cold_share", 1.0) >= MIN_COLD_SHARE

    def vs_direct(base, wl, what, limit):
        """A cold target against the base read directly: the median of
        the rounds' ratios where there were rounds (scripts/bench/cold.py),
        else the one run's."""
        ic, direct = (iops(cold, base, wl, c) for c in ("ic", "direct"))
        if not (ic and direct):
            return
        rounds = cold[base][wl].get("rounds")
        name = f"cold {what}, {base}: intellicache / base direct"
        note = "" if cold_ok(base, wl, "ic") else "run not cold"
        if rounds:
            n = len(rounds["ratios_direct"])
            add(name, rounds["ratio_direct"], ">=", limit,
                f"median of {n} rounds' ratios ("
                + ", ".join(f"{x:.3f}" for x in rounds["ratios_direct"]) + "); means "
                f"{sum(rounds['ic_iops']) / n:.0f} vs {sum(rounds['direct_iops']) / n:.0f} IOPS",
                note=note)
        else:
            add(name, ic / direct, ">=", limit, f"{ic:.0f} vs {direct:.0f} IOPS", note=note)

    cold = res["cold"]
    for base in ("nbd-1ms", "nbd-5ms"):
        ic, direct, cor = (iops(cold, base, "rand4k-qd16", c) for c in ("ic", "direct",
                                                                        "qcow2-cor"))
        vs_direct(base, "rand4k-qd16", "4 KiB random QD16", 0.95)
        if ic and cor:
            # Every read of this workload misses and costs one base read
            # with at most 16 in flight, so the base read directly bounds
            # any cache: the target is out of reach when it is below 2x.
            bound = direct / cor if direct else None
            add(f"cold 4 KiB random QD16, {base}: intellicache / qcow2+copy-on-read",
                ic / cor, ">=", 2.0, f"{ic:.0f} vs {cor:.0f} IOPS",
                note=(f"out of reach on this base: the base read directly is {bound:.2f}x "
                      "copy-on-read, and each cold read is one base read"
                      if bound and bound < 2.0 else ""))
    # Fast bases: a miss costs the node about what storing it does, so
    # the cache must not slow cold reads down (docs/design.rst, Deferred
    # stores).
    for base in ("nfs", "nbd-rate"):
        vs_direct(base, "rand4k-qd16", "4 KiB random QD16", 0.9)
    for base in cold:
        for wl in ("seq1m-qd4", "seq1m-qd1"):
            vs_direct(base, wl, f"1 MiB sequential ({wl.split('-')[1].upper()})", 0.95)
    ic, mi1 = iops(cold, "nbd-5ms", "rand4k-qd16", "ic"), iops(cold, "nbd-5ms", "rand4k-qd16",
                                                                "ic-mi1")
    if ic and mi1:
        add("cold 4 KiB random QD16, nbd-5ms: defaults / max-inflight=1", ic / mi1, ">=", 10.0,
            f"{ic:.0f} vs {mi1:.0f} IOPS")
    warm = res["warm"].get("workloads", {})
    # Warm reads at 0.95x the raw local file, as the bounded part's warm
    # target (it was 0.9 before the bounded cache raised it).  With
    # rounds, the median of the rounds' ratios: one run's dip (a burst of
    # other work on the machine) skews its round, not the figure.
    for wl in ("rand4k-qd16", "seq1m-qd4"):
        ic, raw = iops(warm, wl, "ic"), iops(warm, wl, "raw-local")
        if not (ic and raw):
            continue
        name = f"warm {WORKLOADS[wl]}: intellicache / raw local file"
        rr = {c: warm[wl][c].get("rounds") for c in ("ic", "raw-local")}
        if all(rr.values()):
            median, ratios = round_ratio({c: {"runs": r} for c, r in rr.items()},
                                         "ic", "raw-local")
            add(name, median, ">=", 0.95,
                f"median of {len(ratios)} rounds' ratios ("
                + ", ".join(f"{x:.3f}" for x in ratios) + f"); means {ic:.0f} vs {raw:.0f} IOPS")
        else:
            add(name, ic / raw, ">=", 0.95, f"{ic:.0f} vs {raw:.0f} IOPS")
    storm = res["bootstorm"].get("runs", {})
    if storm:
        nmax = max(storm, key=int)
        r = storm[nmax].get("ic")
        if r:
            cs = res["bootstorm"].get("cluster_size", CLUSTER)
            add(f"boot storm N={nmax}: bytes read from the base / unique data read "
                f"(in the cache's {cs // KiB} KiB clusters)", r["base_per_unique_clusters"],
                "<=", 1.05,
                f"{r['base_read_bytes'] / MiB:.1f} MiB from the base, unique data "
                f"{res['bootstorm']['unique_cluster_bytes'] / MiB:.1f} MiB in clusters, "
                f"{res['bootstorm']['unique_bytes'] / MiB:.1f} MiB exact "
                f"({r['base_per_unique']:.2f}x exact)")
    mem = res.get("memory")
    if mem:
        add("memory: resident overhead over a 1 TiB base (64 KiB clusters), node opened, MiB",
            mem["overhead_mib_per_tib"], "<=", 4.0,
            f"{mem['overhead_kib']} KiB more than the base node alone")
        add(f"memory: same, after {mem['reads']} random 4 KiB reads (QD1), MiB",
            mem["overhead_after_reads_mib_per_tib"], "<=", 4.0,
            f"{mem['overhead_after_reads_kib']} KiB more than the base node alone after the "
            f"same reads (over a 1 GiB base: {mem['small_base']['overhead_after_reads_kib']} KiB)")
    cpu = res.get("cpu")
    if cpu:
        add("CPU: instructions per warm 4 KiB read, intellicache / file node", cpu["ratio"],
            "<=", 1.3, f"{cpu['ic']['per_read']:.0f} vs {cpu['file']['per_read']:.0f}")
        if "bounded_ratio" in cpu:
            add("CPU: instructions per warm 4 KiB read, bounded intellicache / file node",
                cpu["bounded_ratio"], "<=", 1.15,
                f"{cpu['ic-bounded']['per_read']:.0f} vs {cpu['file']['per_read']:.0f}")
        if "histogram_overhead" in cpu:
            add("CPU: latency histograms, more instructions per warm 4 KiB hit, %",
                100 * cpu["histogram_overhead"], "<=", 3.0,
                f"{cpu['histogram_per_read']:.0f} of {cpu['ic']['per_read']:.0f} per read "
                "(ic_latency_record() and the read path's clock reads, callgrind)")
    w = res.get("warmup")
    if w:
        add(f"prefetch job, {w['size'] // MiB} MiB base, nbd-1ms: rate / base read directly "
            "(1 MiB, QD16)", w["rate_ratio"], ">=", 0.9,
            f"{w['job']['mib_s']:.1f} vs {w['direct']['mib_s']:.1f} MiB/s")
        add("prefetch job with speed set: error of its rate", w["speed_error"], "<=", 0.1,
            f"{w['job_speed']['mib_s']:.1f} MiB/s for {w['speed_set'] / MiB:.1f} MiB/s")
        lat = w["latency"]
        add("guest 4 KiB miss latency (median, QD1) with the prefetch job (unthrottled) / "
            "without",
            lat["ratio"], "<=", 1.3,
            f"{lat['with_job_us']:.0f} vs {lat['alone_us']:.0f} us",
            valid=bool(lat.get("job_outlived_reads")),
            note="" if lat.get("job_outlived_reads") else
            "not evaluated: the job ended before the reads did")
        ls = w.get("latency_speed")
        if ls:
            add(f"same, the job at speed {ls['speed'] / MiB:.0f} MiB/s (a quarter of its "
                "unthrottled rate)", ls["ratio"], "<=", 1.3,
                f"{ls['with_job_us']:.0f} vs {ls['alone_us']:.0f} us",
                valid=bool(ls.get("job_outlived_reads")),
                note="" if ls.get("job_outlived_reads") else
                "not evaluated: the job ended before the reads did")
        p = w["profile"]
        add("boot mix after a profile replay: share of its bytes that hit", p["hit_share"],
            ">=", 0.95, f"{p['entries']} clusters in the profile")
        add("boot mix after a profile replay: bytes the base served / unique bytes",
            p["base_share"], "<=", 0.05,
            f"{p['base_bytes'] / MiB:.2f} MiB of {p['unique_bytes'] / MiB:.2f} MiB")
    bounded_targets(res.get("bounded") or {}, add)
    return targets


def size_text(n):
    for unit, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB")):
        if n >= unit:
            return f"{n / unit:g} {name}"
    return f"{n / KiB:g} KiB"


def bounded_targets(b, add):
    """The bounded cache's targets (scripts/bench/bounded.py)."""
    sc = b.get("scan")
    for run, label in (("default", "default scan-threshold"),
                       ("threshold-0", "scan-threshold=0 (the eviction policy alone)")):
        r = (sc or {}).get("runs", {}).get(run)
        if not r:
            continue
        sim = sc.get("sim_trace")
        add(f"bounded cache, {label}: boot set of {size_text(sc['boot_size'])} read twice, "
            f"the {size_text(sc['base_size'])} base read sequentially, the boot set again "
            f"through cache-size {size_text(sc['cache_size'])}: share of its bytes that hit",
            r["passes"]["boot3"]["hit_share"], ">=", 0.9,
            f"{r['passes']['scan']['delta']['evicted-bytes'] / MiB:.0f} MiB evicted, "
            f"{r['passes']['scan']['delta']['scan-bytes'] / MiB:.0f} MiB passed through as "
            "a scan during the sequential read"
            + (f"; simulator on the same reads: S3-FIFO {100 * sim['S3-FIFO']:.0f}%, "
               f"LRU {100 * sim['LRU']:.0f}%" if sim else ""))
    w = b.get("warm")
    if w and "ratio_raw" in w:
        add(f"bounded cache, warm 4 KiB random QD16 over {size_text(w['region_bytes'])} "
            f"(cache-size {size_text(w['cache_size'])}): intellicache / raw local file",
            w["ratio_raw"], ">=", 0.95,
            f"median of {len(w['ratios_raw'])} rounds' ratios; means {w['bounded']['iops']:.0f} "
            f"vs {w['raw-local']['iops']:.0f} IOPS (unbounded intellicache "
            f"{w['ic']['iops']:.0f})")
    c = b.get("cold")
    if c and "ratio_direct" in c:
        add(f"bounded cache kept full (cache-size {size_text(c['cache_size'])}), cold 4 KiB "
            f"random QD16, {c['base']}: intellicache / base direct", c["ratio_direct"], ">=",
            0.95, f"median of {len(c['ratios_direct'])} rounds' ratios; means "
            f"{c['bounded']['iops']:.0f} vs {c['direct']['iops']:.0f} IOPS (unbounded "
            f"intellicache {c['ic']['iops']:.0f}); of the bytes fetched, "
            f"{100 * c['evicted_per_fetched']:.0f}% evicted, "
            f"{100 * c['no_room_per_fetched']:.0f}% not stored for lack of room",
            note="eviction kept up with less than half of the misses: most were passed "
                 "through unstored" if c["no_room_per_fetched"] > 0.5 else "")
    m = b.get("memory")
    if m and "heap_per_cluster" in m:
        add(f"bounded cache: memory that cache-size adds, per cluster of cache-size "
            f"({size_text(m['base_size'])} base, cache-size {size_text(m['cache_size'])}, "
            f"{m['cluster_size'] // KiB} KiB clusters), bytes, allocated",
            m["heap_per_cluster"], "<=", 24.0,
            f"{m['heap_diff_kib']} KiB more allocated than without cache-size; resident just "
            f"after open {m['rss_per_cluster']:.1f} bytes per cluster (the rings are "
            f"written as the cache fills); the eviction policy's own share, computed: "
            f"{m['expected_per_cluster']:.1f}")
