"""intellicache end to end over nbdkit: server-side counts, faults, ranges.

The base is an nbdkit file plugin on a unix socket, opened by QEMU's nbd
client driver.  nbdkit's stats filter counts, on the server side, what the
daemon really read from the base; its error filter injects read errors on
demand; its delay filter makes fetches slow enough to overlap.
"""

import concurrent.futures
import random
import unittest

import intellicache_harness as h

BASE_SIZE = 32 * h.MiB + 3 * 512


class NbdkitE2E(h.NbdkitFileTestCase):
    BASE_SIZE = BASE_SIZE
    BASE_SEED = 11

    def test_warm_read_sends_nothing_to_base(self):
        """Counted by the base server: a warm read leaves the base alone."""
        cache = self.new_cache()
        nk = self.start_nbdkit("cold-base", stats=True)
        d = self.start_daemon(h.nbd_base(nk.socket), cache, tag="cold")
        self.assertEqual(h.nbd_read_all(d.uri).sha256, self.base_sha)
        self.wait_all_cached(d)
        self.stop_clean(d)
        nk.stop()
        cold = nk.stats()["read"]["bytes"]
        self.assertGreaterEqual(cold, BASE_SIZE * 0.99, "cold read did not reach the base")

        nk = self.start_nbdkit("warm-base", stats=True)
        d = self.start_daemon(h.nbd_base(nk.socket), cache, tag="warm")
        self.assertEqual(h.nbd_read_all(d.uri).sha256, self.base_sha)
        self.assertEqual(d.stats()["fetched-bytes"], 0)
        self.stop_clean(d)
        nk.stop()
        # Opening the cache samples the base's fingerprint; nothing else may
        # be read from it.  Allow 1 MiB for the sample.
        warm = nk.stats().get("read", {"bytes": 0})["bytes"]
        self.assertLessEqual(warm, h.MiB, f"warm read fetched {warm} bytes from the base")

    def test_boot_storm_reads_the_base_once(self):
        """Several VMs boot from one base at once, each through its own qcow2
        overlay backed by one shared intellicache node: each cluster is
        fetched from the base once (readers join fetches in flight), where
        copy-on-read overlays would read the base once per VM."""
        vms = 4
        nk = self.start_nbdkit("storm-base", filters=["delay"],
                               filter_args={"delay-read": "1ms"}, stats=True)
        d = self.start_daemon(h.nbd_base(nk.socket), self.new_cache())
        for i in range(vms):
            overlay = h.qcow2_overlay(self.dir / f"vm{i}.qcow2", BASE_SIZE)
            d.qmp.cmd("blockdev-add", driver="qcow2", **{"node-name": f"vm{i}"},
                      file={"driver": "file", "filename": str(overlay)},
                      backing="ic0")
            d.qmp.cmd("block-export-add", type="nbd", id=f"vm{i}",
                      **{"node-name": f"vm{i}"})
        with concurrent.futures.ThreadPoolExecutor(vms) as pool:
            reads = [pool.submit(h.nbd_read_all, h.nbd_uri(d.socket, f"vm{i}"))
                     for i in range(vms)]
            for r in reads:
                self.assertEqual(r.result().sha256, self.base_sha)
        st = d.stats()
        # Every cluster fetched exactly once, whoever asked first.
        self.assertEqual(st["fetched-bytes"], BASE_SIZE)
        for i in range(vms):
            d.qmp.cmd("block-export-del", id=f"vm{i}")
        self.stop_clean(d)
        nk.stop()
        # Counted by the base server; 1 MiB allowed for the fingerprint.
        read = nk.stats()["read"]["bytes"]
        self.assertLessEqual(read, BASE_SIZE * 1.05 + h.MiB,
                             f"{vms} readers read {read} bytes from the base")

    def test_nbd_cache_command_fills_the_cache(self):
        """An NBD client's NBD_CMD_CACHE fetches the range into the cache
        before the reply (QEMU's server sends it as a copy-on-read prefetch,
        which QEMU patch 0009 passes to the node): the range is then served
        with the base gone."""
        nk = self.start_nbdkit("cache-cmd", stats=True)
        d = self.start_daemon(h.nbd_base(nk.socket), self.new_cache(),
                              **{"read-ahead": 0})
        offset, length = 8 * h.MiB + 1000, 4 * h.MiB
        c = h.NbdClient(d.socket, "ic0")
        try:
            c.cache(offset, length)
        finally:
            c.close()
        st = d.stats()
        # The whole clusters around the range, nothing else.
        cs = st["cluster-size"]
        first, end = offset // cs * cs, -(-(offset + length) // cs) * cs
        self.assertEqual(st["prefetch-bytes"], end - first, st)
        self.assertEqual(st["cached-clusters"], (end - first) // cs, st)
        self.assertEqual(st["hit-bytes"] + st["miss-bytes"], 0,
                         f"NBD_CMD_CACHE counted as a read: {st}")

        nk.kill9()  # it waits for its client (the daemon) on SIGTERM
        c = h.NbdClient(d.socket, "ic0")
        try:
            data = c.pread(offset, length)
        finally:
            c.close()
        with open(self.base_path, "rb") as f:
            f.seek(offset)
            self.assertEqual(data, f.read(length))
        st = d.stats()
        self.assertEqual((st["hit-bytes"], st["miss-bytes"]), (length, 0), st)
        self.stop_clean(d)

    def test_base_errors_never_serve_wrong_data(self):
        """Base reads fail: the client gets errors, never wrong data; the
        cache recovers once the base answers again."""
        trigger = self.dir / "fail-reads"
        nk = self.start_nbdkit("faulty", filters=["error"],
                               filter_args={"error-pread": "EIO",
                                            "error-pread-rate": "100%",
                                            "error-pread-file": trigger})
        # miss-timeout 0: each failed fetch reaches the client at once (with
        # the default it would be retried for 20 s first).
        d = self.start_daemon(h.nbd_base(nk.socket), self.new_cache(),
                              **{"miss-timeout": 0})
        trigger.touch()
        # Simple (not structured) NBD replies: QEMU's server answers a failed
        # read with an error reply, where with structured replies it drops
        # the connection.  Either way the client must not get data.
        c = h.NbdClient(d.socket, "ic0")
        try:
            for offset in (0, 5 * 65536 + 100, BASE_SIZE - 4096):
                with self.assertRaises(h.NbdError, msg=f"read at {offset} succeeded "
                                       "with a failing base") as cm:
                    c.pread(offset, 4096)
                self.assertEqual(cm.exception.errno, 5, "expected NBD_EIO")
        finally:
            c.close()
        st = d.stats()
        self.assertGreaterEqual(st["fetch-errors"], 3, st)
        self.assertEqual(st["cached-clusters"], 0, st)

        trigger.unlink()
        self.assertEqual(h.nbd_read_all(d.uri).sha256, self.base_sha)
        st = self.wait_all_cached(d)
        self.assertEqual(st["store-errors"], 0, st)
        self.stop_clean(d)

    def flaky_base(self):
        trigger = self.dir / "fail-reads"
        nk = self.start_nbdkit("flaky", filters=["error"],
                               filter_args={"error-pread": "EIO",
                                            "error-pread-rate": "20%",
                                            "error-pread-file": trigger})
        return nk, trigger

    def test_flaky_base_is_retried(self):
        """A base failing one read in five, with the default miss-timeout:
        failed fetches are retried, so every read gets the base's data."""
        nk, trigger = self.flaky_base()
        d = self.start_daemon(h.nbd_base(nk.socket), self.new_cache(),
                              **{"read-ahead": 0})
        trigger.touch()
        clusters = BASE_SIZE // 65536
        c = h.NbdClient(d.socket, "ic0")
        try:
            with open(self.base_path, "rb") as f:
                for i in random.Random(4).sample(range(clusters), 100):
                    off = i * 65536 + 1000
                    f.seek(off)
                    self.assertEqual(c.pread(off, 3000), f.read(3000),
                                     f"cluster {i}")
        finally:
            c.close()
        st = d.stats()
        self.assertGreater(st["fetch-errors"], 0, st)
        self.assertEqual(st["fetch-retries"], st["fetch-errors"], st)
        self.assertEqual(st["miss-timeouts"], 0, st)
        trigger.unlink()
        self.stop_clean(d)

    def test_errors_at_a_rate_fail_exactly_the_affected_reads(self):
        """A base failing one read in five, with miss-timeout 0 (no
        retries): each read gets either the base's data or EIO, exactly the
        failed fetches are counted, nothing of them is cached, and every
        other cluster is served."""
        nk, trigger = self.flaky_base()
        d = self.start_daemon(h.nbd_base(nk.socket), self.new_cache(),
                              **{"read-ahead": 0, "miss-timeout": 0})
        trigger.touch()  # after the open, which samples the base
        clusters = BASE_SIZE // 65536
        failed, served = set(), set()
        c = h.NbdClient(d.socket, "ic0")
        try:
            with open(self.base_path, "rb") as f:
                for i in random.Random(3).sample(range(clusters), 200):
                    # One read inside one cluster (of the 4 KiB default) is
                    # one fetch.
                    off = i * 65536 + 1000
                    try:
                        data = c.pread(off, 3000)
                    except h.NbdError as e:
                        self.assertEqual(e.errno, 5, "expected NBD_EIO")
                        failed.add(i)
                        continue
                    f.seek(off)
                    self.assertEqual(data, f.read(3000), f"cluster {i}")
                    served.add(i)
        finally:
            c.close()
        self.assertTrue(failed and served, "the error rate did not apply")
        st = self.wait_until_stored(d, len(served))
        self.assertEqual(st["fetch-errors"], len(failed), st)
        self.assertEqual(st["cached-clusters"], len(served), st)
        # Once the base recovers, everything is served and right.
        trigger.unlink()
        self.assertEqual(h.nbd_read_all(d.uri).sha256, self.base_sha)
        self.stop_clean(d)

    def wait_until_stored(self, d, clusters):
        return h.wait_until(lambda: (lambda st: st if st["cached-clusters"] >= clusters
                                     else None)(d.stats()),
                            30, f"{clusters} clusters stored", interval=0.05)

    def test_random_unaligned_reads_match_base(self):
        """Byte-granular reads across cluster boundaries, from several
        clients at once on a cold cache with slow fetches (so requests join
        fetches in flight), then again warm after a restart."""
        data = self.base_path.read_bytes()
        cache = self.new_cache()
        nk = self.start_nbdkit("slow", filters=["delay"], filter_args={"delay-read": "1ms"})

        def client(sock, seed):
            rng = random.Random(seed)
            c = h.NbdClient(sock, "ic0")
            try:
                for _ in range(150):
                    offset = rng.randrange(BASE_SIZE)
                    length = rng.randint(1, min(300 * 1024, BASE_SIZE - offset))
                    got = c.pread(offset, length)
                    if got != data[offset:offset + length]:
                        return f"seed {seed}: wrong data at {offset}+{length}"
                # The very end, including the partial last cluster.
                if c.pread(BASE_SIZE - 5000, 5000) != data[-5000:]:
                    return f"seed {seed}: wrong data at the end"
            finally:
                c.close()
            return None

        for phase in ("cold", "warm"):
            d = self.start_daemon(h.nbd_base(nk.socket), cache, tag=phase,
                                  **{"max-inflight": 8, "max-fetch": 256 * 1024})
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                errors = [e for e in pool.map(client, [d.socket] * 4, range(4)) if e]
            self.assertEqual(errors, [], f"{phase}: {errors}")
            # Stores deferred while the clients kept the node busy are
            # done once they are quiet.
            st = self.wait_settled(d)
            self.assert_no_errors(st)
            if phase == "warm":
                # Same seeds, same ranges: all of it was cached when cold.
                self.assertEqual(st["fetched-bytes"], 0, st)
            self.stop_clean(d)

    def test_cluster_sizes(self):
        """Smallest and largest cluster sizes, each with a partial last
        cluster; a restart with another cluster size resets the cache."""
        nk = self.start_nbdkit("base")
        for cs in (4096, 2 * h.MiB):
            with self.subTest(cluster_size=cs):
                cache = self.new_cache(f"cache-{cs}.img")
                d = self.start_daemon(h.nbd_base(nk.socket), cache, tag=f"cold-{cs}",
                                      **{"cluster-size": cs, "max-fetch": 2 * h.MiB})
                self.assertEqual(d.stats()["cluster-count"], -(-BASE_SIZE // cs))
                self.assertEqual(h.nbd_read_all(d.uri).sha256, self.base_sha)
                st = self.wait_all_cached(d)
                self.assertEqual(st["fetched-bytes"], BASE_SIZE, st)
                self.stop_clean(d)

                d = self.start_daemon(h.nbd_base(nk.socket), cache, tag=f"warm-{cs}")
                st = d.stats()
                self.assertEqual(st["cluster-size"], cs, "cluster size not kept")
                self.assertEqual(st["cached-clusters"], st["cluster-count"], st)
                self.assertEqual(h.nbd_read_all(d.uri).sha256, self.base_sha)
                self.assertEqual(d.stats()["fetched-bytes"], 0)
                self.stop_clean(d)

                other = 65536 if cs != 65536 else 4096
                d = self.start_daemon(h.nbd_base(nk.socket), cache, tag=f"other-{cs}",
                                      **{"cluster-size": other})
                st = d.stats()
                self.assertEqual((st["cluster-size"], st["cached-clusters"]), (other, 0), st)
                self.assertEqual(h.nbd_read_all(d.uri).sha256, self.base_sha)
                self.stop_clean(d)


if __name__ == "__main__":
    unittest.main(verbosity=2)
