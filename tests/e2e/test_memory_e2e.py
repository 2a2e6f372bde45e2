"""An idle node gives the heap memory of its fetch buffers back.

Fetch buffers come from malloc()'s heap and, with stores behind the
replies, many are alive at once; freed, they stayed resident between
blocks that live on (3.7 MiB of heap after 2000 random 4 KiB reads over a
1 TiB base).  Once a node is idle after at least 4 MiB of fetch buffers,
the metadata sync after its last stores calls malloc_trim(0)
(ic_buf_trim(), docs/design.rst, Memory).  This test reads a burst at
QD16 and checks that the trim happened (its trace event), once the stores
were recorded; and that a few reads (below the 4 MiB) trim nothing.  How
much memory that saves is the benchmark's to measure (bench.py --parts
memory, its target): this test only prints the heap's growth.
"""

import re
import sys
import unittest

import intellicache_harness as h

# Fetches of 64 KiB clusters: 3000 random 4 KiB reads go through about
# 190 MiB of fetch buffers, 16 at a time and more waiting to be stored.
# The heap's resident growth over the burst, measured after it, was
# 2.1-3.0 MiB without the trim, 1.3 MiB with it.
READS = 3000


def heap_rss_kib(pid):
    """Resident KiB of the [heap] mapping of @pid (0 if it has none)."""
    kib, in_heap = 0, False
    with open(f"/proc/{pid}/smaps", encoding="ascii") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                in_heap = line.rstrip().endswith("[heap]")
            elif in_heap and line.startswith("Rss:"):
                kib += int(line.split()[1])
    return kib


class MemoryE2E(h.DaemonTestCase):
    PROGRAMS = ("nbdkit", "fio")
    summary = []

    @classmethod
    def tearDownClass(cls):
        # After unittest's "... ok" lines, which run.sh counts.
        for line in cls.summary:
            print(line, file=sys.stderr)
        super().tearDownClass()

    def start_node(self, tag):
        nk = h.Nbdkit(self.dir, "pattern", {"size": "1G"}, tag=f"{tag}-base")
        self.addCleanup(nk.stop)
        nk.start()
        trace = self.dir / f"{tag}-trace.log"
        blockdevs = [dict(h.nbd_base(nk.socket), **{"node-name": "base0", "read-only": True}),
                     h.file_node("cache0", self.new_cache(f"{tag}.cache")),
                     h.intellicache_node("ic0", "base0", "cache0", **{"cluster-size": 65536})]
        d = h.StorageDaemon(self.dir, blockdevs, ["ic0"], tag=tag,
                            extra_args=["--trace", f"enable=intellicache_buf_trim,file={trace}"])
        self.addCleanup(d.stop)
        d.start()
        return d, trace

    def reads(self, d, n, tag):
        h.run_fio(d.uri, self.dir, iodepth=16, number_ios=n, tag=tag)
        # Settled: misses deferred while the daemon's thread was busy
        # (running or waiting for a CPU) are fetched and stored once the
        # guest is quiet; checking durability before that raced with
        # them (1104 cached, 1100 durable at the last check).
        self.wait_settled(d, 60)
        # Stored and recorded: the sync after the last stores has run.
        h.wait_until(lambda: (lambda st: st["durable-clusters"] == st["cached-clusters"]
                              and st["inflight-fetches"] == 0)(d.stats("ic0")),
                     60, "the stores to be recorded", interval=0.2)

    @staticmethod
    def trims(trace):
        return [line for line in trace.read_text().splitlines()
                if "intellicache_buf_trim" in line] if trace.exists() else []

    def test_idle_node_trims_after_a_burst(self):
        d, trace = self.start_node("burst")
        before = heap_rss_kib(d.pid)
        self.reads(d, READS, "fio-burst")
        h.wait_until(lambda: self.trims(trace), 10, "an intellicache_buf_trim trace event")
        growth = heap_rss_kib(d.pid) - before
        self.summary.append(f"memory: heap grew {growth} KiB over {READS} random reads; "
                            f"{self.trims(trace)[0]}")
        # The trim counted the burst's fetch buffers (64 KiB each).
        churn = int(self.trims(trace)[0].split()[-1])
        self.assertGreaterEqual(churn, 4 << 20)
        st = d.stats("ic0")
        self.assertEqual(st["cached-clusters"], st["durable-clusters"])

    def test_few_reads_do_not_trim(self):
        d, trace = self.start_node("few")
        # 16 reads: at most 1 MiB of fetch buffers, below the 4 MiB.
        self.reads(d, 16, "fio-few")
        self.assertEqual(self.trims(trace), [])


if __name__ == "__main__":
    unittest.main()
