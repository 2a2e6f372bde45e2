"""Tunables change live, under load, all together or not at all.

Readers check every byte they get against the base while blockdev-reopen
changes the node's tunables (max-inflight, max-fetch, read-ahead,
miss-timeout, cache-size, scan-threshold) every few tens of milliseconds.
The node's statistics report the settings in effect: after each reopen
they are the new ones, and after a reopen refused because one of its
values is bad they are still the old ones, whatever the other values were.
"""

import random
import subprocess
import sys
import concurrent.futures
import threading
import time

import intellicache_harness as h

BASE_SIZE = 64 * h.MiB
CLUSTER = 64 * 1024
REOPENS = 40
SEED = 20261201

CHOICES = {
    "max-inflight": [1, 4, 16, 32],
    "max-fetch": [CLUSTER, 256 * 1024, h.MiB],
    "read-ahead": [0, h.MiB, 4 * h.MiB],
    "miss-timeout": [0, 5, 30],
    "cache-size": [32 * h.MiB, 48 * h.MiB, BASE_SIZE],
    "scan-threshold": [0, 8 * h.MiB],
}
# Values the node refuses, each naming its option in the error.
BAD = [("max-inflight", 0), ("max-fetch", CLUSTER + 512),
       ("read-ahead", 512 * h.MiB), ("miss-timeout", 3601),
       ("cache-size", 1024)]


class ReopenE2E(h.NbdkitFileTestCase):
    BASE_SIZE = BASE_SIZE
    BASE_SEED = SEED

    def reader(self, d, rng, stop):
        """Random reads until @stop; every byte checked against the base."""
        c = h.NbdClient(d.socket, "ic0", timeout=30)
        checked = 0
        try:
            with open(self.base_path, "rb") as f:
                while not stop.is_set():
                    off = rng.randrange(BASE_SIZE)
                    length = min(rng.randint(1, 512 * 1024), BASE_SIZE - off)
                    data = c.pread(off, length)
                    f.seek(off)
                    self.assertEqual(data, f.read(length), f"wrong data at {off}+{length}")
                    checked += length
        finally:
            c.close()
        return checked

    def reopen(self, d, settings):
        options = {"driver": "intellicache", "node-name": "ic0", "file": "base0",
                   "cache-file": "cache0", "cluster-size": CLUSTER, **settings}
        try:
            d.qmp.cmd("blockdev-reopen", options=[options])
        except h.QMPError as e:
            return e.desc or str(e)
        return None

    def in_effect(self, d):
        st = d.stats()
        s = dict(st["settings"])
        s["cache-size"] = st.get("cache-size")
        return s

    def test_reopen_under_load(self):
        rng = random.Random(SEED)
        nk = self.start_nbdkit("base", ["delay"], {"delay-read": "1ms"})
        first = {k: v[0] for k, v in CHOICES.items()}
        first["max-inflight"] = 16
        d = self.start_daemon(h.nbd_base(nk.socket), self.new_cache(), tag="reopen",
                              cache_options={**h.CACHE_DIRECT, "discard": "unmap"},
                              **{"cluster-size": CLUSTER, **first})
        expected = dict(first)
        self.assertEqual(self.in_effect(d), expected)
        stop = threading.Event()
        applied = refused = 0
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            readers = [pool.submit(self.reader, d, random.Random(SEED + i), stop)
                       for i in range(3)]
            try:
                for i in range(REOPENS):
                    new = {k: rng.choice(v) for k, v in CHOICES.items()}
                    bad = BAD[i % len(BAD)] if i % 4 == 3 else None
                    if bad:
                        new[bad[0]] = bad[1]
                    error = self.reopen(d, new)
                    if bad:
                        self.assertIsNotNone(error, f"{bad} was accepted")
                        self.assertIn(bad[0], error)
                        refused += 1
                    else:
                        self.assertIsNone(error, new)
                        expected = new
                        applied += 1
                    # The settings in effect: all of the reopen's, or none.
                    self.assertEqual(self.in_effect(d), expected, f"after reopen {i}")
                    time.sleep(rng.uniform(0.01, 0.08))
                    for r in readers:
                        self.assertFalse(r.done() and r.exception(), "a reader failed")
            finally:
                stop.set()
            checked = sum(r.result() for r in readers)
        self.assertGreater(checked, 0)
        # The last bound holds once its excess is freed; the data is the base's.
        bound = expected["cache-size"]
        h.wait_until(lambda: d.stats()["used-bytes"] <= bound, 30,
                     f"used-bytes within cache-size {bound}")
        out = self.dir / "copy.img"
        subprocess.run(["nbdcopy", d.uri, str(out)], check=True, timeout=300)
        self.assertEqual(h.sha256_file(out), self.base_sha)
        st = d.stats()
        self.assert_no_errors(st)
        self.stop_clean(d)
        type(self).summary = (
            f"reopen under load: {applied} reopens applied, {refused} refused "
            f"(settings unchanged), {checked / h.MiB:.0f} MiB read and checked "
            f"meanwhile, {st['evicted-bytes'] / h.MiB:.0f} MiB evicted")

    def test_client_joining_during_reopen(self):
        """A client that finishes its handshake while a reopen waits for
        requests in flight does not hold the reopen up.

        The NBD server quiesces the clients it has when a drain begins; one
        that joins the export during the drain used to start reading
        requests at once, and the drain waited for it until it left.
        """
        nk = self.start_nbdkit("base", ["delay"], {"delay-read": "3"})
        d = self.start_daemon(h.nbd_base(nk.socket), self.new_cache(), tag="join",
                              **{"cluster-size": CLUSTER, "read-ahead": 0})
        late = h.NbdClient(d.socket, timeout=30, greeting_only=True)
        busy = h.NbdClient(d.socket, "ic0", timeout=30)
        try:
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                # A miss on the slow base: the reopen's drain waits for it.
                miss = pool.submit(busy.pread, 0, CLUSTER)
                time.sleep(0.5)
                start = time.monotonic()
                reopened = pool.submit(self.reopen, d, {"max-inflight": 8})
                time.sleep(1)
                self.assertFalse(miss.done(), "the miss did not wait for the slow base")
                late.negotiate("ic0")
                done, _ = concurrent.futures.wait([reopened], timeout=20)
                took = time.monotonic() - start
                self.assertTrue(done, f"blockdev-reopen had no answer after {took:.0f} s "
                                      "with a client that joined during its drain")
                error = reopened.result()
                self.assertIsNone(error)
                self.assertLess(took, 10, "the reopen waited for the late client")
                with open(self.base_path, "rb") as f:
                    self.assertEqual(miss.result(timeout=10), f.read(CLUSTER))
                    # The late client was quiesced, not left out: it reads now.
                    f.seek(CLUSTER)
                    self.assertEqual(late.pread(CLUSTER, CLUSTER), f.read(CLUSTER))
        finally:
            late.close()
            busy.close()
        self.assertEqual(self.in_effect(d)["max-inflight"], 8)
        self.stop_clean(d)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "summary", None):
            print(cls.summary, file=sys.stderr)
        super().tearDownClass()


if __name__ == "__main__":
    import unittest
    unittest.main()
