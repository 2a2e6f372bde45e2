"""intellicache crash loop over a real nbdkit base.

Each iteration: a qemu-storage-daemon with intellicache over nbdkit (a
file of random content, behind the rate filter so that the cold fill lasts
a few seconds) and its cache file with O_DIRECT; three concurrent NBD
readers (two whole-image nbdcopy readers and one reader of random ranges);
``kill -9`` of the daemon at a random moment of the fill; a restart on the
same cache file over an unthrottled nbdkit; the whole image read back
through the node and compared byte for byte with the base; what was
durable before the kill must still be cached.

Half of the kills are aimed at the moment the next metadata write-out is
due (a sync round starts about one second after the previous one, and the
durable count rises when a round ends); the others land uniformly in the
fill.  Every fourth iteration starts from an empty cache, the others from
the cache the previous kill left (crashes on top of recovered caches).

The base has more than 32640 clusters so that metadata write-outs cover
several metadata blocks.  IC_CRASH_E2E_ITERATIONS sets the number of kills
(20 by default, 200 for the long run); the totals are printed at the end.
"""

import concurrent.futures
import os
import random
import subprocess
import sys
import threading
import time
import unittest

import intellicache_harness as h

# 4 KiB clusters (the default at this size): 35 000 clusters, two
# metadata blocks; not a multiple of the cluster size.
BASE_SIZE = 136 * h.MiB + 7 * 512
ITERATIONS = int(os.environ.get("IC_CRASH_E2E_ITERATIONS", "20"))
# The throttled base: 400 Mbit/s, a cold fill of about 3 seconds.
FILL_RATE = "400M"
FILL_SECONDS = 2.8
SEED = int(os.environ.get("IC_CRASH_E2E_SEED", "20261125"))


class CrashE2E(h.NbdkitFileTestCase):
    BASE_SIZE = BASE_SIZE
    BASE_SEED = SEED

    def nbdkit(self, tag, throttled):
        if throttled:
            return self.start_nbdkit(tag, ["rate"], {"rate": FILL_RATE, "burstiness": "0.05"})
        return self.start_nbdkit(tag)

    def daemon(self, nk, cache, tag):
        return self.start_daemon(h.nbd_base(nk.socket), cache, tag=tag,
                                 cache_options=h.CACHE_DIRECT)

    def random_reader(self, d, rng, stop):
        """Reads of random ranges (1 byte to 256 KiB) until the server dies
        or @stop is set; every byte it gets is checked against the base."""
        try:
            c = h.NbdClient(d.socket, "ic0", timeout=10)
        except (OSError, h.HarnessError):
            return 0
        checked = 0
        try:
            with open(self.base_path, "rb") as f:
                while not stop.is_set():
                    off = rng.randrange(BASE_SIZE)
                    length = min(rng.randint(1, 256 * 1024), BASE_SIZE - off)
                    data = c.pread(off, length)
                    f.seek(off)
                    self.assertEqual(data, f.read(length),
                                     f"wrong data at {off}+{length} before the kill")
                    checked += length
        except (OSError, h.HarnessError):
            pass  # the daemon was killed
        finally:
            c.close()
        return checked

    def kill_during_fill(self, d, rng, aimed):
        """Let the fill run, then kill -9; return the durable clusters seen
        just before the kill and the delay used."""
        start = time.monotonic()
        if aimed:
            # Wait for a sync round to end (durable rises), then kill when
            # the next one is due: one second later, give or take 20 ms.
            first = d.stats()["durable-clusters"]
            h.wait_until(lambda: d.stats()["durable-clusters"] != first, 10,
                         "a metadata write-out", interval=0.002)
            time.sleep(max(0.0, 1.0 + rng.uniform(-0.03, 0.02)))
        else:
            time.sleep(rng.uniform(0.0, FILL_SECONDS))
        durable = d.stats()["durable-clusters"]
        d.kill9()
        return durable, time.monotonic() - start

    def compare_with_base(self, d, out):
        """Read the whole export into @out; return (bytes, mismatched)."""
        subprocess.run(["nbdcopy", d.uri, str(out)], check=True, timeout=300)
        mismatched = 0
        with open(out, "rb") as a, open(self.base_path, "rb") as b:
            while True:
                x, y = a.read(h.MiB), b.read(h.MiB)
                if not x and not y:
                    break
                if x != y:
                    n = min(len(x), len(y))
                    mismatched += sum(1 for i in range(n) if x[i] != y[i])
                    mismatched += abs(len(x) - len(y))
        size = os.path.getsize(out)
        out.unlink()
        return size, mismatched

    def test_kill_during_cold_fill(self):
        rng = random.Random(SEED)
        totals = {"kills": 0, "aimed": 0, "compared": 0, "mismatched": 0,
                  "checked_before_kill": 0, "durable_lost": 0}
        started = time.monotonic()
        for i in range(ITERATIONS):
            cache = self.dir / "cache.img"
            cache.unlink(missing_ok=True)
            h.create_cache_file(cache)
            aimed = i % 2 == 1
            slow = self.nbdkit(f"slow-{i}", throttled=True)
            d = self.daemon(slow, cache, f"crash-{i}")
            stop = threading.Event()
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                readers = [pool.submit(h.nbd_read_all, d.uri, 120) for _ in range(2)]
                randoms = pool.submit(self.random_reader, d,
                                      random.Random(rng.random()), stop)
                durable, when = self.kill_during_fill(d, rng, aimed)
                stop.set()
                for r in readers:
                    try:
                        self.assertEqual(r.result().sha256, self.base_sha,
                                         "a reader finished with wrong data")
                    except h.HarnessError:
                        pass  # killed while reading
                totals["checked_before_kill"] += randoms.result()
            slow.stop()

            fast = self.nbdkit(f"fast-{i}", throttled=False)
            d2 = self.daemon(fast, cache, f"after-{i}")
            cached = d2.stats()["cached-clusters"]
            if cached < durable:
                totals["durable_lost"] += durable - cached
            size, mismatched = self.compare_with_base(d2, self.dir / "out.img")
            self.assertEqual(size, BASE_SIZE)
            totals["compared"] += size
            totals["mismatched"] += mismatched
            totals["kills"] += 1
            totals["aimed"] += aimed
            st = d2.stats()
            self.assertEqual(st["fetch-errors"] + st["store-errors"], 0, st)
            self.stop_clean(d2)
            fast.stop()
            self.assertEqual(mismatched, 0,
                             f"iteration {i}: {mismatched} wrong bytes after a kill "
                             f"{when:.3f} s into the fill")
            self.assertGreaterEqual(cached, durable,
                                    f"iteration {i}: durable clusters lost by the kill")
        # Printed after unittest's "... ok" line (which run.sh counts).
        type(self).summary = (
            f"crash loop: {totals['kills']} kills ({totals['aimed']} aimed at a "
            f"metadata write-out), {totals['compared']} bytes compared after "
            f"restarts, {totals['mismatched']} mismatched, "
            f"{totals['checked_before_kill']} bytes checked by the random reader "
            f"before kills, durable clusters lost: {totals['durable_lost']}, "
            f"{time.monotonic() - started:.0f} s")

    def test_kill_while_evicting(self):
        """A cache one eighth of the base under random reads all over it:
        clusters are freed all the time.  kill -9 at a random moment, then
        the restarted daemon must serve the base's data, and the cache
        file's allocation must stay within its bound plus metadata."""
        rng = random.Random(SEED + 1)
        bound = BASE_SIZE // 8 // h.MiB * h.MiB
        meta = 4096 + 2 * 4096
        cache_opts = dict(h.CACHE_DIRECT, discard="unmap")
        totals = {"kills": 0, "compared": 0, "mismatched": 0, "checked": 0,
                  "evicted": 0, "unadmitted": 0}
        cache = self.dir / "bounded.img"
        h.create_cache_file(cache)
        for i in range(ITERATIONS):
            load = self.nbdkit(f"load-{i}", throttled=False)
            d = self.start_daemon(h.nbd_base(load.socket), cache,
                                  tag=f"evict-{i}", cache_options=cache_opts,
                                  **{"cache-size": bound, "read-ahead": 0})
            stop = threading.Event()
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                randoms = [pool.submit(self.random_reader, d,
                                       random.Random(rng.random()), stop)
                           for _ in range(3)]
                time.sleep(rng.uniform(0.5, 2.0))
                st = d.stats()
                totals["evicted"] += st["evicted-bytes"]
                totals["unadmitted"] += st["unadmitted-bytes"]
                d.kill9()
                stop.set()
                totals["checked"] += sum(r.result() for r in randoms)
            load.stop()
            self.assertLessEqual(h.allocated_bytes(cache), bound + meta,
                                 f"iteration {i}: the cache outgrew its bound")
            check = self.nbdkit(f"check-{i}", throttled=False)
            d2 = self.start_daemon(h.nbd_base(check.socket), cache,
                                   tag=f"evict-after-{i}",
                                   cache_options=cache_opts,
                                   **{"cache-size": bound, "read-ahead": 0})
            size, mismatched = self.compare_with_base(d2, self.dir / "out.img")
            self.assertEqual(size, BASE_SIZE)
            totals["compared"] += size
            totals["mismatched"] += mismatched
            totals["kills"] += 1
            self.stop_clean(d2)
            check.stop()
            self.assertEqual(mismatched, 0,
                             f"iteration {i}: {mismatched} wrong bytes after a "
                             "kill while evicting")
        self.assertGreater(totals["evicted"], 0, "nothing was evicted")
        type(self).evict_summary = (
            f"crash loop with eviction: {totals['kills']} kills, "
            f"{totals['evicted']} bytes evicted before kills "
            f"({totals['unadmitted']} not admitted), "
            f"{totals['checked']} bytes checked by random readers, "
            f"{totals['compared']} bytes compared after restarts, "
            f"{totals['mismatched']} mismatched")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "evict_summary", None):
            print(cls.evict_summary, file=sys.stderr)
        if getattr(cls, "summary", None):
            print(cls.summary, file=sys.stderr)
        super().tearDownClass()


if __name__ == "__main__":
    unittest.main(verbosity=2)
