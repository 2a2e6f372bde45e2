#!/usr/bin/python3
"""intellicache benchmark: every comparison side by side, in one run.

    python3 scripts/bench.py [--quick | --full | --smoke] [--output DIR]

Builds nothing.  Starts every server it needs on loopback (nfs-ganesha with
rpcbind, nbdkit, qemu-storage-daemon), stops each one by its pid at the end
of its run, also on failure, SIGINT or SIGTERM, and writes:

  DIR/benchmarks.rst               the report (tables, plots, targets)
  DIR/benchmarks/results.json      every figure, ratio and target
  DIR/benchmarks/*.png             plots (when matplotlib is available)

DIR is docs/ for --quick and --full, a temporary directory (removed at the
end) for --smoke unless --output is given.

Configurations, each exported by qemu-storage-daemon over NBD and read by
fio's nbd engine:

  direct      the base node exported as is (no cache)
  ic-mi1      intellicache, max-inflight=1 (serial misses)
  ic          intellicache with its defaults
  qcow2-cor   an empty qcow2 overlay whose backing is the base node, under
              QEMU's copy-on-read filter (QEMU's own alternative)
  raw-local   a raw file on the local disk (the reference for hits)

Bases: nfs-ganesha on loopback through QEMU's nfs driver; nbdkit's pattern
plugin behind the delay filter (1 ms and 5 ms per read) or the rate filter
(1 Gbit/s), through QEMU's nbd client.  nbdkit's stats filter counts the
bytes each run read from the base.

Parts: cold runs (fresh cache or overlay for every run), warm runs (the same
node after a full pass over the region read), a boot storm (N clients, each
through its own qcow2 overlay, over one shared intellicache node or over N
copy-on-read overlays), the daemon's CPU time per cold miss with every
store done, memory (daemon RSS over a 1 TiB base) and CPU (callgrind
instructions per warm 4 KiB read through qemu-io).

Targets are evaluated and reported (PASS/FAIL) but never fail the command;
it exits non-zero only if the benchmark itself could not run.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(HERE / "bench"))
import icharness as h  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB
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
MODES = {
    "smoke": dict(
        runtime=1, warm_runtime=1, warm_rounds=1, base_size="64G", nfs_size=4 * GiB,
        warm_region=32 * MiB, boot_region=16 * MiB,
        bases=["nbd-1ms"],
        cold_workloads={"nbd-1ms": ["rand4k-qd16", "seq1m-qd4", "boot"]},
        warm_workloads=["rand4k-qd16", "seq1m-qd4", "boot"],
        storm_n=[1, 2],
        mem_reads=1000, cpu_reads=50, cpu_region=16 * MiB,
        miss_reads=2000, miss_rounds=1),
    "quick": dict(
        runtime=1.5, warm_runtime=1, warm_rounds=2, base_size="64G", nfs_size=64 * GiB,
        warm_region=256 * MiB, boot_region=128 * MiB,
        bases=["nfs", "nbd-1ms", "nbd-5ms", "nbd-rate"],
        cold_workloads={"nfs": ["rand4k-qd16", "seq1m-qd4"],
                        "nbd-1ms": ["rand4k-qd16", "seq1m-qd4", "boot"],
                        "nbd-5ms": ["rand4k-qd16", "seq1m-qd4"],
                        "nbd-rate": ["rand4k-qd16", "seq1m-qd4"]},
        warm_workloads=["rand4k-qd16", "seq1m-qd4", "boot"],
        storm_n=[1, 4, 8],
        mem_reads=2000, cpu_reads=500, cpu_region=64 * MiB,
        miss_reads=20000, miss_rounds=2),
    "full": dict(
        runtime=6, warm_runtime=5, warm_rounds=2, base_size="64G", nfs_size=64 * GiB,
        warm_region=1 * GiB, boot_region=1 * GiB,
        bases=["nfs", "nbd-1ms", "nbd-5ms", "nbd-rate"],
        cold_workloads=None,     # all workloads on every base
        warm_workloads=None,
        storm_n=[1, 4, 8],
        mem_reads=5000, cpu_reads=2000, cpu_region=256 * MiB,
        miss_reads=60000, miss_rounds=3),
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


def log(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# Processes


def binary(name):
    b = h.qemu_build_dir()
    return b / "storage-daemon" / name if name == "qemu-storage-daemon" else b / name


def qemu_env():
    return dict(os.environ, QEMU_MODULE_DIR=str(h.qemu_build_dir()))


def proc_cpu_s(pid):
    """utime + stime of @pid in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def remove_images(d):
    """Delete the cache files and overlays of a finished run in @d."""
    for f in list(Path(d).glob("*.img")) + list(Path(d).glob("*.qcow2")):
        f.unlink()


def proc_state(proc):
    rc = proc.poll()
    if rc is None:
        return "still running"
    return f"exited with status {rc}" if rc >= 0 else f"killed by signal {-rc}"


def proc_rss_kib(pid, field="VmRSS:"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise h.HarnessError(f"no {field} for pid {pid}")


def wait_stores_done(qsd, node, durable=False, timeout=120):
    """Wait until @node's stored bytes stop changing between two polls
    0.5 s apart (the stores behind the replies are done) and, with
    @durable, every cached cluster is recorded.  Returns the last stats."""
    last = {"st": None}

    def settled():
        st = qsd.stats(node)
        prev, last["st"] = last["st"], st
        return (prev is not None and st["stored-bytes"] == prev["stored-bytes"]
                and (not durable or st["durable-clusters"] == st["cached-clusters"]))
    h.wait_until(settled, timeout, "stores to finish", interval=0.5)
    return last["st"]


class Daemon(h.StorageDaemon):
    """qemu-storage-daemon with any list of nodes and one NBD export per
    node in @exports.  Reuses StorageDaemon's start/stop/QMP/stats."""

    def __init__(self, workdir, blockdevs, exports, tag="qsd"):
        h.Server.__init__(self)
        self.workdir = Path(workdir)
        self.tag = tag
        self.socket = self.workdir / f"{tag}-nbd.sock"
        self.qmp_path = self.workdir / f"{tag}-qmp.sock"
        self.node = exports[0] if exports else None
        self.argv = [str(h.qsd_binary())]
        for b in blockdevs:
            self.argv += ["--blockdev", json.dumps(b)]
        self.argv += ["--nbd-server", f"addr.type=unix,addr.path={self.socket}"]
        for i, node in enumerate(exports):
            self.argv += ["--export", f"type=nbd,id=e{i},node-name={node}"]
        self.argv += ["--chardev", f"socket,id=qmp0,path={self.qmp_path},server=on,wait=off",
                      "--monitor", "chardev=qmp0"]
        self.qmp = None

    def uri_for(self, node):
        return h.nbd_uri(self.socket, node)

    def stop_checked(self, what):
        t = time.monotonic()
        status, killed = self.stop(timeout=300)
        if killed or status != 0:
            raise h.HarnessError(f"{what}: daemon exit status {status}, killed={killed}; "
                                 f"log:\n{h.log_tail(self.log_path)}")
        return time.monotonic() - t


def direct_file(node, filename, read_only=False):
    d = {"driver": "file", "node-name": node, "filename": str(filename)}
    d.update(h.CACHE_DIRECT)
    if read_only:
        d["read-only"] = True
    return d


def qcow2_overlay(path, size):
    subprocess.run([str(binary("qemu-img")), "create", "-q", "-f", "qcow2", str(path), str(size)],
                   check=True, env=qemu_env(), timeout=60)
    return path


# Extra intellicache options for every intellicache configuration
# (--ic-option), to measure an option's effect with the same harness.
IC_OPTIONS = {}


def parse_ic_option(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE")
    try:
        return key, int(value)
    except ValueError:
        return key, value


def config_nodes(config, d, base, size, overlays=1, raw_file=None):
    """Blockdevs and exported node names of @config over the base node
    options @base (already named base0, read-only)."""
    nodes = [base] if config != "raw-local" else []
    if config == "direct":
        return nodes, ["base0"]
    if config == "ic-localbase":
        nodes = [{"driver": "file", "node-name": "base0", "filename": str(raw_file),
                  "read-only": True}]
    if config in ("ic", "ic-mi1", "ic-localbase"):
        cache = h.create_cache_file(d / "cache.img")
        nodes.append(direct_file("cache0", cache))
        ic = {"driver": "intellicache", "node-name": "ic0", "file": "base0",
              "cache-file": "cache0"}
        ic.update(IC_OPTIONS)
        if config == "ic-mi1":
            ic["max-inflight"] = 1
        nodes.append(ic)
        return nodes, ["ic0"]
    if config == "qcow2-cor":
        exports = []
        for i in range(overlays):
            ov = qcow2_overlay(d / f"overlay{i}.qcow2", size)
            nodes.append(direct_file(f"ovf{i}", ov))
            nodes.append({"driver": "qcow2", "node-name": f"ov{i}", "file": f"ovf{i}",
                          "backing": "base0"})
            nodes.append({"driver": "copy-on-read", "node-name": f"cor{i}", "file": f"ov{i}"})
            exports.append(f"cor{i}")
        return nodes, exports
    if config == "raw-local":
        nodes.append(direct_file("raw0", raw_file, read_only=True))
        return nodes, ["raw0"]
    raise ValueError(config)


# ---------------------------------------------------------------------------
# Bases


class BaseServer:
    """One base: starts (per run) the nbdkit serving it, or uses the shared
    ganesha; gives QEMU's node options and, after stop, bytes read."""

    def __init__(self, bench, name):
        self.bench = bench
        self.name = name
        self.nbdkit = None
        self.last_stats = None

    @property
    def size(self):
        return self.bench.nfs_size if self.name == "nfs" else self.bench.base_size_bytes

    def start(self, d, stack):
        if self.name == "nfs":
            return dict(h.nfs_base(self.bench.ganesha, self.bench.nfs_name),
                        **{"node-name": "base0", "read-only": True})
        filters, fargs = [], {}
        if self.name == "nbd-1ms":
            filters, fargs = ["delay"], {"delay-read": "1ms"}
        elif self.name == "nbd-5ms":
            filters, fargs = ["delay"], {"delay-read": "5ms"}
        elif self.name == "nbd-rate":
            # A small bucket: the default (2 s of bandwidth, full at start)
            # would let short runs go faster than the rate.
            filters, fargs = ["rate"], {"rate": "1G", "burstiness": "0.05"}
        return self._nbdkit(d, stack, self.bench.p["base_size"], filters, fargs)

    def _nbdkit(self, d, stack, size, filters, fargs):
        nk = h.Nbdkit(d, "pattern", {"size": size}, filters=filters, filter_args=fargs,
                      stats=True, tag="base")
        # More worker threads than any queue depth used here, so that the
        # delay filter's sleeping threads never limit the base.
        nk.argv[1:1] = ["-t", "64"]
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


def fio_start(argv, out):
    return subprocess.Popen(["fio", "--output-format=json", f"--output={out}"] + argv,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=h._die_with_parent)


def fio_finish(proc, out, timeout):
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise h.HarnessError(f"fio timed out after {timeout} s")
    except BaseException:
        # Interrupted (SIGINT/SIGTERM): stop our fio by its pid.
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        raise
    text = Path(out).read_text() if Path(out).exists() else ""
    if proc.returncode != 0 or "{" not in text:
        raise h.HarnessError(f"fio failed with status {proc.returncode}: "
                             f"{stdout.decode(errors='replace')}{text}")
    job = json.loads(text[text.index("{"):])["jobs"][0]
    if job["error"]:
        raise h.HarnessError(f"fio job error {job['error']}")
    r = job["read"]
    pct = r["clat_ns"].get("percentile", {})
    return {"iops": r["iops"], "mib_s": r["bw_bytes"] / MiB, "io_bytes": r["io_bytes"],
            "total_ios": r["total_ios"], "runtime_ms": r["runtime"],
            "lat_mean_us": r["lat_ns"]["mean"] / 1000,
            "lat_p99_us": pct.get("99.000000", 0) / 1000}


def run_fio(argv, d, tag, timeout):
    out = Path(d) / f"{tag}.json"
    return fio_finish(fio_start(argv, out), out, timeout)


def unique_bytes(paths, cluster=CLUSTER):
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


# ---------------------------------------------------------------------------
# The benchmark


class Bench:
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
        self.results = {"cold": {}, "warm": {}, "bootstorm": {}, "skipped": [], "errors": [],
                        "failed_runs": []}

    # -- helpers -----------------------------------------------------------

    def rundir(self, *names):
        d = self.work.joinpath(*names)
        d.mkdir(parents=True)
        return d

    def ic_summary(self, st, fio):
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

    def one_run(self, d, base, config, workload, runtime, region, fixed=None, label=""):
        """Fresh base server, daemon and cache or overlay; fio; collect; stop.
        The cache file or overlays are deleted afterwards (a --full run
        fills tens of GiB otherwise)."""
        try:
            return self._one_run(d, base, config, workload, runtime, region, fixed, label)
        finally:
            remove_images(d)

    @staticmethod
    def start_config(d, base, config, stack):
        """Start @base and a daemon exporting @config over it; both are
        stopped when @stack closes.  Returns the daemon and its exports."""
        bnode = base.start(d, stack)
        nodes, exports = config_nodes(config, d, bnode, base.size)
        qsd = Daemon(d, nodes, exports)
        stack.callback(qsd.stop)
        qsd.start()
        return qsd, exports

    def _one_run(self, d, base, config, workload, runtime, region, fixed, label):
        rec = {}
        with contextlib.ExitStack() as stack:
            qsd, exports = self.start_config(d, base, config, stack)
            uri = qsd.uri_for(exports[0])
            timeout = 900 if fixed else runtime * 4 + 180
            cpu0, t0 = proc_cpu_s(qsd.pid), time.monotonic()
            try:
                rec["fio"] = run_fio(fio_argv(uri, workload, runtime, region, fixed=fixed), d,
                                     "fio", timeout)
            except h.HarnessError as e:
                first = str(e).split("\n{", 1)[0]       # without fio's JSON
                nk = base.nbdkit
                raise h.HarnessError(
                    f"{label}: {first}\n"
                    f"qemu-storage-daemon: {proc_state(qsd.proc)}; log:\n"
                    f"{h.log_tail(qsd.log_path)}\n"
                    + (f"nbdkit: {proc_state(nk.proc)}; log:\n{h.log_tail(nk.log_path)}"
                       if nk else "")) from e
            rec["daemon_cpu_s"] = proc_cpu_s(qsd.pid) - cpu0
            rec["wall_s"] = time.monotonic() - t0
            if rec["fio"]["total_ios"]:
                rec["daemon_cpu_us_per_io"] = rec["daemon_cpu_s"] * 1e6 / rec["fio"]["total_ios"]
            if config.startswith("ic"):
                st = qsd.stats()
                rec["stats"] = st
                rec.update(self.ic_summary(st, rec["fio"]))
            rec["stop_s"] = qsd.stop_checked(label)
            rec["base_read_bytes"] = base.stop()
            rec["base_ops"] = base.last_stats
        return rec

    def fill(self, qsd, node, config, region, d):
        """Read [0, region) once (1 MiB, QD4); for intellicache wait until
        every cluster of it is stored (stores run behind the replies)."""
        t = time.monotonic()
        run_fio(["--ioengine=nbd", f"--uri={qsd.uri_for(node)}", f"--size={region}",
                 "--name=fill", "--rw=read", "--bs=1M", "--iodepth=4"], d, "fill", 600)
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

    # -- parts -------------------------------------------------------------

    def part_cold(self):
        p = self.p
        for bname in p["bases"]:
            workloads = p["cold_workloads"].get(bname, [])
            if not workloads:
                continue
            base = BaseServer(self, bname)
            with contextlib.ExitStack() as stack:
                if bname == "nfs":
                    if not self.start_ganesha(stack):
                        continue
                res = self.results["cold"].setdefault(bname, {})
                for wl in workloads:
                    log(f"cold  {bname:<9} {wl}")
                    # fio's region: the whole base (64 GiB) keeps random
                    # and sequential reads cold; the boot mix does a fixed
                    # amount of work on its own region, as a booting VM
                    # reads a small part of its image, some of it again.
                    region = p["boot_region"] if wl == "boot" else None
                    fixed = region // 8 if wl == "boot" else None
                    for cfg in COLD_CONFIGS:
                        d = self.rundir("cold", bname, wl, cfg)
                        r = None
                        for attempt in (1, 2):
                            try:
                                r = self.one_run(d, base, cfg, wl, p["runtime"], region,
                                                 fixed=fixed,
                                                 label=f"cold {bname} {wl} {cfg}")
                                break
                            except (h.HarnessError, OSError,
                                    subprocess.CalledProcessError) as e:
                                # One failed run must not lose the others:
                                # record it, retry once, go on.
                                self.results["errors"].append(f"attempt {attempt}: {e}")
                                log(f"      {cfg}: FAILED (attempt {attempt}): {e}")
                                d = self.rundir("cold", bname, wl, f"{cfg}-retry{attempt}")
                        if r is None:
                            self.results["failed_runs"].append(f"cold {bname} {wl} {cfg}")
                            continue
                        res.setdefault(wl, {})[cfg] = r
                        log("      " + fmt_run(cfg, r))

    def start_ganesha(self, stack):
        export = self.work / "nfs-export"
        export.mkdir()
        img = export / self.nfs_name
        # Sparse base of nfs_size with seeded random data in the boot
        # region; ganesha reads holes without disk I/O, like data in the
        # NFS server's page cache.
        with open(img, "wb") as f:
            h._write_random(f, self.p["boot_region"], SEED)
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

    def part_warm(self):
        """Warm runs: one filled node per configuration, all running at
        once; each workload then runs on every configuration back to back,
        in rounds of alternating order (ABC, CBA, ...)."""
        p = self.p
        region = p["warm_region"]
        raw = self.work / "raw-local.img"
        h.make_base_image(raw, region, SEED)
        res = self.results["warm"]
        res["base"] = "nbd-1ms"
        res["region_bytes"] = region
        res["rounds"] = p["warm_rounds"]
        res["fill"] = {}
        res["workloads"] = {}
        with contextlib.ExitStack() as stack:
            daemons = {}
            for cfg in WARM_CONFIGS:
                d = self.rundir("warm", cfg)
                base = BaseServer(self, "nbd-1ms")
                bnode = base.start(d, stack) if cfg in ("ic", "qcow2-cor") else None
                nodes, exports = config_nodes(cfg, d, bnode, base.size, raw_file=raw)
                qsd = Daemon(d, nodes, exports)
                stack.callback(qsd.stop)
                qsd.start()
                node = exports[0]
                fill = self.fill(qsd, node, cfg, region, d) if cfg != "raw-local" else {}
                res["fill"][cfg] = {k: v for k, v in fill.items() if k != "stats"}
                daemons[cfg] = {"qsd": qsd, "node": node, "dir": d, "base": base,
                                "prev": fill.get("stats")}
                log(f"warm  {cfg} ready" + (f" (filled in {fill['fill_s']:.1f} s)"
                                            if fill else ""))
            for wl in p["warm_workloads"]:
                log(f"warm  {wl}")
                runs = {cfg: [] for cfg in WARM_CONFIGS}
                for rnd in range(p["warm_rounds"]):
                    order = WARM_CONFIGS if rnd % 2 == 0 else WARM_CONFIGS[::-1]
                    for cfg in order:
                        r = self.warm_one(daemons[cfg], cfg, wl, region, f"{wl}-{rnd}")
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

    def warm_one(self, dm, cfg, wl, region, tag):
        p = self.p
        qsd = dm["qsd"]
        cpu0 = proc_cpu_s(qsd.pid)
        r = {"fio": run_fio(fio_argv(qsd.uri_for(dm["node"]), wl, p["warm_runtime"], region),
                            dm["dir"], f"fio-{tag}", p["warm_runtime"] * 4 + 180)}
        r["daemon_cpu_s"] = proc_cpu_s(qsd.pid) - cpu0
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

    def part_bootstorm(self):
        p = self.p
        region = p["boot_region"]
        fixed = region // 8             # bytes of small random reads per client
        res = self.results["bootstorm"]
        res["base"] = "nbd-1ms"
        res["region_bytes"] = region
        res["small_io_bytes_per_client"] = fixed
        res["runs"] = {}
        unique = None
        for n in p["storm_n"]:
            for cfg in ("ic", "qcow2-cor"):
                log(f"storm N={n} {cfg}")
                d = self.rundir("storm", f"{cfg}-{n}")
                r = self.storm_run(d, cfg, n, region, fixed)
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

    def storm_run(self, d, cfg, n, region, fixed):
        try:
            return self._storm_run(d, cfg, n, region, fixed)
        finally:
            remove_images(d)

    def _storm_run(self, d, cfg, n, region, fixed):
        base = BaseServer(self, "nbd-1ms")
        rec = {}
        with contextlib.ExitStack() as stack:
            bnode = base.start(d, stack)
            if cfg == "ic":
                nodes, _ = config_nodes("ic", d, bnode, base.size)
                exports = []
                for i in range(n):
                    ov = qcow2_overlay(d / f"overlay{i}.qcow2", base.size)
                    nodes.append(direct_file(f"ovf{i}", ov))
                    nodes.append({"driver": "qcow2", "node-name": f"ov{i}",
                                  "file": f"ovf{i}", "backing": "ic0"})
                    exports.append(f"ov{i}")
            else:
                nodes, exports = config_nodes("qcow2-cor", d, bnode, base.size, overlays=n)
            qsd = Daemon(d, nodes, exports)
            stack.callback(qsd.stop)
            qsd.start()
            procs = []
            t0 = time.monotonic()
            cpu0 = proc_cpu_s(qsd.pid)
            for i, node in enumerate(exports):
                argv = fio_argv(qsd.uri_for(node), "boot", None, region, fixed=fixed,
                                iolog=d / f"iolog{i}" if i == 0 else None)
                out = d / f"fio{i}.json"
                procs.append((fio_start(argv, out), out))
                stack.callback(lambda pr=procs[-1][0]: pr.poll() is None and pr.kill())
            clients = [fio_finish(pr, out, 900) for pr, out in procs]
            rec["makespan_s"] = time.monotonic() - t0
            rec["daemon_cpu_s"] = proc_cpu_s(qsd.pid) - cpu0
            rec["clients"] = clients
            rec["client_bytes"] = sum(c["io_bytes"] for c in clients)
            if cfg == "ic":
                rec["stats"] = qsd.stats("ic0")
            qsd.stop_checked(f"storm {cfg} {n}")
            rec["base_read_bytes"] = base.stop()
            rec["base_ops"] = base.last_stats
        return rec

    def part_misscost(self):
        """The daemon's CPU time per cold 4 KiB read, everything included:
        a fixed number of reads (QD16) over the 1 ms base, then (for
        intellicache) until every fetch is stored.  The cold part's
        per-I/O figure stops at the end of fio, before the stores behind
        the replies are done, and varies with how many got dropped."""
        log("misscost (daemon CPU per cold miss, stores included)")
        n, rounds = self.p["miss_reads"], self.p["miss_rounds"]
        base = BaseServer(self, "nbd-1ms")
        res = {"reads": n, "rounds": rounds, "base": base.name, "runs": {}}
        for i in range(rounds):
            order = ["direct", "ic"] if i % 2 == 0 else ["ic", "direct"]
            for config in order:
                d = self.rundir("misscost", f"{config}-{i}")
                try:
                    rec = self.misscost_run(d, base, config, n)
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
        self.results["misscost"] = res

    def misscost_run(self, d, base, config, n):
        with contextlib.ExitStack() as stack:
            qsd, exports = self.start_config(d, base, config, stack)
            cpu0 = proc_cpu_s(qsd.pid)
            fio = run_fio(["--ioengine=nbd", f"--uri={qsd.uri_for(exports[0])}",
                           f"--randseed={SEED}", "--name=miss", "--rw=randread", "--bs=4k",
                           "--iodepth=16", "--norandommap", f"--number_ios={n}"],
                          d, "fio", 600)
            rec = {"fio": fio}
            if config == "ic":
                st = wait_stores_done(qsd, "ic0", durable=True)
                rec["stats"] = st
                rec["fetches"] = st["fetches"]
                rec["stored_fetches"] = st["fetches"] - st["store-skipped"]
                rec["store_skipped"] = st["store-skipped"]
            rec["daemon_cpu_s"] = proc_cpu_s(qsd.pid) - cpu0
            rec["cpu_us_per_read"] = rec["daemon_cpu_s"] * 1e6 / fio["total_ios"]
            qsd.stop_checked(f"misscost {config}")
            base.stop()
        return rec

    def part_memory(self):
        """Daemon RSS over a 1 TiB base (the target) and over a 1 GiB base
        (which separates the per-node part of the overhead from the part
        that grows with the base)."""
        res = self.memory_one("1T", TiB)
        res["small_base"] = self.memory_one("1G", GiB)
        # Informational: the default cluster size for 1 TiB (16 KiB).
        res["default_cluster"] = self.memory_one("1T", TiB, cluster_size=None)
        self.results["memory"] = res

    def memory_one(self, size, size_bytes, cluster_size=CLUSTER):
        """RSS of a daemon over a base of @size: with only the base node
        (after reads through it, so the generic machinery is warmed up),
        after adding the intellicache node (same process, via QMP), and
        after the same reads through it."""
        log(f"memory ({size} base, cluster size {cluster_size or 'default'})")
        d = self.rundir(f"memory-{size}-{cluster_size or 'default'}")
        nreads = self.p["mem_reads"]
        res = {"base_size_bytes": size_bytes, "reads": nreads}

        def reads(node, tag, qd=1):
            return run_fio(["--ioengine=nbd", f"--uri={qsd.uri_for(node)}",
                            f"--randseed={SEED}", "--name=mem", "--rw=randread", "--bs=4k",
                            f"--iodepth={qd}", "--norandommap", f"--number_ios={nreads}"],
                           d, tag, 300)

        with contextlib.ExitStack() as stack:
            base = BaseServer(self, "mem")
            bnode = base._nbdkit(d, stack, size, [], {})
            qsd = Daemon(d, [bnode], ["base0"])
            stack.callback(qsd.stop)
            qsd.start()
            time.sleep(1)
            res["rss_start_kib"] = proc_rss_kib(qsd.pid)
            reads("base0", "fio-base")
            time.sleep(0.5)
            res["rss_base_only_kib"] = proc_rss_kib(qsd.pid)
            res["anon_base_only_kib"] = proc_rss_kib(qsd.pid, "RssAnon:")
            cache = h.create_cache_file(d / "cache.img")
            qsd.qmp.cmd("blockdev-add", **direct_file("cache0", cache))
            ic = {"driver": "intellicache", "node-name": "ic0", "file": "base0",
                  "cache-file": "cache0"}
            if cluster_size:
                ic["cluster-size"] = cluster_size
            qsd.qmp.cmd("blockdev-add", **ic)
            time.sleep(1)
            res["rss_with_ic_kib"] = proc_rss_kib(qsd.pid)
            res["anon_with_ic_kib"] = proc_rss_kib(qsd.pid, "RssAnon:")
            qsd.qmp.cmd("block-export-add", type="nbd", id="eic", **{"node-name": "ic0"})
            reads("ic0", "fio-ic")
            wait_stores_done(qsd, "ic0", timeout=60)  # stores run behind replies
            res["rss_after_reads_kib"] = proc_rss_kib(qsd.pid)
            res["anon_after_reads_kib"] = proc_rss_kib(qsd.pid, "RssAnon:")
            # Then a burst of concurrent misses (QD16, the default
            # max-inflight): informational, what stays resident after it.
            reads("ic0", "fio-burst", qd=16)
            wait_stores_done(qsd, "ic0", timeout=60)
            res["rss_after_burst_kib"] = proc_rss_kib(qsd.pid)
            res["anon_after_burst_kib"] = proc_rss_kib(qsd.pid, "RssAnon:")
            res["overhead_after_burst_kib"] = res["rss_after_burst_kib"] - res["rss_base_only_kib"]
            res["hwm_kib"] = proc_rss_kib(qsd.pid, "VmHWM:")
            res["stats"] = qsd.stats("ic0")
            res["cluster_size"] = res["stats"]["cluster-size"]
            qsd.stop_checked("memory")
            base.stop()
        res["overhead_kib"] = res["rss_with_ic_kib"] - res["rss_base_only_kib"]
        res["overhead_after_reads_kib"] = res["rss_after_reads_kib"] - res["rss_base_only_kib"]
        res["overhead_mib_per_tib"] = res["overhead_kib"] / 1024 * TiB / size_bytes
        res["overhead_after_reads_mib_per_tib"] = (res["overhead_after_reads_kib"] / 1024
                                                   * TiB / size_bytes)
        log(f"      RSS base only {res['rss_base_only_kib']} KiB (at start "
            f"{res['rss_start_kib']}), with intellicache {res['rss_with_ic_kib']} KiB, "
            f"after {nreads} reads {res['rss_after_reads_kib']} KiB")
        return res

    def part_cpu(self):
        """Instructions per warm 4 KiB read (callgrind), intellicache vs the
        plain file node it reads hits from."""
        if not shutil.which("valgrind"):
            self.results["skipped"].append("cpu: valgrind not installed")
            log("cpu: skipped, valgrind not installed")
            return
        log("cpu (callgrind)")
        d = self.rundir("cpu")
        region = self.p["cpu_region"]
        n = self.p["cpu_reads"]
        base = d / "base.raw"
        h.make_base_image(base, region, SEED)
        local = d / "local.raw"
        shutil.copyfile(base, local)
        cache = h.create_cache_file(d / "cache.img")
        opts = {
            "ic": ("driver=intellicache,file.driver=file,file.filename=%s,"
                   "cache-file.driver=file,cache-file.filename=%s,"
                   "cache-file.cache.direct=on,cache-file.aio=native" % (base, cache)),
            "file": "driver=file,filename=%s,cache.direct=on,aio=native" % local,
        }
        qemu_io = str(binary("qemu-io"))
        # Warm the cache: read everything once, then check it is complete.
        fill = "".join(f"read -q {o} 1M\n" for o in range(0, region, MiB))
        subprocess.run([qemu_io, "-r", "--image-opts", opts["ic"]], input=fill.encode(),
                       env=qemu_env(), check=True, timeout=300, stdout=subprocess.DEVNULL)
        info = subprocess.run([str(binary("qemu-img")), "info", "--output=json",
                               "--image-opts", opts["ic"]], env=qemu_env(), check=True,
                              timeout=60, capture_output=True)
        icinfo = json.loads(info.stdout)["format-specific"]["data"]
        cached = icinfo["cached-clusters"]
        rng = random.Random(SEED)
        offsets = [rng.randrange(region // 4096) * 4096 for _ in range(n)]
        script = "".join(f"read -q {o} 4k\n" for o in offsets)
        res = {"reads": n, "region_bytes": region, "cached_clusters": cached,
               "cluster_count": region // icinfo["cluster-size"]}
        for name, o in opts.items():
            totals = {}
            for k, text in (("0", ""), (str(n), script)):
                out = d / f"cg-{name}-{k}.out"
                subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                qemu_io, "-r", "--image-opts", o], input=text.encode(),
                               env=qemu_env(), check=True, timeout=900,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                totals[k] = callgrind_total(out)
            res[name] = {"instructions_0": totals["0"], "instructions_n": totals[str(n)],
                         "per_read": (totals[str(n)] - totals["0"]) / n}
        res["ratio"] = res["ic"]["per_read"] / res["file"]["per_read"]
        self.results["cpu"] = res
        log(f"      per warm 4 KiB read: intellicache {res['ic']['per_read']:.0f}, "
            f"file {res['file']['per_read']:.0f} instructions ({res['ratio']:.2f}x)")

    # -- main --------------------------------------------------------------

    def run(self, parts):
        t0 = time.monotonic()
        usage0 = own_cpu_s()
        stat0 = cpu_jiffies()
        self.results["machine"] = machine()
        self.results["machine"]["loadavg_start"] = os.getloadavg()
        self.results["started"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        self.results["mode"] = self.mode
        self.results["command"] = reproduce_command(self.args)
        self.results["parameters"] = params_json(self.p)
        self.results["ic_options"] = dict(IC_OPTIONS)
        with tempfile.TemporaryDirectory(prefix="ic-bench-", dir=self.args.work_dir) as w:
            self.work = Path(w)
            for part in parts:
                try:
                    getattr(self, f"part_{part}")()
                except Exception as e:  # noqa: BLE001 -- keep the other parts
                    # A part that breaks must not lose what the others
                    # measured: record it, report it, fail --smoke.
                    log(f"bench: part {part} failed: {e!r}")
                    self.results["errors"].append(f"part {part}: {e!r}")
                    self.results["failed_runs"].append(f"part {part}")
        elapsed = time.monotonic() - t0
        self.results["elapsed_s"] = elapsed
        self.results["machine"]["loadavg_end"] = os.getloadavg()
        stat1 = cpu_jiffies()
        busy = (stat1[0] - stat0[0]) / os.sysconf("SC_CLK_TCK")
        ours = own_cpu_s() - usage0
        ncpu = os.cpu_count()
        self.results["machine"]["cpu_busy_share"] = busy / (elapsed * ncpu)
        self.results["machine"]["cpu_others_share"] = max(0.0, busy - ours) / (elapsed * ncpu)
        self.results["targets"] = evaluate_targets(self.results)
        return self.results


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


def own_cpu_s():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def cpu_jiffies():
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f[:8]) - idle, idle


def callgrind_total(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise h.HarnessError(f"no totals in {path}")


def parse_size(s):
    units = {"K": KiB, "M": MiB, "G": GiB, "T": TiB}
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)


def params_json(p):
    q = dict(p)
    q["cold_configs"] = COLD_CONFIGS
    q["warm_configs"] = WARM_CONFIGS
    q["seed"] = SEED
    q["min_cold_share"] = MIN_COLD_SHARE
    q["base_descriptions"] = {b: BASES[b] for b in p["bases"]}
    q["workload_descriptions"] = WORKLOADS
    q["config_descriptions"] = CONFIGS
    return q


def reproduce_command(args):
    cmd = ["python3", "scripts/bench.py", f"--{args.mode}"]
    if args.runtime:
        cmd.append(f"--runtime={args.runtime:g}")
    for opt in ("parts", "workloads", "bases"):
        if getattr(args, opt) not in (None, "all"):
            cmd.append(f"--{opt}={getattr(args, opt)}")
    for key, value in args.ic_option:
        cmd.append(f"--ic-option={key}={value}")
    return " ".join(cmd)


def run_text(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              env=qemu_env()).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine():
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    qemu = run_text([str(h.qsd_binary()), "--version"]).splitlines()
    commit = run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    return {"cpu_model": cpu, "cpus": os.cpu_count(), "memory_gib": mem_kib / (1024 * 1024),
            "kernel": platform.release(), "os": run_text(["sh", "-c",
                                                          ". /etc/os-release; echo $PRETTY_NAME"]),
            "qemu": qemu[0] if qemu else "?", "nbdkit": run_text(["nbdkit", "--version"]),
            "fio": run_text(["fio", "--version"]),
            "ganesha": run_text(["sh", "-c", "dpkg-query -W -f '${Version}' nfs-ganesha"]),
            "git_commit": commit, "date": time.strftime("%Y-%m-%d")}


def fmt_run(name, r):
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
# Targets


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

    cold = res["cold"]
    for base in ("nbd-1ms", "nbd-5ms"):
        ic, direct, cor = (iops(cold, base, "rand4k-qd16", c) for c in ("ic", "direct",
                                                                        "qcow2-cor"))
        if ic and direct:
            add(f"cold 4 KiB random QD16, {base}: intellicache / base direct", ic / direct,
                ">=", 0.95, f"{ic:.0f} vs {direct:.0f} IOPS",
                note="" if cold_ok(base, "rand4k-qd16", "ic") else "run not cold")
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
    for base in cold:
        for wl in ("seq1m-qd4", "seq1m-qd1"):
            ic, direct = iops(cold, base, wl, "ic"), iops(cold, base, wl, "direct")
            if ic and direct:
                add(f"cold 1 MiB sequential ({wl.split('-')[1].upper()}), {base}: "
                    "intellicache / base direct", ic / direct, ">=", 0.95,
                    f"{ic:.0f} vs {direct:.0f} IOPS")
    ic, mi1 = iops(cold, "nbd-5ms", "rand4k-qd16", "ic"), iops(cold, "nbd-5ms", "rand4k-qd16",
                                                                "ic-mi1")
    if ic and mi1:
        add("cold 4 KiB random QD16, nbd-5ms: defaults / max-inflight=1", ic / mi1, ">=", 10.0,
            f"{ic:.0f} vs {mi1:.0f} IOPS")
    warm = res["warm"].get("workloads", {})
    for wl in ("rand4k-qd16", "seq1m-qd4"):
        ic, raw = iops(warm, wl, "ic"), iops(warm, wl, "raw-local")
        if ic and raw:
            add(f"warm {WORKLOADS[wl]}: intellicache / raw local file", ic / raw, ">=", 0.9,
                f"{ic:.0f} vs {raw:.0f} IOPS")
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
    return targets


# ---------------------------------------------------------------------------


PARTS = ("cold", "warm", "bootstorm", "misscost", "memory", "cpu")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="1-3 minutes, short runs (default)")
    g.add_argument("--full", dest="mode", action="store_const", const="full",
                   help="every workload on every base, longer runs (~20 minutes)")
    g.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                   help="seconds per part, tiny sizes, output to a temporary directory")
    p.set_defaults(mode="quick")
    p.add_argument("--output", help="output directory (default: docs/, or a temporary "
                                    "directory for --smoke)")
    p.add_argument("--parts", default="all",
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    p.add_argument("--runtime", type=float, help="override seconds per fio run")
    p.add_argument("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--bases", help=f"comma-separated subset of {','.join(BASES)}")
    p.add_argument("--ic-option", metavar="KEY=VALUE", action="append", default=[],
                   type=parse_ic_option,
                   help="an intellicache option for every intellicache configuration, "
                        "e.g. cluster-size=16384 (repeatable)")
    p.add_argument("--report-from", metavar="JSON",
                   help="only evaluate the targets and render the report again from a "
                   "results file (no runs)")
    p.add_argument("--work-dir", help="where cache files and overlays go "
                                      "(default: the system's temporary directory)")
    return p.parse_args()


def reexec_for_matplotlib():
    """Debian's matplotlib is for Debian's python3; if another python3 runs
    us without it, run again with /usr/bin/python3."""
    if importlib.util.find_spec("matplotlib") is not None:
        return
    syspy = "/usr/bin/python3"
    if (os.path.exists(syspy) and os.path.realpath(sys.executable) != os.path.realpath(syspy)
            and not os.environ.get("IC_BENCH_REEXEC")):
        r = subprocess.run([syspy, "-c", "import matplotlib"], capture_output=True)
        if r.returncode == 0:
            os.environ["IC_BENCH_REEXEC"] = "1"
            os.execv(syspy, [syspy] + sys.argv)


def main():
    args = parse_args()
    IC_OPTIONS.update(args.ic_option)
    reexec_for_matplotlib()
    if args.report_from:
        import report  # scripts/bench/report.py
        results = json.loads(Path(args.report_from).read_text())
        # Targets are derived from the figures: evaluate them again, so
        # that a change to a target's wording or limit reaches the report.
        results["targets"] = evaluate_targets(results)
        out = Path(args.output) if args.output else REPO / "docs"
        files = report.write(results, out)
        log(f"bench: rendered {', '.join(str(f) for f in files)}")
        return 0
    h.exit_on_sigterm()
    missing = h.missing_programs(["nbdkit", "fio"])
    if missing:
        sys.exit(f"bench: missing programs: {', '.join(missing)}")
    for b in ("qemu-storage-daemon", "qemu-img", "qemu-io"):
        if not binary(b).exists():
            sys.exit(f"bench: {binary(b)} not built (set IC_QEMU_BUILD?)")
    parts = PARTS if args.parts == "all" else tuple(args.parts.split(","))
    for part in parts:
        if part not in PARTS:
            sys.exit(f"bench: unknown part {part}")
    if "nfs" in MODES[args.mode]["bases"] and "cold" in parts:
        missing = h.missing_programs(["ganesha.nfsd", "rpcbind", "nfs-ls"])
        if missing:
            sys.exit(f"bench: missing programs for the NFS base: {', '.join(missing)}")

    import report  # scripts/bench/report.py

    tmp_out = None
    if args.output:
        out = Path(args.output)
    elif args.mode == "smoke":
        tmp_out = tempfile.TemporaryDirectory(prefix="ic-bench-smoke-")
        out = Path(tmp_out.name)
    else:
        out = REPO / "docs"
    st = os.statvfs(args.work_dir or tempfile.gettempdir())
    if st.f_bavail * st.f_frsize < 8 * GiB:
        sys.exit("bench: less than 8 GiB free for cache files and overlays (see --work-dir)")
    log(f"bench: {args.mode} mode, parts {','.join(parts)}, output {out}")
    results = Bench(args).run(parts)
    files = report.write(results, out)
    log("")
    for t in results["targets"]:
        state = {True: "PASS", False: "FAIL", None: "n/a "}[t["pass"]]
        log(f"{state}  {t['name']}: {t['measured']:.3f} (target {t['op']} {t['target']:g}; "
            f"{t['detail']}){' [' + t['note'] + ']' if t['note'] else ''}")
    if tmp_out is not None:
        log(f"bench: {results['elapsed_s']:.0f} s; wrote {len(files)} files to {out} "
            "(temporary, now removed)")
        tmp_out.cleanup()
    else:
        log(f"bench: {results['elapsed_s']:.0f} s; wrote {', '.join(str(f) for f in files)}")
    if results.get("failed_runs"):
        log(f"bench: runs without a result: {', '.join(results['failed_runs'])}")
        # --smoke checks that the harness works: a lost run is a failure.
        return 1 if args.mode == "smoke" else 0
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except (h.HarnessError, subprocess.CalledProcessError) as e:
        sys.exit(f"bench: {e}")
