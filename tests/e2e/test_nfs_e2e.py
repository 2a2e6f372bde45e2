"""intellicache end to end over a real NFS server.

nfs-ganesha exports a directory on 127.0.0.1 (NFSv3); qemu-storage-daemon
opens the base image there with QEMU's nfs driver (libnfs), puts the
intellicache filter on top and exports it over NBD on a unix socket; real
NBD clients (nbdcopy, fio) read it.  Checksums are compared with the base
file itself.
"""

import concurrent.futures
import math
import unittest

import intellicache_harness as h

# A multiple of 512 (QEMU rounds node sizes up to sectors) but not of the
# cluster size (4 KiB, the default for bases up to 256 GiB): the last
# cluster is partial.
BASE_SIZE = 64 * h.MiB + 47 * 512
CLUSTER = 4096
CLUSTERS = math.ceil(BASE_SIZE / CLUSTER)


class NfsE2E(h.DaemonTestCase):
    PROGRAMS = ("ganesha.nfsd", "rpcbind", "nfs-ls", "nbdcopy", "fio")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.export = cls.tmp / "export"
        cls.export.mkdir()
        cls.base_sha = h.make_base_image(cls.export / "base.img", BASE_SIZE, seed=1)
        cls.ganesha = h.Ganesha(cls.tmp, cls.export)
        cls.addClassCleanup(cls.ganesha.stop)
        cls.ganesha.start()

    def base(self, name="base.img"):
        return h.nfs_base(self.ganesha, name)

    def assert_read_matches(self, daemon, sha, what):
        r = h.nbd_read_all(daemon.uri)
        self.assertEqual(r.nbytes, BASE_SIZE, f"{what}: export size")
        self.assertEqual(r.sha256, sha, f"{what}: data differs from the base")
        return r

    def cold_read(self, name="base.img", sha=None):
        """Fresh cache, whole read; returns the stopped daemon's cache file."""
        cache = self.new_cache(f"cache-{name}")
        d = self.start_daemon(self.base(name), cache, tag="cold")
        self.assert_read_matches(d, sha or self.base_sha, "cold read")
        self.wait_all_cached(d)
        self.stop_clean(d)
        return cache

    def test_cold_read_matches_base(self):
        cache = self.new_cache()
        d = self.start_daemon(self.base(), cache, **{"max-inflight": 16})
        st = d.stats()
        self.assertEqual(st["cluster-size"], CLUSTER)
        self.assertEqual(st["cluster-count"], CLUSTERS)
        self.assertEqual(st["cached-clusters"], 0, "a new cache must start empty")

        self.assert_read_matches(d, self.base_sha, "cold read")
        st = self.wait_all_cached(d)
        # Every byte of the base was fetched exactly once, nothing more.
        self.assertEqual(st["fetched-bytes"], BASE_SIZE, st)
        self.assertEqual(st["hit-bytes"] + st["miss-bytes"] + st["wait-bytes"],
                         BASE_SIZE, st)
        self.assertGreater(st["miss-bytes"], 0, st)
        self.assert_no_errors(st)
        self.stop_clean(d)

    def test_concurrent_readers(self):
        """Several whole-image readers and a random reader on a cold cache."""
        cache = self.new_cache()
        d = self.start_daemon(self.base(), cache)
        readers = 4
        with concurrent.futures.ThreadPoolExecutor(readers + 1) as pool:
            reads = [pool.submit(h.nbd_read_all, d.uri) for _ in range(readers)]
            fio = pool.submit(h.run_fio, d.uri, self.dir, rw="randread", bs="4k",
                              iodepth=16, number_ios=4000)
            results = [f.result() for f in reads]
            fio_result = fio.result()
        for r in results:
            self.assertEqual(r.nbytes, BASE_SIZE)
            self.assertEqual(r.sha256, self.base_sha, "concurrent reader got wrong data")
        self.assertEqual(fio_result["total_ios"], 4000)
        st = self.wait_all_cached(d)
        # Concurrent misses on the same cluster join one fetch: the base is
        # still read exactly once in total.
        self.assertEqual(st["fetched-bytes"], BASE_SIZE, st)
        self.assertEqual(st["hit-bytes"] + st["miss-bytes"] + st["wait-bytes"],
                         readers * BASE_SIZE + 4000 * 4096, st)
        self.assert_no_errors(st)

        # The same daemon, now warm: hits only.
        self.assert_read_matches(d, self.base_sha, "warm read")
        self.assertEqual(d.stats()["fetched-bytes"], BASE_SIZE)
        self.stop_clean(d)

    def test_restart_serves_everything_from_cache(self):
        cache = self.cold_read()
        d = self.start_daemon(self.base(), cache, tag="warm")
        st = d.stats()
        self.assertEqual(st["cached-clusters"], CLUSTERS, "cache not persisted")
        self.assert_read_matches(d, self.base_sha, "warm read after restart")
        st = d.stats()
        self.assertEqual(st["fetched-bytes"], 0, st)
        self.assertEqual(st["fetches"], 0, st)
        self.assertEqual(st["miss-bytes"], 0, st)
        self.assertEqual(st["hit-bytes"], BASE_SIZE, st)
        self.assert_no_errors(st)
        self.stop_clean(d)

    def test_warm_reads_come_from_cache_not_base(self):
        """Change the base under a running warm daemon: it must not notice.

        The driver checks a fingerprint of the base when it opens it, so the
        base is changed after the open.  Serving the old data proves the
        reads came from the local cache, independently of the statistics.
        """
        old_sha = h.make_base_image(self.export / "mutable.img", BASE_SIZE, seed=2)
        cache = self.cold_read("mutable.img", old_sha)
        d = self.start_daemon(self.base("mutable.img"), cache, tag="warm")
        new_sha = h.overwrite_in_place(self.export / "mutable.img", seed=3)
        self.assertNotEqual(new_sha, old_sha)
        self.assert_read_matches(d, old_sha, "warm read of a changed base")
        st = d.stats()
        self.assertEqual(st["fetched-bytes"], 0, st)
        self.assert_no_errors(st)
        self.stop_clean(d)

    def test_changed_base_resets_cache(self):
        """A base changed while the daemon was down must not be served stale."""
        old_sha = h.make_base_image(self.export / "changed.img", BASE_SIZE, seed=4)
        cache = self.cold_read("changed.img", old_sha)
        new_sha = h.overwrite_in_place(self.export / "changed.img", seed=5)
        d = self.start_daemon(self.base("changed.img"), cache, tag="reopen")
        self.assertEqual(d.stats()["cached-clusters"], 0,
                         "cache of a different base was kept")
        self.assert_read_matches(d, new_sha, "read after the base changed")
        st = self.wait_all_cached(d)
        self.assertEqual(st["fetched-bytes"], BASE_SIZE, st)
        self.stop_clean(d)

    def test_crash_during_cold_read_then_restart(self):
        """SIGKILL in the middle of a cold read; the cache must stay correct."""
        cache = self.new_cache()
        d = self.start_daemon(self.base(), cache, tag="crash")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            reader = pool.submit(h.nbd_read_all, d.uri)
            h.wait_until(lambda: d.stats()["cached-clusters"] >= CLUSTERS // 4
                         or reader.done(), 60, "a quarter of the clusters cached",
                         interval=0.01)
            # Durable clusters survive a crash: those counted now at least.
            durable = d.stats()["durable-clusters"]
            d.kill9()
            # The reader fails when the server dies (or finished just before).
            try:
                reader.result()
            except h.HarnessError:
                pass
        d2 = self.start_daemon(self.base(), cache, tag="after-crash")
        self.assertGreaterEqual(d2.stats()["cached-clusters"], durable)
        self.assert_read_matches(d2, self.base_sha, "read after crash")
        st = self.wait_all_cached(d2)
        # Whatever survived is served as hits, the rest fetched once more.
        self.assertLessEqual(st["fetched-bytes"], BASE_SIZE, st)
        self.assert_no_errors(st)
        self.stop_clean(d2)

        d3 = self.start_daemon(self.base(), cache, tag="after-crash-warm")
        self.assert_read_matches(d3, self.base_sha, "warm read after crash")
        self.assertEqual(d3.stats()["fetched-bytes"], 0)
        self.stop_clean(d3)

    def test_crash_keeps_durable_clusters(self):
        """Once everything is durable, SIGKILL loses nothing."""
        cache = self.new_cache()
        d = self.start_daemon(self.base(), cache, tag="cold")
        self.assert_read_matches(d, self.base_sha, "cold read")
        # Metadata is synced in the background (about once a second).
        h.wait_until(lambda: d.stats()["durable-clusters"] == CLUSTERS, 30,
                     "all clusters durable", interval=0.1)
        d.kill9()
        d2 = self.start_daemon(self.base(), cache, tag="after-crash")
        self.assertEqual(d2.stats()["cached-clusters"], CLUSTERS)
        self.assert_read_matches(d2, self.base_sha, "read after crash")
        st = d2.stats()
        self.assertEqual(st["fetched-bytes"], 0, st)
        self.stop_clean(d2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
