"""Warm-up: the prefetch job (intellicache-prefetch) and boot profiles, over
nbdkit with 1 ms per read.

- rate: the job fetching the whole base (prefetch_size) unthrottled,
  against fio reading the base directly (the direct configuration), 1 MiB
  sequential reads, 16 in flight;
- speed: the job with @speed set to half the unthrottled rate: its rate;
- miss latency: the median of 4 KiB random reads at QD1 that miss (the
  last eighth of a base 4x larger), without and with the job fetching the
  base unthrottled (in offset order: it reaches the last eighth last),
  for 60% of the time the job needs for the rest;
- profile: record a profile on the boot mix (a fixed amount of work, fixed
  seed) on an empty cache, replay it on an empty cache of another daemon,
  then run the same boot mix: the share of its bytes that hit, and the
  bytes the base served during the boot against the boot's unique bytes.
"""

import contextlib
import json
import time

import intellicache_harness as h
from intellicache_harness import MiB

from .common import SEED, BaseServer, fio_argv, log, remove_images

JOB = "warm0"


def run(bench):
    region = bench.p["boot_region"]
    base = BaseServer(bench, "nbd-1ms", size=max(bench.p["prefetch_size"], region))
    size = base.size
    log(f"warmup (prefetch job and boot profiles, {size // MiB} MiB base, nbd-1ms)")
    res = {"base": base.name, "size": size}
    res["direct"] = direct_rate(bench, base, size)
    log(f"      direct QD16 1 MiB reads  {res['direct']['mib_s']:8.1f} MiB/s")
    res["job"] = job_rate(bench, base, "job", size)
    log(f"      prefetch job             {res['job']['mib_s']:8.1f} MiB/s")
    res["rate_ratio"] = res["job"]["mib_s"] / res["direct"]["mib_s"]
    speed = int(res["job"]["mib_s"] * MiB / 2)
    res["speed_set"] = speed
    res["job_speed"] = job_rate(bench, base, "speed", size, speed=speed)
    res["speed_error"] = abs(res["job_speed"]["mib_s"] * MiB - speed) / speed
    log(f"      speed {speed / MiB:.1f} MiB/s         {res['job_speed']['mib_s']:8.1f} MiB/s")
    res["latency"] = miss_latency(bench, size, res["job"]["mib_s"])
    log(f"      miss median QD1  alone {res['latency']['alone_us']:.0f} us, "
        f"with the job {res['latency']['with_job_us']:.0f} us")
    # The same with the job at a quarter of its unthrottled rate.
    slow = int(res["job"]["mib_s"] * MiB / 4)
    res["latency_speed"] = miss_latency(bench, size, res["job"]["mib_s"], speed=slow)
    log(f"      same, job at {slow / MiB:.0f} MiB/s: alone "
        f"{res['latency_speed']['alone_us']:.0f} us, with the job "
        f"{res['latency_speed']['with_job_us']:.0f} us")
    res["profile"] = profile_replay(bench, base, region)
    p = res["profile"]
    log(f"      boot after replay: hits {100 * p['hit_share']:.1f}%, base served "
        f"{100 * p['base_share']:.1f}% of the unique bytes")
    bench.results["warmup"] = res


def ic_nodes(d, bnode):
    cache = h.create_cache_file(d / "cache.img")
    return [bnode, h.file_node("cache0", cache), h.intellicache_node("ic0", "base0", "cache0")]


@contextlib.contextmanager
def ic_daemon(bench, base, d, tag="qsd"):
    with contextlib.ExitStack() as stack:
        bnode = base.start(d, stack)
        qsd = h.StorageDaemon(d, ic_nodes(d, bnode), ["ic0"], tag=tag)
        stack.callback(qsd.stop)
        qsd.start()
        try:
            yield qsd
        finally:
            remove_images(d)


def wait_job(qsd, timeout=600):
    """Wait until the (auto-dismissed) job is gone; the last query's job."""
    last = {"job": None}

    def gone():
        jobs = [j for j in qsd.qmp.cmd("query-jobs") if j["id"] == JOB]
        if jobs:
            last["job"] = jobs[0]
            if jobs[0].get("error"):
                raise h.HarnessError(f"prefetch job failed: {jobs[0]['error']}")
        return not jobs
    h.wait_until(gone, timeout, "the prefetch job", interval=0.01)
    return last["job"]


def prefetch(qsd, **args):
    qsd.qmp.cmd("intellicache-prefetch", **{"job-id": JOB, "node-name": "ic0"},
                **{k.replace("_", "-"): v for k, v in args.items()})


def direct_rate(bench, base, size):
    d = bench.rundir("warmup", "direct")
    with contextlib.ExitStack() as stack:
        qsd, exports = bench.start_config(d, base, "direct", stack)
        argv = ["--ioengine=nbd", f"--uri={qsd.uri_for(exports[0])}", f"--size={size}",
                "--name=direct", "--rw=read", "--bs=1M", "--iodepth=16"]
        fio = h.run_fio_argv(argv, d, "fio", 600)
        qsd.stop_checked("warmup direct")
        base.stop()
    return {"mib_s": fio["mib_s"], "fio": fio}


def job_rate(bench, base, name, size, speed=None):
    d = bench.rundir("warmup", name)
    with ic_daemon(bench, base, d) as qsd:
        t = time.monotonic()
        prefetch(qsd, **({"speed": speed} if speed else {}))
        wait_job(qsd)
        elapsed = time.monotonic() - t
        st = qsd.stats()
        if st["cached-clusters"] != st["cluster-count"]:
            raise h.HarnessError(f"warmup {name}: {st['cached-clusters']} of "
                                 f"{st['cluster-count']} clusters cached")
        qsd.stop_checked(f"warmup {name}")
        base.stop()
    return {"mib_s": size / MiB / elapsed, "elapsed_s": elapsed, "stats": st}


def fio_median_us(d, tag):
    text = (d / f"{tag}.json").read_text()
    job = json.loads(text[text.index("{"):])["jobs"][0]
    return job["read"]["clat_ns"]["percentile"]["50.000000"] / 1000


def miss_latency(bench, size, rate, speed=None):
    """Guest misses in the last eighth of a base 4x larger than @size,
    while the job (no profile: in offset order; at @speed, or unthrottled)
    fetches the rest, measured for 60% of the time it needs for that at
    @rate (MiB/s)."""
    base = BaseServer(bench, "nbd-1ms", size=4 * size)
    size = base.size
    tail = size // 8
    if speed:
        rate = speed / MiB
    runtime = max(0.2, 0.6 * (size - tail) / (rate * MiB))
    out = {"runtime_s": runtime, "base_size": size, "tail_bytes": tail, "speed": speed}
    d = bench.rundir("warmup", "latency" + (f"-{speed}" if speed else ""))
    for name, with_job in (("alone", False), ("with_job", True)):
        with ic_daemon(bench, base, bench.rundir(d, name), tag=name) as qsd:
            if with_job:
                prefetch(qsd, **({"speed": speed} if speed else {}))
            argv = ["--ioengine=nbd", f"--uri={qsd.uri}", f"--offset={size - tail}",
                    f"--size={tail}", f"--randseed={SEED}", f"--name={name}",
                    "--rw=randread", "--bs=4k", "--iodepth=1", "--norandommap",
                    f"--runtime={int(runtime * 1000)}ms", "--time_based"]
            fio = h.run_fio_argv(argv, d, name, 600)
            if with_job:
                job = [j for j in qsd.qmp.cmd("query-jobs") if j["id"] == JOB]
                out["job_outlived_reads"] = bool(job)
                if job:
                    out["job_progress_at_end"] = (job[0]["current-progress"]
                                                  / job[0]["total-progress"])
                    qsd.qmp.cmd("job-cancel", id=JOB)
                wait_job(qsd)
            out[f"{name}_us"] = fio_median_us(d, name)
            out[f"{name}_fio"] = fio
            qsd.stop_checked(f"warmup latency {name}")
            base.stop()
    out["ratio"] = out["with_job_us"] / out["alone_us"]
    return out


def boot_argv(uri, region, amount):
    return fio_argv(uri, "boot", 0, region, seed=SEED, fixed=amount)


def profile_replay(bench, base, region):
    d = bench.rundir("warmup", "profile")
    prof = d / "boot.profile"
    amount = region // 2
    with ic_daemon(bench, base, bench.rundir("warmup", "profile", "rec"),
                   tag="rec") as qsd:
        qsd.qmp.cmd("intellicache-profile-start", **{"node-name": "ic0",
                                                      "filename": str(prof)})
        h.run_fio_argv(boot_argv(qsd.uri, region, amount), d, "boot-rec", 600)
        qsd.qmp.cmd("intellicache-profile-stop", **{"node-name": "ic0"})
        qsd.stop_checked("warmup profile record")
        base.stop()
    data = prof.read_bytes()
    cluster_size = int.from_bytes(data[12:16], "little")
    entries = int.from_bytes(data[56:64], "little")
    unique = entries * cluster_size
    with ic_daemon(bench, base, bench.rundir("warmup", "profile", "replay"),
                   tag="replay") as qsd:
        prefetch(qsd, profile=str(prof))
        wait_job(qsd)
        st0 = qsd.stats()
        h.run_fio_argv(boot_argv(qsd.uri, region, amount), d, "boot", 600)
        st1 = qsd.stats()
        qsd.stop_checked("warmup profile boot")
        base.stop()

    def delta(k):
        return st1[k] - st0[k]
    read = delta("hit-bytes") + delta("miss-bytes") + delta("wait-bytes")
    return {"entries": entries, "unique_bytes": unique,
            "hit_share": delta("hit-bytes") / read if read else 0.0,
            "base_bytes": delta("fetched-bytes"),
            "base_share": delta("fetched-bytes") / unique if unique else 0.0,
            "stats_before": st0, "stats_after": st1}

