#!/usr/bin/python3
"""Reproduce the cases of docs/troubleshooting.rst and docs/admin.rst.

Each scenario starts its own nbdkit (the base: a 64 MiB file of seeded
random bytes, with the ``delay`` or ``error`` filter where the case needs
a slow or failing base) and its own qemu-storage-daemon with the
intellicache module, traced with ``--trace 'intellicache_*'`` (QEMU's log
backend writes the events to the daemon's stderr, which goes to its log),
makes the symptom happen, and prints what the pages show:
``intellicache-ctl`` commands and their output, ``query-blockstats``
excerpts, QMP commands and events, and the trace lines and warnings the
daemon wrote meanwhile.

Everything runs on unix sockets in a temporary work directory (printed as
$WORK; the ctl commands find the daemon through $INTELLICACHE_QMP, a
monitor of their own).  The ``disk-full`` scenario mounts a 24 MiB tmpfs
there (root only) and unmounts it at the end.  Every wait is bounded;
a whole run takes about 75 seconds on two cores.

  scripts/troubleshooting-demo.py               # every scenario
  scripts/troubleshooting-demo.py slow-base     # some of them
  scripts/troubleshooting-demo.py --list

Environment: IC_QEMU_BUILD (QEMU build directory, default
build/qemu/build), IC_CTL (the intellicache-ctl binary, default
build/tools/ctl/intellicache-ctl).  Needs nbdkit, nbdcopy and fio.
Exit status 0 when every scenario ran (what they show is printed, not
checked), 1 otherwise.
"""

import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_qemu_build = Path(os.environ.get("IC_QEMU_BUILD", REPO / "build" / "qemu" / "build"))
sys.path[:0] = [str(REPO / "tests" / "pylib"), str(_qemu_build.parent / "src" / "python")]

import intellicache_harness as h  # noqa: E402

MiB, KiB = h.MiB, h.KiB
BASE_SIZE = 64 * MiB
CTL = h.ctl_binary()
WORK = None  # the work directory, printed as $WORK


# ---------------------------------------------------------------- output

def clean(text):
    return text.replace(str(WORK), "$WORK") if WORK else text


def say(text=""):
    print(clean(text), flush=True)


def block(text, limit=None):
    lines = clean(text).rstrip("\n").splitlines()
    if limit is not None and len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    for line in lines:
        print("   " + line if line else "", flush=True)


def heading(title):
    say()
    say(title)
    say("=" * len(title))


def step(text):
    say()
    say(f"-- {text}")


# ---------------------------------------------------------------- programs

class Daemon(h.StorageDaemon):
    """qemu-storage-daemon traced with --trace 'intellicache_*', with a
    second QMP monitor for intellicache-ctl."""

    def __init__(self, work, blockdevs, exports, tag="qsd", objects=()):
        super().__init__(work, blockdevs, exports, tag)
        self.ctl_socket = Path(work) / f"{tag}-ctl.sock"
        extra = ["--trace", "intellicache_*"]
        for o in objects:
            extra += ["--object", o]
        self.argv[1:1] = extra
        self.argv += ["--chardev", f"socket,id=mon1,path={self.ctl_socket},server=on,wait=off",
                      "--monitor", "chardev=mon1"]
        self.mark = 0

    def print_argv(self):
        parts = [Path(self.argv[0]).name]
        args = self.argv[1:]
        i = 0
        while i < len(args):
            if args[i].startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
                parts.append(f"{args[i]} {shlex.quote(args[i + 1])}")
                i += 2
            else:
                parts.append(args[i])
                i += 1
        say("$ " + " \\\n    ".join(parts))

    def start(self, timeout=60):
        log = self.workdir / f"{self.tag}.log"
        self.mark = log.stat().st_size if log.exists() else 0
        return super().start(timeout)

    def log_lines(self):
        """Lines the daemon wrote since the last call (trace and warnings)."""
        with open(self.log_path, "rb") as f:
            f.seek(self.mark)
            data = f.read()
        self.mark += len(data)
        return data.decode(errors="replace").splitlines()

    def show_log(self, events=None, limit=12, warnings=True, title=None):
        """Print the new log lines: trace events named in @events (all if
        None) and the daemon's own messages."""
        lines = self.log_lines()
        picked = []
        for line in lines:
            if line.startswith("intellicache_"):
                if events is None or line.split(" ", 1)[0] in events:
                    picked.append(line)
            elif warnings and line.strip():
                picked.append(line)
        if picked:
            say(title or "daemon's stderr (trace and messages), excerpt:")
            block("\n".join(picked), limit)
        return lines

    def stats(self, node="ic0"):
        return h.node_stats(self.qmp, node)


def ctl(d, *args, limit=None, quiet=False, timeout=60):
    """Run intellicache-ctl against daemon @d (or with no daemon), print it."""
    env = dict(os.environ)
    if d is not None:
        env["INTELLICACHE_QMP"] = str(d.ctl_socket)
    r = subprocess.run([str(CTL), *map(str, args)], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if not quiet:
        say("$ intellicache-ctl " + " ".join(shlex.quote(str(a)) for a in args))
        block(r.stdout + r.stderr, limit)
        say(f"   [exit {r.returncode}]")
    return r


def stats_excerpt(d, keys, node="ic0"):
    """Print members of the node's driver-specific query-blockstats."""
    st = d.stats(node)
    sub = {}
    for k in keys:
        if k in st:
            sub[k] = st[k]
    say(f"query-blockstats, node {node}, driver-specific (excerpt):")
    block(json.dumps(sub, indent=2))
    return st


def latency_summary(st, kinds=("hit", "miss", "fetch", "store")):
    """count, mean and the bin holding the median of each histogram."""
    out = []
    for k in kinds:
        hist = st.get(f"{k}-latency")
        if not hist:
            continue
        n = sum(hist["bins"])
        if not n:
            out.append(f"{k}-latency: count 0")
            continue
        mean_us = hist["sum-ns"] / n / 1000
        acc, med = 0, None
        for i, c in enumerate(hist["bins"]):
            acc += c
            if acc * 2 >= n:
                lo = hist["boundaries"][i - 1] if i else 0
                hi = hist["boundaries"][i] if i < len(hist["boundaries"]) else None
                med = f"[{lo / 1000:g} us, {hi / 1000:g} us)" if hi else f">= {lo / 1000:g} us"
                break
        out.append(f"{k}-latency: count {n}, mean {mean_us:.0f} us, median in bin {med}")
    return "\n".join(out)


def qmp_show(d, cmd, args=None, show_result=True):
    """Run a QMP command on @d, printing it like QMP's own examples."""
    say("-> " + json.dumps({"execute": cmd, "arguments": args or {}}))
    try:
        r = d.qmp.cmd(cmd, **(args or {}))
    except h.QMPError as e:
        say("<- " + json.dumps({"error": {"class": e.error_class, "desc": e.desc}}))
        return e
    if show_result:
        say("<- " + json.dumps({"return": r}))
    return r


def events(d, wait=0.0):
    evs = d.qmp.events("INTELLICACHE_BASE_STATE_CHANGE", wait=wait)
    for e in evs:
        ts = e["timestamp"]
        say("<- " + json.dumps({"event": e["event"], "data": e["data"],
                                "timestamp": ts}))
    return evs


def nbdkit(work, base, tag="nbdkit", filters=(), args=None):
    nk = h.Nbdkit(work, "file", {"file": base, "cache": "none"}, filters, args or {}, tag=tag)
    argv = " ".join(shlex.quote(a) for a in nk.argv)
    say("$ " + argv)
    return nk.start()


def nbd_base(nk):
    return dict(h.nbd_base(nk.socket), **{"node-name": "base0", "read-only": True})


def cache_node(path, **extra):
    return dict({"driver": "file", "node-name": "cache0", "filename": str(path),
                 "cache": {"direct": True}, "aio": "io_uring"}, **extra)


def ic_node(**options):
    return h.intellicache_node("ic0", "base0", "cache0", **options)


def new_cache(work, name):
    p = Path(work) / name
    p.unlink(missing_ok=True)
    return h.create_cache_file(p)


def client(d, node="ic0"):
    return h.NbdClient(d.socket, node)


def read_seq(c, start, length, bs=256 * KiB):
    for off in range(start, start + length, bs):
        c.pread(off, min(bs, start + length - off))


def boot_reads(c, seed=7):
    """A boot-like read pattern: 6 MiB read sequentially (a kernel, an
    initramfs), then 300 scattered reads of 4 to 64 KiB."""
    read_seq(c, 0, 6 * MiB)
    rng = random.Random(seed)
    for _ in range(300):
        off = rng.randrange(8 * MiB, BASE_SIZE - 64 * KiB) // (4 * KiB) * (4 * KiB)
        c.pread(off, rng.choice((4, 16, 64)) * KiB)


def timed(what, fn, *args):
    t = time.monotonic()
    try:
        fn(*args)
        say(f"{what}: {time.monotonic() - t:.2f} s")
        return True
    except h.NbdError as e:
        say(f"{what}: failed after {time.monotonic() - t:.2f} s: NBD error {e.errno} (EIO)")
        return False


def settle(d, node="ic0", timeout=20):
    """Wait until nothing is in flight or waiting to be stored."""
    h.wait_until(lambda: (lambda s: s["inflight-fetches"] == 0
                          and s["store-backlog-bytes"] == 0
                          and s["deferred-bytes"] == 0)(d.stats(node)),
                 timeout, "fetches and stores to end", interval=0.1)


# ---------------------------------------------------------------- scenarios

def scenario_cold(work, base):
    heading("slow boots: a cold cache")
    nk = nbdkit(work, base, filters=["delay"], args={"rdelay": "2ms"})
    with nk:
        cache = new_cache(work, "vm.cache")
        d = Daemon(work, [nbd_base(nk), cache_node(cache), ic_node()], ["ic0"])
        d.print_argv()
        with d.start():
            step("record a boot profile while the first VM boots on the empty cache")
            qmp_show(d, "intellicache-profile-start",
                     {"node-name": "ic0", "filename": str(work / "boot.profile")})
            c = client(d)
            timed("boot on an empty cache (6 MiB sequential, 300 scattered reads)",
                  boot_reads, c)
            c.close()
            qmp_show(d, "intellicache-profile-stop", {"node-name": "ic0"})
            settle(d)
            ctl(d, "status")
            st = stats_excerpt(d, ["hit-bytes", "hit-ahead-bytes", "miss-bytes", "wait-bytes",
                                   "read-ahead-bytes", "fetches", "fetched-bytes"])
            say("from the histograms of the same query:")
            block(latency_summary(st, ("hit", "miss", "fetch")))
            d.show_log({"intellicache_read_ahead"}, limit=4,
                       title="trace (intellicache_read_ahead only), first lines:")
        step("another host: an empty cache, warmed from the profile before the VM boots")
        cache2 = new_cache(work, "vm2.cache")
        d = Daemon(work, [nbd_base(nk), cache_node(cache2), ic_node()], ["ic0"], tag="qsd2")
        with d.start():
            t = time.monotonic()
            qmp_show(d, "intellicache-prefetch",
                     {"job-id": "warm0", "node-name": "ic0",
                      "profile": str(work / "boot.profile")})
            h.wait_until(lambda: not d.qmp.cmd("query-jobs"), 60, "the prefetch job to end",
                         interval=0.1)
            say(f"prefetch job ended after {time.monotonic() - t:.2f} s")
            settle(d)
            d.show_log({"intellicache_fetch_start"}, limit=3,
                       title="trace (intellicache_fetch_start only), first lines:")
            c = client(d)
            timed("the same boot on the warmed cache", boot_reads, c)
            c.close()
            ctl(d, "status")
            st = stats_excerpt(d, ["hit-bytes", "hit-ahead-bytes", "miss-bytes", "wait-bytes",
                                   "prefetch-bytes"])
            block(latency_summary(st, ("hit", "miss")))


def fio_with_top(d, runtime, tag):
    out = d.workdir / f"{tag}.json"
    argv = [f"--name={tag}", "--ioengine=nbd", f"--uri={d.uri_for('ic0')}", "--rw=randread",
            "--bs=4k", "--iodepth=16", "--randseed=3", f"--runtime={runtime}", "--time_based"]
    say("$ fio " + " ".join(shlex.quote(a) for a in argv) + " &")
    proc = h.fio_start(argv, out)
    time.sleep(1.0)
    ctl(d, "top", "--count", "2")
    r = h.fio_finish(proc, out, runtime + 60)
    say(f"fio: {r['iops']:.0f} IOPS, mean latency {r['lat_mean_us'] / 1000:.1f} ms")


def scenario_slow_base(work, base):
    heading("high miss latency: a slow base, too few fetches in flight")
    nk = nbdkit(work, base, filters=["delay"], args={"rdelay": "10ms"})
    with nk:
        cache = new_cache(work, "vm.cache")
        d = Daemon(work, [nbd_base(nk), cache_node(cache), ic_node(**{"max-inflight": 1})],
                   ["ic0"])
        d.print_argv()
        with d.start():
            step("cold 4 KiB random reads at queue depth 16, max-inflight 1")
            fio_with_top(d, 4, "fio1")
            st = d.stats()
            block(latency_summary(st, ("miss", "fetch")))
            d.log_lines()
            step("more fetches in flight, live")
            qmp_show(d, "blockdev-reopen", {"options": [ic_node(**{"max-inflight": 16})]})
            st = stats_excerpt(d, ["settings"])
            fio_with_top(d, 4, "fio2")
            d.show_log({"intellicache_fetch_done"}, limit=3,
                       title="trace (intellicache_fetch_done: ns is the base's time), "
                             "first lines:")


def blkdebug_cache(path, iotype):
    return {"driver": "blkdebug", "node-name": "cache0",
            "image": {"driver": "file", "filename": str(path)},
            "inject-error": [{"event": "pwritev", "iotype": iotype, "errno": 5}]}


def scenario_not_filling(work, base):
    heading("cache not filling: stopped, bypassed")
    nk = nbdkit(work, base)
    with nk:
        cache = new_cache(work, "vm.cache")
        d = Daemon(work, [nbd_base(nk), cache_node(cache), ic_node()], ["ic0"])
        with d.start():
            c = client(d)
            read_seq(c, 0, 4 * MiB)
            c.close()
            settle(d)
        for iotype, state in (("write", "stopped"), ("read", "bypassed")):
            step(f"the cache file fails {iotype}s (blkdebug, EIO): state {state}")
            d = Daemon(work, [nbd_base(nk), blkdebug_cache(cache, iotype), ic_node()],
                       ["ic0"], tag=f"qsd-{iotype}")
            d.print_argv()
            with d.start():
                c = client(d)
                c.pread(0, 64 * KiB)                   # a hit
                c.pread(32 * MiB, 64 * KiB)            # a miss: stored, first cache write
                time.sleep(0.3)
                c.pread(0, 64 * KiB)                   # a hit again (read error: bypass)
                c.pread(40 * MiB, 64 * KiB)            # another miss
                c.close()
                settle(d)
                ctl(d, "status")
                stats_excerpt(d, ["state", "cached-clusters", "stored-bytes", "store-errors",
                                  "store-skipped", "miss-bytes", "hit-bytes"])
                d.show_log({"intellicache_cache_failed", "intellicache_store_skip",
                            "intellicache_read_bypass", "intellicache_store"}, limit=10)
                if iotype == "write":
                    step("blockdev-reopen does not restart caching")
                    qmp_show(d, "blockdev-reopen", {"options": [ic_node()]})
                    say("state: " + d.stats()["state"])


def scenario_bounded(work, base):
    heading("cache not filling: a bounded cache, scans and room")
    nk = nbdkit(work, base)
    with nk:
        cache = new_cache(work, "vm.cache")
        d = Daemon(work, [nbd_base(nk), cache_node(cache, discard="unmap"),
                          ic_node(**{"cache-size": 16 * MiB})], ["ic0"])
        d.print_argv()
        with d.start():
            step("a guest reads an 8 MiB file twice (sequential 256 KiB reads)")
            for i in (1, 2):
                c = client(d)
                timed(f"read {i}", read_seq, c, 8 * MiB, 8 * MiB)
                c.close()
                settle(d)
            ctl(d, "status")
            stats_excerpt(d, ["cache-size", "used-bytes", "scan-bytes", "no-room-bytes",
                              "stored-bytes", "hit-bytes", "miss-bytes", "settings"])
            d.show_log({"intellicache_store_skip"}, limit=3)
            step("the threshold raised live above the file's size; the file read twice more")
            qmp_show(d, "blockdev-reopen",
                     {"options": [ic_node(**{"cache-size": 16 * MiB,
                                             "scan-threshold": 12 * MiB})]})
            for i in (3, 4):
                c = client(d)
                timed(f"read {i}", read_seq, c, 8 * MiB, 8 * MiB)
                c.close()
                settle(d)
            ctl(d, "status")
            stats_excerpt(d, ["used-bytes", "scan-bytes", "stored-bytes", "hit-bytes"])
            step("random 4 KiB reads over the whole 64 MiB base (fio, QD16, 4 s) "
                 "through the 16 MiB cache")
            r = h.run_fio(d.uri_for("ic0"), work, runtime=4, tag="fio-bounded")
            say(f"fio: {r['iops']:.0f} IOPS")
            settle(d)
            ctl(d, "status")
            stats_excerpt(d, ["used-bytes", "evicted-bytes", "no-room-bytes", "scan-bytes",
                              "stored-bytes"])
            d.show_log({"intellicache_evict_batch", "intellicache_evict_done"}, limit=4)


def scenario_base_errors(work, base):
    heading("base errors: a flaky base")
    errors_on = work / "errors-on"
    nk = nbdkit(work, base, filters=["error"],
                args={"error-pread": "EIO", "error-pread-rate": "20%",
                      "error-file": errors_on})
    with nk:
        cache = new_cache(work, "vm.cache")
        step("with errors from the start, the node does not open")
        errors_on.touch()
        say(f"$ touch {errors_on}")
        d = Daemon(work, [nbd_base(nk), cache_node(cache), ic_node()], ["ic0"], tag="qsd0")
        d.print_argv()
        try:
            d.start()
        except h.HarnessError:
            block(h.log_tail(d.log_path, 3))
        step("errors once the node is open")
        errors_on.unlink()
        d = Daemon(work, [nbd_base(nk), cache_node(cache), ic_node()], ["ic0"])
        with d.start():
            errors_on.touch()
            say(f"$ touch {errors_on}")
            c = client(d)
            timed("200 reads of 64 KiB at scattered offsets", lambda: [
                c.pread(random.Random(i).randrange(0, BASE_SIZE // (64 * KiB)) * 64 * KiB,
                        64 * KiB) for i in range(200)])
            c.close()
            settle(d)
            ctl(d, "status")
            stats_excerpt(d, ["base-state", "fetches", "fetch-errors", "fetch-retries",
                              "miss-timeouts", "fast-failures"])
            evs = d.qmp.events("INTELLICACHE_BASE_STATE_CHANGE")
            say(f"INTELLICACHE_BASE_STATE_CHANGE events received: {len(evs)}, the first two:")
            for e in evs[:2]:
                block(json.dumps({"event": e["event"], "data": e["data"]}))
            d.show_log({"intellicache_read_retry", "intellicache_base_state"}, limit=6,
                       warnings=False, title="trace, first lines:")


def scenario_outage(work, base):
    heading("base errors: an outage")
    nk = nbdkit(work, base)
    try:
        cache = new_cache(work, "vm.cache")
        d = Daemon(work, [nbd_base(nk), cache_node(cache), ic_node(**{"miss-timeout": 3})],
                   ["ic0"])
        d.print_argv()
        with d.start():
            c = client(d)
            read_seq(c, 0, 4 * MiB)
            settle(d)
            step("nbdkit killed (SIGKILL)")
            nk.kill9()
            timed("a read of cached data", c.pread, 0, 64 * KiB)
            timed("a read of data not cached", c.pread, 32 * MiB, 64 * KiB)
            timed("another read of data not cached", c.pread, 40 * MiB, 64 * KiB)
            events(d, wait=0.2)
            p0, t0 = d.stats()["probes"], time.monotonic()
            time.sleep(2.5)
            p1, t1 = d.stats()["probes"], time.monotonic()
            say(f"probes: {p0}, then {p1} {t1 - t0:.1f} s later")
            ctl(d, "status")
            stats_excerpt(d, ["base-state", "fetch-errors", "fetch-retries", "miss-timeouts",
                              "fast-failures", "probes"])
            d.show_log({"intellicache_read_retry", "intellicache_base_state",
                        "intellicache_probe", "intellicache_read_fail_fast"}, limit=14)
            step("nbdkit started again")
            t = time.monotonic()
            nk.start()
            h.wait_until(lambda: d.stats()["base-state"] == "up", 30, "the base to be up")
            say(f"base up {time.monotonic() - t:.2f} s after nbdkit was started")
            events(d)
            timed("a read of data not cached", c.pread, 48 * MiB, 64 * KiB)
            c.close()
            d.show_log({"intellicache_base_state", "intellicache_probe"}, limit=4)
            stats_excerpt(d, ["base-state", "probes", "miss-timeouts", "fast-failures"])
            t = time.monotonic()
        say(f"daemon stopped in {time.monotonic() - t:.1f} s")
    finally:
        nk.stop()


def scenario_disk_full(work, base):
    heading("disk full")
    mnt = work / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mnt)],
                   check=True, timeout=30)
    say(f"$ mount -t tmpfs -o size=24m,mode=0700 tmpfs {clean(str(mnt))}")
    try:
        filler = mnt / "other.img"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=12",
                        "status=none"], check=True, timeout=30)
        say(f"$ dd if=/dev/zero of={filler} bs=1M count=12 status=none   # another user's file")
        r = subprocess.run(["df", "-h", str(mnt)], capture_output=True, text=True, timeout=10)
        say(f"$ df -h {mnt}")
        block(r.stdout)
        nk = nbdkit(work, base)
        with nk:
            cache = new_cache(mnt, "vm.cache")
            # tmpfs has no O_DIRECT
            cnode = {"driver": "file", "node-name": "cache0", "filename": str(cache),
                     "discard": "unmap"}
            d = Daemon(work, [nbd_base(nk), cnode], [])
            d.print_argv()
            with d.start():
                step("a bound larger than the file system's free space")
                qmp_show(d, "blockdev-add", ic_node(**{"cache-size": 64 * MiB}))
                step("no bound: the 64 MiB base read whole into 12 MiB of free space")
                qmp_show(d, "blockdev-add", ic_node())
                qmp_show(d, "block-export-add", {"type": "nbd", "id": "e0", "node-name": "ic0"})
                timed("nbdcopy of the whole export", h.nbd_read_all, d.uri_for("ic0"))
                settle(d)
                ctl(d, "status")
                stats_excerpt(d, ["state", "cached-clusters", "stored-bytes", "store-errors",
                                  "store-skipped"])
                d.show_log({"intellicache_cache_failed", "intellicache_store_skip"}, limit=6)
                r = subprocess.run(["df", "-h", str(mnt)], capture_output=True, text=True,
                                   timeout=10)
                say(f"$ df -h {mnt}")
                block(r.stdout)
                step("recovery: room made, the node opened again, with a bound")
                filler.unlink()
                say(f"$ rm {filler}")
                qmp_show(d, "block-export-del", {"id": "e0"})
                h.wait_until(lambda: not d.qmp.cmd("query-block-exports"), 30,
                             "the export to go")
                qmp_show(d, "blockdev-del", {"node-name": "ic0"})
                qmp_show(d, "blockdev-add", ic_node(**{"cache-size": 20 * MiB}))
                qmp_show(d, "block-export-add", {"type": "nbd", "id": "e0", "node-name": "ic0"})
                timed("nbdcopy of the whole export", h.nbd_read_all, d.uri_for("ic0"))
                settle(d)
                ctl(d, "status")
                stats_excerpt(d, ["state", "cache-size", "used-bytes", "store-errors",
                                  "scan-bytes", "no-room-bytes"])
                r = subprocess.run(["df", "-h", str(mnt)], capture_output=True, text=True,
                                   timeout=10)
                say(f"$ df -h {mnt}")
                block(r.stdout)
                d.show_log({"intellicache_open"}, limit=4)
    finally:
        subprocess.run(["umount", str(mnt)], timeout=60)


def scenario_verify(work, base):
    heading("is my data right? inspect and verify")
    nk = nbdkit(work, base)
    with nk:
        cache = new_cache(work, "vm.cache")
        d = Daemon(work, [nbd_base(nk), cache_node(cache), ic_node()], ["ic0"])
        with d.start():
            h.nbd_read_all(d.uri_for("ic0"))
            settle(d)
        ctl(None, "inspect", cache)
        base_uri = f"nbd+unix:///?socket={nk.socket}"
        ctl(None, "verify", cache, "--base", base_uri)
        info = json.loads(ctl(None, "inspect", cache, "--json", quiet=True).stdout)
        off = info["data-offset"] + 1234 * info["cluster-size"]
        with open(cache, "r+b") as f:
            f.seek(off)
            f.write(b"\xff" * 4096)
        say(f"(4 KiB of 0xff written into the cache file at byte {off}: cluster 1234)")
        ctl(None, "verify", cache, "--base", base_uri)
        step("the fix: an empty cache file (formatted at the next open)")
        os.truncate(cache, 0)
        say(f"$ truncate -s 0 {cache}")


def scenario_reopen(work, base):
    heading("admin: tunables changed live")
    nk = nbdkit(work, base)
    with nk:
        cache = new_cache(work, "vm.cache")
        d = Daemon(work, [nbd_base(nk), cache_node(cache), ic_node()], ["ic0"])
        with d.start():
            stats_excerpt(d, ["settings"])
            qmp_show(d, "blockdev-reopen", {"options": [ic_node(**{
                "max-inflight": 32, "read-ahead": 4 * MiB, "miss-timeout": 60})]})
            stats_excerpt(d, ["settings"])
            step("options left out go back to their defaults")
            qmp_show(d, "blockdev-reopen", {"options": [ic_node(**{"max-inflight": 32})]})
            stats_excerpt(d, ["settings"])
            step("an option that changes the data is refused")
            qmp_show(d, "blockdev-reopen", {"options": [ic_node(**{"cluster-size": 65536})]})
            qmp_show(d, "blockdev-reopen",
                     {"options": [ic_node(**{"base-fingerprint": "golden-2026.12"})]})
            step("trace events switched at run time (QEMU patch 0006): all off, "
                 "then one on")
            ctl(d, "trace", "--off")
            ctl(d, "trace", "intellicache_read_plan", "--on")
            d.log_lines()
            h.nbd_read_all(d.uri_for("ic0"))
            d.show_log(limit=3)
            ctl(d, "trace", "intellicache_read_*")


def scenario_upgrade(work, base):
    heading("admin: a new version of a base image")
    v1 = work / "golden-v1.img"
    v1.write_bytes(Path(base).read_bytes())
    nk = nbdkit(work, v1, tag="nk1")
    cache = new_cache(work, "golden.cache")
    with nk:
        d = Daemon(work, [nbd_base(nk), cache_node(cache),
                          ic_node(**{"base-fingerprint": "golden-2026.11"})], ["ic0"])
        d.print_argv()
        with d.start():
            h.nbd_read_all(d.uri_for("ic0"))
            settle(d)
    ctl(None, "inspect", cache, limit=8)
    step("v2: v1 with 1 MiB changed in place at 1 MiB (between the fingerprint's samples)")
    with open(v1, "r+b") as f:
        f.seek(1 * MiB)
        f.write(random.Random(99).randbytes(1 * MiB))
    nk = nbdkit(work, v1, tag="nk2")
    with nk:
        for fp in ("golden-2026.11", "golden-2026.12"):
            step(f"opened with base-fingerprint {fp}")
            d = Daemon(work, [nbd_base(nk), cache_node(cache),
                              ic_node(**{"base-fingerprint": fp})], ["ic0"], tag=f"qsd-{fp}")
            with d.start():
                stats_excerpt(d, ["cached-clusters"])
                d.show_log({"intellicache_open"}, limit=4)
                if fp == "golden-2026.12":
                    h.nbd_read_all(d.uri_for("ic0"))
                    settle(d)
                    say("(the whole export read: the cache holds v2)")
            ctl(None, "verify", cache, "--base", f"nbd+unix:///?socket={nk.socket}", limit=4)
    step("v3: another image of the same size at a new path, the same cache file "
         "(full of v2), base-fingerprint unchanged")
    v3 = work / "golden-v3.img"
    h.make_base_image(v3, BASE_SIZE, seed=13)
    nk = nbdkit(work, v3, tag="nk3")
    with nk:
        d = Daemon(work, [nbd_base(nk), cache_node(cache),
                          ic_node(**{"base-fingerprint": "golden-2026.12"})], ["ic0"],
                   tag="qsd-v3")
        with d.start():
            stats_excerpt(d, ["cached-clusters"])
            d.show_log({"intellicache_open"}, limit=4)
    ctl(None, "inspect", cache, limit=8)


def scenario_pool(work, base):
    heading("admin: one budget for several caches")
    nk = nbdkit(work, base)
    with nk:
        blockdevs = [nbd_base(nk)]
        for vm in ("a", "b"):
            cache = new_cache(work, f"{vm}.cache")
            blockdevs.append(dict(cache_node(cache, discard="unmap"), **{"node-name": f"cache-{vm}"}))
            blockdevs.append(h.intellicache_node(f"ic-{vm}", "base0", f"cache-{vm}",
                                                 pool="pool0"))
        d = Daemon(work, blockdevs, ["ic-a", "ic-b"],
                   objects=["intellicache-pool,id=pool0,size=24M"])
        d.print_argv()
        with d.start():
            outs = []
            for vm in ("a", "b"):
                argv = [f"--name=fio-{vm}", "--ioengine=nbd", f"--uri={d.uri_for('ic-' + vm)}",
                        "--rw=randread", "--bs=4k", "--iodepth=16", f"--randseed={ord(vm)}",
                        "--runtime=4", "--time_based"]
                say("$ fio " + " ".join(shlex.quote(a) for a in argv) + " &")
                out = work / f"fio-{vm}.json"
                outs.append((h.fio_start(argv, out), out))
            for proc, out in outs:
                h.fio_finish(proc, out, 60)
            settle(d, "ic-a")
            settle(d, "ic-b")
            ctl(d, "status")
            for prop in ("size", "used", "members"):
                qmp_show(d, "qom-get", {"path": "/objects/pool0", "property": prop})
            step("ic-b moved to a pool of its own, 8 MiB, live: what it holds "
                 "moves with it, and it frees down to the new size")
            qmp_show(d, "object-add", {"qom-type": "intellicache-pool", "id": "pool1",
                                       "size": 8 * MiB})
            qmp_show(d, "blockdev-reopen", {"options": [h.intellicache_node(
                "ic-b", "base0", "cache-b", pool="pool1")]})
            h.wait_until(lambda: d.stats("ic-b")["used-bytes"] <= 8 * MiB, 10,
                         "ic-b within its new pool", interval=0.1)
            ctl(d, "status")
            for pool in ("pool0", "pool1"):
                for prop in ("used", "members"):
                    qmp_show(d, "qom-get", {"path": f"/objects/{pool}", "property": prop})


SCENARIOS = {
    "cold": scenario_cold,
    "slow-base": scenario_slow_base,
    "not-filling": scenario_not_filling,
    "bounded": scenario_bounded,
    "base-errors": scenario_base_errors,
    "outage": scenario_outage,
    "disk-full": scenario_disk_full,
    "verify": scenario_verify,
    "reopen": scenario_reopen,
    "upgrade": scenario_upgrade,
    "pool": scenario_pool,
}


def main(argv):
    global WORK
    if "--list" in argv:
        print("\n".join(SCENARIOS))
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print(textwrap.dedent(__doc__))
        return 0
    names = argv or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {' '.join(unknown)} (--list)", file=sys.stderr)
        return 2
    missing = h.missing_programs(["nbdkit", "nbdcopy", "fio"])
    if missing or not h.qsd_binary().exists() or not CTL.exists():
        print(f"missing: {' '.join(missing + [str(p) for p in (h.qsd_binary(), CTL) if not p.exists()])}",
              file=sys.stderr)
        return 2
    h.exit_on_sigterm()
    failed = []
    with tempfile.TemporaryDirectory(prefix="ic-trouble-") as tmp:
        WORK = Path(tmp)
        base = WORK / "base.img"
        h.make_base_image(base, BASE_SIZE, seed=12)
        say(f"work directory $WORK, base image $WORK/base.img ({BASE_SIZE // MiB} MiB, "
            "seeded random bytes)")
        for n in names:
            sub = WORK / n
            sub.mkdir()
            t = time.monotonic()
            try:
                SCENARIOS[n](sub, base)
            except Exception as e:  # noqa: BLE001 -- report and go on with the others
                say(f"!! scenario {n} failed: {e!r}")
                failed.append(n)
            say(f"[{n}: {time.monotonic() - t:.1f} s]")
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
