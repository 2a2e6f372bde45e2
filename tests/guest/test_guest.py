"""Reads from several threads at once: a TCG guest over virtio-blk with its
queues spread over two iothreads.

QEMU 10's virtio-blk with iothread-vq-mapping runs each virtqueue in the
iothread it is mapped to: the block layer, and so the disk's node, is then
entered from several threads at once, while QMP queries run in the main
loop.  Each test class boots one guest (scripts/guest-image.sh) with 2
vCPUs (MTTCG: one host thread each) and a virtio-blk-pci disk with 4
queues mapped over iothreads io0 and io1.  The guest uses one queue per
vCPU, so io0 serves vCPU 0 and io1 vCPU 1.  Its init runs 4 readers at
once, pinned alternately to both vCPUs, with O_DIRECT (so every read
reaches the device), and prints the SHA-256 of what each read.  This runs
twice: cold (cache empty; readers in pairs, the two of a pair on both
vCPUs reading the same half of the disk at the same time, so that both
threads miss on the same clusters) and warm (cache filled; each reader a
quarter of the disk), with a loop of QMP queries (query-named-block-nodes,
query-blockstats) running from a second monitor the whole time.

Checks (one test each, on the recorded run):
- every region's SHA-256 equals that of the base file's bytes: equal
  digests of a 256-bit hash mean equal bytes short of a collision, which
  corruption does not produce by chance (probability 2^-256 per region);
- both iothreads handled reads: the trace event virtio_blk_handle_read
  (emitted in the thread handling the request; QEMU's log trace backend
  prints that thread's id) is seen from both iothreads' thread ids
  (query-iothreads), from no other thread, interleaved in time, and both
  threads used CPU time while the guest read (/proc/PID/task/TID/stat);
- every QMP reply of the loop was well formed and named the node;
- the intellicache node's counters add up (intellicache test only);
- QEMU's stderr has no sanitizer report, and QEMU exited with status 0.

Environment: IC_QEMU_BUILD (QEMU's build directory, default
build/qemu/build), IC_GUEST_DIR (kernel and initramfs, default build/guest),
IC_GUEST_MIB (size of the base image, default 128), IC_GUEST_KEEP=1 keeps
the work directory.
"""

import hashlib
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import unittest

import guestvm
from guestvm import GuestError, GuestVM, Monitor

MiB = 1 << 20
BASE_MIB = int(os.environ.get("IC_GUEST_MIB", "128"))
READERS = 4
BLOCK = 64 * 1024
# (pass, readers per region): cold in pairs over halves, warm alone
PASSES = (("cold", 2), ("warm", 1))
IOTHREADS = ("io0", "io1")
QMP_LOOP_MAX = 100000          # queries at most
QMP_LOOP_PAUSE = 0.005         # seconds between two queries
BOOT_TIMEOUT = 240
PASS_TIMEOUT = 420
SETTLE_TIMEOUT = 120

TRACE_LINE = re.compile(r"^(\d+)@(\d+)\.(\d+):virtio_blk_handle_read ")


def prerequisites():
    """What is missing to run the guest (a failure, not a skip), or None."""
    build = guestvm.qemu_build_dir()
    if not os.access(guestvm.qemu_system(build), os.X_OK):
        return f"no {guestvm.qemu_system(build)} (scripts/build-qemu.sh builds it)"
    gdir = guestvm.guest_dir()
    for f in ("vmlinuz", "initramfs.gz"):
        if not os.path.isfile(os.path.join(gdir, f)):
            return f"no {gdir}/{f} (scripts/guest-image.sh makes it)"
    return None


def make_base(path, size, seed):
    """A file of @size seeded random bytes; returns them."""
    data = random.Random(seed).randbytes(size)
    with open(path, "wb") as f:
        f.write(data)
    return data


def create_cache_file(path):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


def ic_stats(mon, node):
    """The intellicache node's counters and state: query-blockstats'
    driver-specific when present, else query-named-block-nodes'
    format-specific (both merged, query-blockstats winning)."""
    result = {}
    for n in mon.cmd("query-named-block-nodes", flat=True):
        if n.get("node-name") == node:
            fs = n.get("image", {}).get("format-specific")
            if fs and fs.get("type") == "intellicache":
                result.update(fs["data"])
    for s in mon.cmd("query-blockstats", **{"query-nodes": True}):
        if s.get("node-name") == node:
            ds = s.get("driver-specific")
            if ds and ds.get("driver") == "intellicache":
                result.update({k: v for k, v in ds.items() if k != "driver"})
    return result


class QmpLoop(threading.Thread):
    """query-named-block-nodes (flat) and query-blockstats (query-nodes)
    in turn, from a monitor of its own, until stopped; bounded in count
    and time.  Each reply is checked by @check(command, reply), which
    returns a list of problems."""

    def __init__(self, sock, check, max_seconds):
        super().__init__(daemon=True)
        self.sock = sock
        self.check = check
        self.max_seconds = max_seconds
        self.stop_event = threading.Event()
        self.counts = {"query-named-block-nodes": 0, "query-blockstats": 0}
        self.problems = []

    def run(self):
        try:
            mon = Monitor(self.sock, 60)
        except Exception as e:  # pylint: disable=broad-except
            self.problems.append(f"QMP connection failed: {e!r}")
            return
        deadline = time.monotonic() + self.max_seconds
        try:
            for i in range(QMP_LOOP_MAX):
                if self.stop_event.is_set() or time.monotonic() > deadline:
                    break
                if i % 2 == 0:
                    name, args = "query-named-block-nodes", {"flat": True}
                else:
                    name, args = "query-blockstats", {"query-nodes": True}
                try:
                    reply = mon.cmd(name, **args)
                except Exception as e:  # pylint: disable=broad-except
                    self.problems.append(f"{name}: {e!r}")
                    break
                self.counts[name] += 1
                self.problems += self.check(name, reply)
                if len(self.problems) > 20:
                    break
                time.sleep(QMP_LOOP_PAUSE)
        finally:
            mon.close()

    def stop(self):
        self.stop_event.set()
        self.join(timeout=120)


class GuestReads:
    """The scenario, run once per class by setUpClass; the tests check
    its record.  Subclasses say which node the disk uses."""

    NODE = None            # the disk's node name
    SEED = 0
    QUEUES = 4             # virtqueues of the disk, mapped over IOTHREADS

    @classmethod
    def blockdevs(cls, base, cache):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        reason = prerequisites()
        if reason:
            raise GuestError(reason)
        cls.work = tempfile.mkdtemp(prefix=f"ic-guest-{cls.__name__}-")
        cls.size = BASE_MIB * MiB
        base = os.path.join(cls.work, "base.img")
        cache = os.path.join(cls.work, "cache.img")
        cls.data = make_base(base, cls.size, cls.SEED)
        cls.trace = os.path.join(cls.work, "trace.log")
        device = {"driver": "virtio-blk-pci", "drive": cls.NODE, "num-queues": cls.QUEUES,
                  "iothread-vq-mapping": [{"iothread": i} for i in IOTHREADS]}
        cls.vm = GuestVM(cls.work, cls.blockdevs(base, cache), device, iothreads=IOTHREADS,
                         extra=["-trace", f"enable=virtio_blk_handle_read,file={cls.trace}",
                                # trace lines with the thread id and time
                                "-msg", "timestamp=on"])
        cls.record = {}
        t0 = time.monotonic()
        try:
            cls.run_scenario()
        except BaseException:
            cls.vm.kill()
            cls.report(time.monotonic() - t0)
            raise
        cls.record["seconds"] = time.monotonic() - t0
        cls.report(cls.record["seconds"])

    @classmethod
    def report(cls, seconds):
        """One line of figures (on stderr, with unittest's output)."""
        rec = cls.record
        parts = [f"{seconds:.1f} s in all"]
        if "boot_seconds" in rec:
            parts.append(f"boot {rec['boot_seconds']} s")
        for tag, _ in PASSES:
            if f"{tag}_seconds" in rec:
                parts.append(f"{tag} {rec[f'{tag}_seconds']} s")
        if "qmp_counts" in rec:
            parts.append(f"{sum(rec['qmp_counts'].values())} QMP queries")
        if "trace" in rec:
            names = {tid: i for i, tid in rec["tids"].items()}
            by = {}
            for _, tid in rec["trace"]:
                by[names.get(tid, tid)] = by.get(names.get(tid, tid), 0) + 1
            parts.append(f"read requests by thread {by}")
        if "ticks" in rec:
            parts.append(f"CPU ticks {rec['ticks']}")
        if rec.get("stats_warm"):
            w = rec["stats_warm"]
            parts.append("counters " + ", ".join(
                f"{k} {w[k]}" for k in ("hit-bytes", "miss-bytes", "wait-bytes", "fetches",
                                        "store-skipped") if k in w))
        sys.stderr.write(f"\n{cls.__name__}: {'; '.join(parts)} ({cls.work})\n")
        sys.stderr.flush()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "vm", None) is not None:
            cls.vm.kill()
        if getattr(cls, "work", None) and os.environ.get("IC_GUEST_KEEP") != "1":
            shutil.rmtree(cls.work, ignore_errors=True)

    @classmethod
    def check_reply(cls, name, reply):
        """Problems with one reply of the QMP loop (a list of strings)."""
        if not isinstance(reply, list):
            return [f"{name}: not a list: {reply!r}"]
        nodes = [r for r in reply if r.get("node-name") == cls.NODE]
        if len(nodes) != 1:
            return [f"{name}: {len(nodes)} entries for {cls.NODE}"]
        n = nodes[0]
        if name == "query-named-block-nodes":
            if n.get("drv") != cls.DRIVER or "image" not in n:
                return [f"{name}: bad entry {n!r}"]
        else:
            if "stats" not in n or "rd_bytes" not in n["stats"]:
                return [f"{name}: bad entry {n!r}"]
        return []

    @classmethod
    def run_scenario(cls):
        vm, rec = cls.vm, cls.record
        t0 = time.monotonic()
        vm.start()
        rec["ready"] = vm.wait_ready(BOOT_TIMEOUT)
        rec["boot_seconds"] = round(time.monotonic() - t0, 1)
        tids = vm.iothread_tids()
        rec["tids"] = tids
        ticks0 = {i: vm.thread_ticks(tids[i]) for i in IOTHREADS}

        loop = QmpLoop(vm.qmp_socks[1], cls.check_reply, 2 * PASS_TIMEOUT + SETTLE_TIMEOUT)
        loop.start()
        try:
            rec["stats0"] = cls.node_stats()
            rec["sums"] = {}
            for tag, share in PASSES:
                if tag == "warm":
                    cls.settle()
                    rec["stats_cold"] = cls.node_stats()
                    vm.drop_caches()
                sums, secs = vm.read_regions(tag, BLOCK, READERS, cls.region(share), share,
                                             PASS_TIMEOUT)
                rec["sums"][tag] = sums
                rec[f"{tag}_seconds"] = secs
            cls.settle()
            rec["stats_warm"] = cls.node_stats()
        finally:
            loop.stop()
        rec["qmp_counts"] = loop.counts
        rec["qmp_problems"] = loop.problems
        rec["ticks"] = {i: vm.thread_ticks(tids[i]) - ticks0[i] for i in IOTHREADS}
        rec["exit"] = vm.quit()
        rec["trace"] = cls.read_trace()

    @classmethod
    def region(cls, share):
        """Size of a region when @share readers read each."""
        return cls.size * share // READERS

    @classmethod
    def pass_bytes(cls, tag):
        """Bytes the guest reads in pass @tag."""
        share = dict(PASSES)[tag]
        return READERS * cls.region(share)

    @classmethod
    def node_stats(cls):
        return None

    @classmethod
    def settle(cls):
        pass

    @classmethod
    def read_trace(cls):
        """[(seconds, tid)] of virtio_blk_handle_read, in file order."""
        events = []
        with open(cls.trace, encoding="ascii", errors="replace") as f:
            for line in f:
                m = TRACE_LINE.match(line)
                if m:
                    events.append((int(m.group(2)) + int(m.group(3)) / 1e6, int(m.group(1))))
        return events

    # -- the checks --------------------------------------------------------

    def test_guest_sees_the_disk(self):
        ready = self.record["ready"]
        self.assertEqual(ready["cpus"], 2)
        self.assertEqual(ready["size"], self.size)
        # one virtqueue per vCPU, so both iothreads get requests
        self.assertGreaterEqual(ready["queues"], 2)

    def check_sums(self, tag):
        sums = self.record["sums"][tag]
        share = dict(PASSES)[tag]
        size = self.region(share)
        self.assertEqual(sorted(sums), list(range(READERS)))
        for i in range(READERS):
            r = i // share
            want = hashlib.sha256(self.data[r * size:(r + 1) * size]).hexdigest()
            self.assertEqual(sums[i], want, f"{tag} pass, reader {i}, region {r}")

    def test_cold_data(self):
        self.check_sums("cold")

    def test_warm_data(self):
        self.check_sums("warm")

    def test_both_iothreads_read(self):
        tids = self.record["tids"]
        events = self.record["trace"]
        by_tid = {}
        for _, tid in events:
            by_tid[tid] = by_tid.get(tid, 0) + 1
        io_tids = {tids[i]: i for i in IOTHREADS}
        # all of the disk's reads ran in the iothreads, and both took part
        self.assertEqual(set(by_tid) - set(io_tids), set(),
                         f"reads handled outside the iothreads: {by_tid}")
        workload = sum(self.pass_bytes(tag) for tag, _ in PASSES) // BLOCK
        for i in IOTHREADS:
            self.assertGreater(by_tid.get(tids[i], 0), workload // 10,
                               f"{i} handled few reads: {by_tid}, iothreads {tids}")
        # at the same time: the two threads' reads interleave
        switches = sum(1 for a, b in zip(events, events[1:]) if a[1] != b[1])
        self.assertGreater(switches, workload // 10, f"{switches} switches only")
        # and both threads worked (CPU time while the guest read)
        for i in IOTHREADS:
            self.assertGreater(self.record["ticks"][i], 0, f"{i} used no CPU time")

    def test_qmp_loop(self):
        counts = self.record["qmp_counts"]
        self.assertEqual(self.record["qmp_problems"], [])
        for name, n in counts.items():
            self.assertGreater(n, 10, f"{name} ran {n} times only")

    def test_no_sanitizer_report(self):
        self.assertEqual(self.vm.sanitizer_errors(), [])

    def test_clean_exit(self):
        self.assertEqual(self.record["exit"], 0, self.vm.stderr_tail())


class RawDiskTest(GuestReads, unittest.TestCase):
    """The same with the base file as the disk: the machinery without
    intellicache (kernel, initramfs, iothreads, QMP loop, trace)."""

    NODE = "base0"
    DRIVER = "file"
    SEED = 1

    @classmethod
    def blockdevs(cls, base, cache):
        return [{"driver": "file", "node-name": "base0", "filename": base,
                 "read-only": True}]


class IntellicacheTest(GuestReads, unittest.TestCase):
    """The disk is the intellicache node over the base file, with an
    empty cache file."""

    NODE = "ic0"
    DRIVER = "intellicache"
    SEED = 2
    OPTIONS = {}

    @classmethod
    def blockdevs(cls, base, cache):
        create_cache_file(cache)
        return [{"driver": "file", "node-name": "base0", "filename": base,
                 "read-only": True},
                {"driver": "file", "node-name": "cache0", "filename": cache},
                dict({"driver": "intellicache", "node-name": "ic0", "file": "base0",
                      "cache-file": "cache0", "read-only": True}, **cls.OPTIONS)]

    @classmethod
    def node_stats(cls):
        return ic_stats(cls.vm.qmp, cls.NODE)

    @classmethod
    def setUpClass(cls):
        cls.last_served = 0
        super().setUpClass()

    @classmethod
    def check_reply(cls, name, reply):
        """Also: each snapshot of the node's counters is consistent (taken
        while reads run in two iothreads): durable <= cached <= all
        clusters, and the bytes served never decrease."""
        problems = super().check_reply(name, reply)
        if problems:
            return problems
        n = next(r for r in reply if r.get("node-name") == cls.NODE)
        if name == "query-blockstats":
            data = n.get("driver-specific")
            if data is not None and data.get("driver") != "intellicache":
                return [f"{name}: driver-specific of another driver: {data!r}"]
        else:
            fs = n["image"].get("format-specific")
            if fs is not None and fs.get("type") != "intellicache":
                return [f"{name}: format-specific of another driver: {fs!r}"]
            data = fs and fs.get("data")
        if not data:
            return []
        if "cached-clusters" in data:
            if not (data.get("durable-clusters", 0) <= data["cached-clusters"]
                    <= data["cluster-count"]):
                problems.append(f"{name}: inconsistent cluster counts {data!r}")
        if all(k in data for k in ("hit-bytes", "miss-bytes", "wait-bytes")):
            served = data["hit-bytes"] + data["miss-bytes"] + data["wait-bytes"]
            if served < cls.last_served:
                problems.append(f"{name}: bytes served went down from {cls.last_served} "
                                f"to {served}")
            cls.last_served = served
        return problems

    @classmethod
    def settle(cls):
        """Wait until nothing fetched or deferred waits to be stored
        (bounded)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            s = cls.node_stats()
            if (s.get("inflight-fetches", 0) == 0 and s.get("store-backlog-bytes", 0) == 0
                    and s.get("deferred-bytes", 0) == 0):
                return
            if time.monotonic() > deadline:
                raise GuestError(f"stores still pending after {SETTLE_TIMEOUT} s: {s}")
            time.sleep(0.2)

    def test_counters(self):
        s0, cold, warm = (self.record[k] for k in ("stats0", "stats_cold", "stats_warm"))
        for s in (s0, cold, warm):
            self.assertTrue(s, "the node reports no statistics")
        self.assertEqual(warm["state"], "caching")
        for k in ("fetch-errors", "store-errors"):
            self.assertEqual(warm[k], 0, k)
        def served(s):
            return s["hit-bytes"] + s["miss-bytes"] + s["wait-bytes"]

        # cold: every byte the guest read was served; all the base was
        # fetched (the guest read all of it), and stored
        self.assertGreaterEqual(served(cold) - served(s0), self.pass_bytes("cold"))
        self.assertGreater(cold["miss-bytes"], 0)
        self.assertGreaterEqual(cold["fetched-bytes"], self.size)
        self.assertGreater(cold["stored-bytes"], 0)
        # warm: reads served, from the cache where it had the data
        self.assertGreaterEqual(served(warm) - served(cold), self.pass_bytes("warm"))
        self.assertGreater(warm["hit-bytes"] - cold["hit-bytes"], 0)
        if cold["store-skipped"] == 0:
            # every cluster was stored after the cold pass: warm is all hits
            self.assertEqual(cold["cached-clusters"], cold["cluster-count"])
            self.assertGreaterEqual(warm["hit-bytes"] - cold["hit-bytes"],
                                    self.pass_bytes("warm"))
            self.assertEqual(warm["fetches"], cold["fetches"])
        for k, v in self.OPTIONS.items():
            if k == "read-ahead" and v == 0:
                self.assertEqual(warm["read-ahead-bytes"], 0)



class IntellicacheMissTest(IntellicacheTest):
    """The same without read-ahead and with 4 fetch slots: the cold pass
    is all misses, the two readers of a pair (two threads) ask for the
    same clusters and contend for few fetch slots."""

    SEED = 3
    OPTIONS = {"read-ahead": 0, "max-inflight": 4}


if __name__ == "__main__":
    unittest.main()
