"""A host-wide budget: three intellicache nodes in one intellicache-pool.

Three bases (nbdkit's pattern plugin: each 8-byte word holds its own
offset, so every byte read can be checked without a copy of the base),
three nodes over them in one qemu-storage-daemon, all members of one
pool much smaller than the bases together.  Random readers on the three
exports read for a while, checking every byte; meanwhile the data
extents of the three cache files are sampled, and must stay within the
pool's size plus the files' metadata at every sample.

CI runs it scaled down (pool 192 MiB, bases 3 x 256 MiB, 15 s);
IC_E2E_LONG=1 runs the benchmark's figure (pool 1 GiB, bases 3 x 1 GiB,
60 s).
"""

import concurrent.futures
import os
import random
import sys
import threading
import time

import intellicache_harness as h

LONG = os.environ.get("IC_E2E_LONG") == "1"
BASE = (1 if LONG else 0.25) * h.GiB
POOL = h.GiB if LONG else 192 * h.MiB
SECONDS = 60 if LONG else 15
NODES = 3
CLUSTER = 4096


def metadata_bytes(base_size):
    """Header and metadata blocks of a cache of a base of @base_size."""
    clusters = -(-base_size // CLUSTER)
    return 4096 + -(-clusters // ((4096 - 16) * 8)) * 4096


class PoolE2E(h.DaemonTestCase):
    PROGRAMS = ("nbdkit",)

    def reader(self, d, node, seed, stop):
        """Random reads of 4 KiB to 256 KiB; every word is checked."""
        rng = random.Random(seed)
        c = h.NbdClient(d.socket, node, timeout=30)
        checked = 0
        try:
            while not stop.is_set():
                off = rng.randrange(int(BASE) // 4096) * 4096
                length = min(rng.choice((4096, 65536, 262144)), int(BASE) - off)
                data = c.pread(off, length)
                want = b"".join((off + i).to_bytes(8, "big")
                                for i in range(0, length, 8))
                self.assertEqual(data, want, f"{node}: wrong data at {off}+{length}")
                checked += length
        finally:
            c.close()
        return checked

    def test_three_nodes_keep_within_the_pool(self):
        bases = [h.Nbdkit(self.dir, "pattern", {"size": int(BASE)}, tag=f"base-{i}").start()
                 for i in range(NODES)]
        for nk in bases:
            self.addCleanup(nk.stop)
        caches = [h.create_cache_file(self.dir / f"cache{i}.img") for i in range(NODES)]
        blockdevs = []
        for i in range(NODES):
            blockdevs.append(dict(h.nbd_base(bases[i].socket), **{
                "node-name": f"base{i}", "read-only": True}))
            blockdevs.append(dict(h.file_node(f"cache{i}", caches[i]), discard="unmap"))
        d = h.StorageDaemon(self.dir, blockdevs, [], tag="pool")
        self.addCleanup(d.stop)
        d.start()
        d.qmp.cmd("object-add", **{"qom-type": "intellicache-pool", "id": "pool0",
                                   "size": POOL})
        for i in range(NODES):
            d.qmp.cmd("blockdev-add", **h.intellicache_node(
                f"ic{i}", f"base{i}", f"cache{i}", pool="pool0",
                **{"cluster-size": CLUSTER, "read-ahead": 0}))
            d.qmp.cmd("block-export-add", type="nbd", id=f"e{i}", **{"node-name": f"ic{i}"})

        bound = POOL + NODES * metadata_bytes(int(BASE))
        stop = threading.Event()
        worst = 0
        samples = 0
        with concurrent.futures.ThreadPoolExecutor(NODES) as pool:
            readers = [pool.submit(self.reader, d, f"ic{i}", i, stop) for i in range(NODES)]
            end = time.monotonic() + SECONDS
            try:
                while time.monotonic() < end and not any(r.done() for r in readers):
                    allocated = sum(h.allocated_bytes(c) for c in caches)
                    worst = max(worst, allocated)
                    samples += 1
                    self.assertLessEqual(allocated, bound,
                                         f"the caches hold {allocated} bytes, more than "
                                         f"the pool's {POOL} plus metadata")
                    time.sleep(0.25)
            finally:
                stop.set()
            checked = sum(r.result() for r in readers)
        stats = [d.stats(f"ic{i}") for i in range(NODES)]
        used = sum(s["used-bytes"] for s in stats)
        self.assertLessEqual(used, POOL)
        self.assertGreater(sum(s["evicted-bytes"] for s in stats), 0, "nothing was evicted")
        for s in stats:
            self.assertGreater(s["used-bytes"], 0, "a member holds nothing")
            self.assertEqual(s["store-errors"], 0, s)
        # Printed after unittest's "... ok" line (which run.sh counts).
        type(self).summary = (
            f"pool: {samples} samples, at most {worst} bytes allocated against "
            f"{POOL} + {bound - POOL} of metadata; {checked} bytes checked; used "
            f"{[s['used-bytes'] for s in stats]}")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "summary", None):
            print(cls.summary, file=sys.stderr)
        super().tearDownClass()
