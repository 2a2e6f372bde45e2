"""CPU: instructions per warm 4 KiB read (callgrind, through qemu-io),
intellicache vs the plain file node it reads hits from."""

import contextlib
import random
import shutil
import subprocess
from pathlib import Path

import intellicache_harness as h

from .common import SEED, fill_argv, log, wait_stores_done


def run(bench):
    if not shutil.which("valgrind"):
        bench.results["skipped"].append("cpu: valgrind not installed")
        log("cpu: skipped, valgrind not installed")
        return
    log("cpu (callgrind)")
    d = bench.rundir("cpu")
    region = bench.p["cpu_region"]
    n = bench.p["cpu_reads"]
    base = d / "base.raw"
    h.make_base_image(base, region, SEED)
    local = d / "local.raw"
    shutil.copyfile(base, local)
    cache = h.create_cache_file(d / "cache.img")
    # The cache file as the tests and the rest of the benchmark open it,
    # and the file node the same way.
    aio = h.CACHE_DIRECT["aio"]
    opts = {
        "ic": ("driver=intellicache,file.driver=file,file.filename=%s,"
               "cache-file.driver=file,cache-file.filename=%s,"
               "cache-file.cache.direct=on,cache-file.aio=%s" % (base, cache, aio)),
        "file": "driver=file,filename=%s,cache.direct=on,aio=%s" % (local, aio),
    }
    # Bounded: the same cache under a cache-size that holds the region, so
    # every read hits, with the pins and the policy's touches in the path.
    opts["ic-bounded"] = (opts["ic"] + ",cache-file.discard=unmap,cache-size=%d"
                          % (2 * region))
    state = warm_cache(d, base, cache, region)
    rng = random.Random(SEED)
    offsets = [rng.randrange(region // 4096) * 4096 for _ in range(n)]
    script = "".join(f"read -q {o} 4k\n" for o in offsets)
    res = {"reads": n, "region_bytes": region, "cached_clusters": state["cached-clusters"],
           "cluster_count": region // state["cluster-size"]}
    qemu_io = str(h.qemu_binary("qemu-io"))
    hist = {}
    for name, o in opts.items():
        totals = {}
        for k, text in (("0", ""), (str(n), script)):
            out = d / f"cg-{name}-{k}.out"
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            qemu_io, "-r", "--image-opts", o], input=text.encode(),
                           env=h.qemu_env(), check=True, timeout=900,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            totals[k] = callgrind_total(out)
            if name == "ic":
                hist[k] = histogram_cost(out)
        res[name] = {"instructions_0": totals["0"], "instructions_n": totals[str(n)],
                     "per_read": (totals[str(n)] - totals["0"]) / n}
    res["ratio"] = res["ic"]["per_read"] / res["file"]["per_read"]
    res["bounded_ratio"] = res["ic-bounded"]["per_read"] / res["file"]["per_read"]
    # The latency histograms' share of a warm hit: their instructions per
    # read against the rest of the read's (what the read would cost
    # without them).
    per_read_hist = (hist[str(n)] - hist["0"]) / n
    res["histogram_per_read"] = per_read_hist
    res["histogram_overhead"] = per_read_hist / (res["ic"]["per_read"] - per_read_hist)
    bench.results["cpu"] = res
    log(f"      per warm 4 KiB read: intellicache {res['ic']['per_read']:.0f}, "
        f"bounded {res['ic-bounded']['per_read']:.0f}, "
        f"file {res['file']['per_read']:.0f} instructions ({res['ratio']:.2f}x, "
        f"bounded {res['bounded_ratio']:.2f}x)")
    log(f"      latency histograms: {per_read_hist:.0f} instructions per read, "
        f"{100 * res['histogram_overhead']:.2f}% more than without them")


def warm_cache(d, base, cache, region):
    """Fill @cache from @base through a daemon with the same nodes as the
    qemu-io runs: read everything once, wait until every cluster is stored
    and durable, stop cleanly.  Returns the node's state before the stop."""
    nodes = [h.file_node("base0", base, read_only=True, direct=False),
             h.file_node("cache0", cache),
             h.intellicache_node("ic0", "base0", "cache0")]
    with contextlib.ExitStack() as stack:
        qsd = h.StorageDaemon(d, nodes, ["ic0"], tag="cpu-fill")
        stack.callback(qsd.stop)
        qsd.start()
        h.run_fio_argv(fill_argv(qsd.uri, region), d, "fill", 300)
        st = wait_stores_done(qsd, "ic0", durable=True, timeout=120)
        qsd.stop_checked("cpu: filling the cache")
    return st


def callgrind_total(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise h.HarnessError(f"no totals in {path}")


# Callgrind's names for the clock read that get_clock() makes (inline in
# the glue): the libc entry point, whatever its versioned name.
CLOCK_READ = "clock_gettime"
# The functions that time a read for the histograms.
TIMED_READ = "ic_co_preadv_part"
RECORD = "ic_latency_record"


def histogram_cost(path):
    """Instructions spent on the latency histograms in a callgrind profile:
    the inclusive cost of every call of ic_latency_record(), and of the
    clock reads the read path makes (ic_co_preadv_part() reads the clock
    for the histograms only).  Parses callgrind's format: after a
    "calls=" line, the next cost line is the inclusive cost of those calls;
    names are compressed as "(id) name" on first use, "(id)" after."""
    names = {}
    fn = cfn = None
    pending_call = False
    cost = 0

    def name_of(value):
        value = value.strip()
        if value.startswith("("):
            ident, _, rest = value.partition(")")
            rest = rest.strip()
            if rest:
                names[ident] = rest
            return names.get(ident, rest)
        return value

    for line in Path(path).read_text().splitlines():
        if line.startswith("fn="):
            fn = name_of(line[3:])
        elif line.startswith("cfn="):
            cfn = name_of(line[4:])
        elif line.startswith("calls="):
            pending_call = True
        elif pending_call and line[:1] in "0123456789+-*":
            pending_call = False
            inclusive = int(line.split()[-1])
            if cfn == RECORD or (fn == TIMED_READ and CLOCK_READ in (cfn or "")):
                cost += inclusive
    return cost
