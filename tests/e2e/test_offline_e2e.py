"""intellicache without its base: offline start over real servers.

A host that restarts while its storage server is down must still start the
VMs whose data is cached.  nfs-ganesha or nbdkit serves a base image with
holes; nbdcopy reads it whole through the daemon's NBD export (it asks for
extents and does not read what it is told is zeros, as QEMU's NBD server,
qemu-img or a guest's tools do); the server is then stopped, and a daemon
opened with no base at all serves the whole image.  When the server is
back, blockdev-reopen attaches the base.
"""

import intellicache_harness as h

SIZE = 32 * h.MiB


def make_sparse_base(path, seed):
    """@SIZE bytes: seeded random data in every other 2 MiB, holes between,
    and 3000 bytes of data within a hole (not cluster-aligned).  Returns
    the sha256 of the whole image."""
    with open(path, "wb") as f:
        f.truncate(SIZE)
    with open(path, "r+b") as f:
        for i, off in enumerate(range(0, SIZE, 4 * h.MiB)):
            f.seek(off)
            h.write_random(f, 2 * h.MiB, seed + i)
        f.seek(SIZE - 3 * h.MiB + 5000)
        h.write_random(f, 3000, seed + 100)
    return h.sha256_file(path)


class OfflineStartE2E(h.DaemonTestCase):
    PROGRAMS = ("ganesha.nfsd", "rpcbind", "nfs-ls", "nbdkit", "nbdcopy")

    def setUp(self):
        super().setUp()
        self.export = self.dir / "export"
        self.export.mkdir()
        self.base_path = self.export / "base.img"
        self.base_sha = make_sparse_base(self.base_path, seed=7)

    def offline_daemon(self, cache):
        """A daemon whose intellicache node has no base (no 'file')."""
        d = h.StorageDaemon(self.dir, [
            h.file_node("cache0", cache, direct=False),
            {"driver": "intellicache", "node-name": "ic0", "cache-file": "cache0"},
        ], ["ic0"], tag="offline")
        self.addCleanup(d.stop)
        return d.start()

    def ganesha(self):
        g = h.Ganesha(self.dir, self.export)
        self.addCleanup(g.stop)
        return g.start()

    def nbdkit(self):
        nk = h.Nbdkit(self.dir, "file", {"file": self.base_path, "cache": "none"})
        self.addCleanup(nk.stop)
        return nk.start()

    def warm_restart_offline_attach(self, server, base):
        """Read the whole export with nbdcopy (which skips what it is told
        is zeros), stop the server, serve the image with no base, start the
        server again and attach the base.  Returns the warm stats."""
        cache = self.new_cache()
        d = self.start_daemon(base(server), cache, tag="warm", **{"read-ahead": 0})
        r = h.nbd_read_all(d.uri)
        self.assertEqual(r.sha256, self.base_sha)
        warm = self.wait_all_cached(d)
        self.assert_no_errors(warm)
        self.stop_clean(d)

        # The server goes away; the host restarts the daemon.
        server.stop()
        d = self.offline_daemon(cache)
        st = d.stats()
        self.assertEqual(st["base-state"], "down", st)
        self.assertEqual(st["cached-clusters"], st["cluster-count"], st)
        r = h.nbd_read_all(d.uri)
        self.assertEqual(r.nbytes, SIZE)
        self.assertEqual(r.sha256, self.base_sha, "offline read differs from the base")
        st = d.stats()
        self.assertEqual(st["fetches"], 0, st)
        self.assertEqual(st["fast-failures"], 0, st)

        # The server is back: attach the base.
        server.start()
        d.qmp.cmd("blockdev-add", **dict(base(server),
                                         **{"node-name": "base0", "read-only": True}))
        d.qmp.cmd("blockdev-reopen", options=[{
            "driver": "intellicache", "node-name": "ic0",
            "cache-file": "cache0", "file": "base0"}])
        self.assertEqual(d.stats()["base-state"], "up")
        r = h.nbd_read_all(d.uri)
        self.assertEqual(r.sha256, self.base_sha)
        self.stop_clean(d)
        return warm

    def test_nbd_base_with_holes(self):
        """An NBD base reports its holes: they are recorded as zeros, not
        read, and the disk is still whole without the base."""
        warm = self.warm_restart_offline_attach(
            self.nbdkit(), lambda nk: h.nbd_base(nk.socket))
        self.assertGreaterEqual(warm["zeroed-bytes"], 15 * h.MiB, warm)
        self.assertLess(warm["fetched-bytes"], 18 * h.MiB, warm)

    def test_nfs_base(self):
        """QEMU's nfs driver reports no holes: everything is read."""
        warm = self.warm_restart_offline_attach(
            self.ganesha(), lambda g: h.nfs_base(g, "base.img"))
        self.assertEqual(warm["fetched-bytes"], SIZE, warm)

    def test_misses_fail_at_once(self):
        server = self.ganesha()
        cache = self.new_cache()
        d = self.start_daemon(h.nfs_base(server, "base.img"), cache,
                              tag="warm", **{"read-ahead": 0})
        c = h.NbdClient(d.socket, "ic0")
        first = c.pread(0, h.MiB)
        c.close()
        self.stop_clean(d)
        server.stop()

        d = self.offline_daemon(cache)
        c = h.NbdClient(d.socket, "ic0")
        try:
            self.assertEqual(c.pread(0, h.MiB), first, "a hit without the base")
            with self.assertRaises(h.NbdError):
                c.pread(8 * h.MiB, 4096)
        finally:
            c.close()
        self.assertEqual(d.stats()["fast-failures"], 1)
        self.stop_clean(d)
