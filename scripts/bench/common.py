"""What the benchmark parts share: modes, workloads, bases, the node
configurations compared, fio arguments, and the Bench context (parameters,
work directory, results) each part gets."""

import time
from pathlib import Path

import intellicache_harness as h
from intellicache_harness import GiB, KiB, MiB, TiB

CLUSTER = 64 * KiB          # intellicache's and qcow2's default cluster size

# A run counts as cold if at least this share of the bytes read came from
# the base during the run (new fetches, joined fetches, or read-ahead of
# this run) rather than from data cached before it.
MIN_COLD_SHARE = 0.9

CONFIGS = {
    "direct": "base read directly (no cache)",
    "ic-mi1": "intellicache, max-inflight=1",
    "ic": "intellicache, defaults",
    "qcow2-cor": "qcow2 overlay + copy-on-read",
    "raw-local": "raw local file",
    "ic-localbase": "intellicache over a local file base (warm only, for comparison)",
}

# Parameters per mode.  runtime: seconds per fio run; region sizes in bytes.
# cold_rounds: rounds of the base read directly and intellicache, in
# alternating order, for the cold workloads with a target against the base
# read directly (the first round is the cold part's own runs).
# bounded: the parameters of the bounded part (scripts/bench/bounded.py):
# bases, cache-size, the boot set, the measured Zipf reads, warm and cold
# regions and caches, rounds and seconds per run of the speed comparisons.
MODES = {
    "smoke": dict(
        runtime=1, warm_runtime=1, warm_rounds=1, cold_rounds=2, base_size="64G",
        nfs_size=4 * GiB,
        warm_region=32 * MiB, boot_region=16 * MiB,
        bases=["nbd-1ms"],
        cold_workloads={"nbd-1ms": ["rand4k-qd16", "seq1m-qd4", "boot"]},
        warm_workloads=["rand4k-qd16", "seq1m-qd4", "boot"],
        storm_n=[1, 2],
        mem_reads=1000, cpu_reads=50, cpu_region=16 * MiB,
        miss_reads=2000, miss_rounds=1,
        prefetch_size=64 * MiB,
        bounded=dict(scan_base=256 * MiB, cache_size=32 * MiB, boot_size=16 * MiB,
                     zipf_base=256 * MiB, zipf_reads=10000, warm_region=16 * MiB,
                     warm_cache=32 * MiB, evict_cache=8 * MiB, rounds=1, speed_runtime=1,
                     mem_base=TiB, mem_cache=100 * GiB)),
    "quick": dict(
        runtime=1.5, warm_runtime=1, warm_rounds=3, cold_rounds=3, base_size="64G",
        nfs_size=64 * GiB,
        warm_region=256 * MiB, boot_region=128 * MiB,
        bases=["nfs", "nbd-1ms", "nbd-5ms", "nbd-rate"],
        cold_workloads={"nfs": ["rand4k-qd16", "seq1m-qd4"],
                        "nbd-1ms": ["rand4k-qd16", "seq1m-qd4", "boot"],
                        "nbd-5ms": ["rand4k-qd16", "seq1m-qd4"],
                        "nbd-rate": ["rand4k-qd16", "seq1m-qd4"]},
        warm_workloads=["rand4k-qd16", "seq1m-qd4", "boot"],
        storm_n=[1, 4, 8],
        mem_reads=2000, cpu_reads=500, cpu_region=64 * MiB,
        miss_reads=20000, miss_rounds=2,
        prefetch_size=256 * MiB,
        bounded=dict(scan_base=4 * GiB, cache_size=512 * MiB, boot_size=256 * MiB,
                     zipf_base=4 * GiB, zipf_reads=300000, warm_region=256 * MiB,
                     warm_cache=512 * MiB, evict_cache=64 * MiB, rounds=4, speed_runtime=2,
                     mem_base=TiB, mem_cache=100 * GiB)),
    "full": dict(
        runtime=6, warm_runtime=5, warm_rounds=3, cold_rounds=3, base_size="64G",
        nfs_size=64 * GiB,
        warm_region=1 * GiB, boot_region=1 * GiB,
        bases=["nfs", "nbd-1ms", "nbd-5ms", "nbd-rate"],
        cold_workloads=None,     # all workloads on every base
        warm_workloads=None,
        storm_n=[1, 4, 8],
        mem_reads=5000, cpu_reads=2000, cpu_region=256 * MiB,
        miss_reads=60000, miss_rounds=3,
        prefetch_size=1 * GiB,
        bounded=dict(scan_base=4 * GiB, cache_size=512 * MiB, boot_size=256 * MiB,
                     zipf_base=4 * GiB, zipf_reads=1000000, warm_region=256 * MiB,
                     warm_cache=512 * MiB, evict_cache=256 * MiB, rounds=4, speed_runtime=5,
                     mem_base=TiB, mem_cache=100 * GiB)),
}

WORKLOADS = {
    "rand4k-qd1": "4 KiB random reads, QD1",
    "rand4k-qd16": "4 KiB random reads, QD16",
    "rand4k-qd32": "4 KiB random reads, QD32",
    "seq1m-qd1": "1 MiB sequential reads, QD1",
    "seq1m-qd4": "1 MiB sequential reads, QD4",
    "boot": "boot-like mix (2 jobs: zipf small random + 256 KiB sequential)",
}

BASES = {
    "nfs": "nfs-ganesha (NFSv3, loopback) via QEMU's nfs driver",
    "nbd-1ms": "nbdkit pattern, delay filter 1 ms per read",
    "nbd-5ms": "nbdkit pattern, delay filter 5 ms per read",
    "nbd-rate": "nbdkit pattern, rate filter 1 Gbit/s",
}

COLD_CONFIGS = ["direct", "ic-mi1", "ic", "qcow2-cor"]
WARM_CONFIGS = ["ic", "qcow2-cor", "raw-local", "ic-localbase"]
SEED = 1234

# Extra intellicache options for every intellicache configuration
# (--ic-option), to measure an option's effect with the same harness.
IC_OPTIONS = {}


def log(msg=""):
    print(msg, flush=True)


def parse_size(s):
    units = {"K": KiB, "M": MiB, "G": GiB, "T": TiB}
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)


def remove_images(d):
    """Delete the cache files and overlays of a finished run in @d."""
    for f in list(Path(d).glob("*.img")) + list(Path(d).glob("*.qcow2")):
        f.unlink()


def wait_stores_done(qsd, node, durable=False, timeout=120):
    """Wait until @node's stored bytes stop changing between two polls
    0.5 s apart (the stores behind the replies are done), nothing deferred
    waits to be stored and, with @durable, every cached cluster is
    recorded.  Returns the last stats."""
    last = {"st": None}

    def settled():
        st = qsd.stats(node)
        prev, last["st"] = last["st"], st
        return (prev is not None and st["stored-bytes"] == prev["stored-bytes"]
                and st["deferred-bytes"] == 0
                and (not durable or st["durable-clusters"] == st["cached-clusters"]))
    h.wait_until(settled, timeout, "stores to finish", interval=0.5)
    return last["st"]


# ---------------------------------------------------------------------------
# Rounds


def alternate(rounds, configs, one):
    """one(config, round) for every config, @rounds rounds in alternating
    order (ABC, CBA, ...); {config: [results]}."""
    runs = {c: [] for c in configs}
    for rnd in range(rounds):
        for c in (configs if rnd % 2 == 0 else configs[::-1]):
            runs[c].append(one(c, rnd))
    return runs


def mean_run(runs):
    """The mean IOPS of @runs (and the runs)."""
    iops = [r["fio"]["iops"] for r in runs]
    return {"iops": sum(iops) / len(iops), "runs": runs}


def round_ratio(res, a, b):
    """The median over the rounds of @a's IOPS over @b's, each ratio of
    two runs back to back (the configurations are ordered so that they
    are adjacent both ways): on a shared machine, a burst of other work
    during one run skews that round, not the figure."""
    ratios = sorted(x["fio"]["iops"] / y["fio"]["iops"]
                    for x, y in zip(res[a]["runs"], res[b]["runs"]))
    mid = len(ratios) // 2
    median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
    return median, ratios


# ---------------------------------------------------------------------------
# Node configurations


def config_nodes(config, d, base, size, overlays=1, raw_file=None):
    """Blockdevs and exported node names of @config over the base node
    options @base (already named base0, read-only)."""
    nodes = [base] if config != "raw-local" else []
    if config == "direct":
        return nodes, ["base0"]
    if config == "ic-localbase":
        nodes = [h.file_node("base0", raw_file, read_only=True, direct=False)]
    if config in ("ic", "ic-mi1", "ic-localbase"):
        cache = h.create_cache_file(d / "cache.img")
        nodes.append(h.file_node("cache0", cache))
        ic = h.intellicache_node("ic0", "base0", "cache0", **IC_OPTIONS)
        if config == "ic-mi1":
            ic["max-inflight"] = 1
        nodes.append(ic)
        return nodes, ["ic0"]
    if config == "qcow2-cor":
        exports = []
        for i in range(overlays):
            ov = h.qcow2_overlay(d / f"overlay{i}.qcow2", size)
            nodes.append(h.file_node(f"ovf{i}", ov))
            nodes.append(h.qcow2_node(f"ov{i}", f"ovf{i}", "base0"))
            nodes.append({"driver": "copy-on-read", "node-name": f"cor{i}", "file": f"ov{i}"})
            exports.append(f"cor{i}")
        return nodes, exports
    if config == "raw-local":
        nodes.append(h.file_node("raw0", raw_file, read_only=True))
        return nodes, ["raw0"]
    raise ValueError(config)


# ---------------------------------------------------------------------------
# Bases


class BaseServer:
    """One base: starts (per run) the nbdkit serving it, or uses the shared
    ganesha; gives QEMU's node options and, after stop, bytes read.

    Names: the keys of BASES, and "plain" (nbdkit pattern without filter,
    of @size bytes)."""

    NBDKIT_FILTERS = {
        "nbd-1ms": (["delay"], {"delay-read": "1ms"}),
        "nbd-5ms": (["delay"], {"delay-read": "5ms"}),
        # A small bucket: the default (2 s of bandwidth, full at start)
        # would let short runs go faster than the rate.
        "nbd-rate": (["rate"], {"rate": "1G", "burstiness": "0.05"}),
        "plain": ([], {}),
    }

    def __init__(self, bench, name, size=None):
        self.bench = bench
        self.name = name
        self.size = size or (bench.nfs_size if name == "nfs" else bench.base_size_bytes)
        self.nbdkit = None
        self.last_stats = None

    def start(self, d, stack):
        """Start the base for a run in @d (stopped when @stack closes);
        return its node options (node-name base0, read-only)."""
        if self.name == "nfs":
            return dict(h.nfs_base(self.bench.ganesha, self.bench.nfs_name),
                        **{"node-name": "base0", "read-only": True})
        filters, fargs = self.NBDKIT_FILTERS[self.name]
        # More worker threads than any queue depth used here, so that the
        # delay filter's sleeping threads never limit the base.
        nk = h.Nbdkit(d, "pattern", {"size": self.size}, filters=filters, filter_args=fargs,
                      stats=True, tag="base", threads=64)
        stack.callback(nk.stop)
        nk.start()
        self.nbdkit = nk
        return dict(h.nbd_base(nk.socket), **{"node-name": "base0", "read-only": True})

    def stop(self):
        """Stop nbdkit (if any); return bytes it served (None for NFS)."""
        if self.nbdkit is None:
            return None
        self.nbdkit.stop()
        st = self.nbdkit.stats()
        self.nbdkit = None
        self.last_stats = st
        return st.get("read", {}).get("bytes", 0)


# ---------------------------------------------------------------------------
# fio


def fio_argv(uri, workload, runtime, region, seed=SEED, fixed=None, iolog=None):
    """fio arguments for @workload on @uri over [0, @region).

    Time based (@runtime s) unless @fixed: then the boot job does a fixed
    amount of work (used by the boot storm)."""
    g = ["--ioengine=nbd", f"--uri={uri}", f"--randseed={seed}", "--group_reporting",
         f"--size={region}" if region else None]
    if not fixed:
        g += [f"--runtime={int(runtime * 1000)}ms", "--time_based"]
    g = [a for a in g if a]
    if workload.startswith("rand4k-qd"):
        qd = int(workload.split("qd")[1])
        return g + ["--name=rand4k", "--rw=randread", "--bs=4k", f"--iodepth={qd}",
                    "--norandommap"]
    if workload.startswith("seq1m-qd"):
        qd = int(workload.split("qd")[1])
        return g + ["--name=seq1m", "--rw=read", "--bs=1M", f"--iodepth={qd}"]
    if workload == "boot":
        # Mostly small random reads with a skewed (zipf) distribution, so
        # hot blocks are read again, plus a sequential reader of a second
        # part of the region (files read whole).
        small = ["--name=small", "--rw=randread",
                 "--bssplit=4k/50:8k/15:16k/15:32k/10:64k/10",
                 "--random_distribution=zipf:1.2", "--iodepth=8", "--norandommap"]
        seq = ["--name=seq", "--rw=read", "--bs=256k", "--iodepth=2",
               f"--offset={region // 2}", f"--size={region // 2}"]
        if fixed:
            small += [f"--io_size={fixed}"]
            seq += [f"--io_size={region // 2}"]
        if iolog:
            small += [f"--write_iolog={iolog}.small"]
            seq += [f"--write_iolog={iolog}.seq"]
        return g + small + seq
    raise ValueError(workload)


def random_reads_argv(uri, name, number_ios, iodepth=16):
    """A fixed number of 4 KiB random reads over the whole export."""
    return ["--ioengine=nbd", f"--uri={uri}", f"--randseed={SEED}", f"--name={name}",
            "--rw=randread", "--bs=4k", f"--iodepth={iodepth}", "--norandommap",
            f"--number_ios={number_ios}"]


def fill_argv(uri, region):
    """One sequential pass over [0, @region) (1 MiB reads, QD4)."""
    return ["--ioengine=nbd", f"--uri={uri}", f"--size={region}", "--name=fill",
            "--rw=read", "--bs=1M", "--iodepth=4"]


def fmt_run(name, r):
    """One line of progress output for a run record @r."""
    f = r["fio"]
    s = f"{name:<22} {f['iops']:9.0f} IOPS {f['mib_s']:8.1f} MiB/s"
    if "cold_share" in r:
        s += f"  cold {100 * r['cold_share']:.0f}%"
    if "hit_share" in r and "cold_share" not in r:
        s += f"  hits {100 * r['hit_share']:.0f}%"
    if r.get("base_read_bytes") is not None:
        s += f"  base {r['base_read_bytes'] / MiB:.0f} MiB"
    if "daemon_cpu_us_per_io" in r:
        s += f"  qsd {r['daemon_cpu_us_per_io']:.0f} us/IO"
    return s


# ---------------------------------------------------------------------------
# The context of a benchmark run


class Bench:
    """Parameters (.p, from the mode and the command line), the work
    directory (.work, set by the runner) and the results dict (.results)
    that every part fills in."""

    def __init__(self, args):
        self.args = args
        self.mode = args.mode
        self.p = dict(MODES[self.mode])
        if self.p["cold_workloads"] is None:
            self.p["cold_workloads"] = {b: list(WORKLOADS) for b in self.p["bases"]}
        if self.p["warm_workloads"] is None:
            self.p["warm_workloads"] = list(WORKLOADS)
        if args.workloads:
            keep = args.workloads.split(",")
            self.p["cold_workloads"] = {b: [w for w in keep if w in WORKLOADS]
                                        for b in self.p["bases"]}
            self.p["warm_workloads"] = [w for w in keep if w in WORKLOADS]
        if args.bases:
            self.p["bases"] = [b for b in args.bases.split(",") if b in BASES]
        if args.runtime:
            self.p["runtime"] = self.p["warm_runtime"] = args.runtime
        self.base_size_bytes = parse_size(self.p["base_size"])
        self.nfs_size = self.p["nfs_size"]
        self.nfs_name = "base.img"
        self.ganesha = None
        self.work = None
        self.results = {"cold": {}, "warm": {}, "bootstorm": {}, "skipped": [], "errors": [],
                        "failed_runs": []}

    def rundir(self, *names):
        d = self.work.joinpath(*names)
        d.mkdir(parents=True)
        return d

    def start_config(self, d, base, config, stack):
        """Start @base and a daemon exporting @config over it; both are
        stopped when @stack closes.  Returns the daemon and its exports."""
        bnode = base.start(d, stack)
        nodes, exports = config_nodes(config, d, bnode, base.size)
        qsd = h.StorageDaemon(d, nodes, exports)
        stack.callback(qsd.stop)
        qsd.start()
        return qsd, exports

    def start_ganesha(self, stack):
        """Start ganesha exporting a sparse base of nfs_size (stopped when
        @stack closes); False, recorded as skipped, if port 2049 stays busy
        for two minutes."""
        export = self.work / "nfs-export"
        export.mkdir()
        img = export / self.nfs_name
        # Sparse base of nfs_size with seeded random data in the boot
        # region; ganesha reads holes without disk I/O, like data in the
        # NFS server's page cache.
        with open(img, "wb") as f:
            h.write_random(f, self.p["boot_region"], SEED)
            f.truncate(self.nfs_size)
        gdir = self.rundir("ganesha")
        g = h.Ganesha(gdir, export)
        deadline = time.monotonic() + 120
        while True:
            try:
                g.start()
                break
            except h.PortBusy as e:
                if time.monotonic() > deadline:
                    self.results["skipped"].append(f"nfs base: {e}")
                    log(f"      skipped: {e}")
                    return False
                time.sleep(5)
        stack.callback(img.unlink)
        stack.callback(g.stop)
        self.ganesha = g
        return True

