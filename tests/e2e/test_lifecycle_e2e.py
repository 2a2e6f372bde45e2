"""intellicache end to end: node lifecycle under a running daemon.

Many blockdev-add / blockdev-del cycles of an intellicache node must leak
neither memory nor file descriptors, and deleting a node that an export
uses is refused while the export serves correct data.
"""

import os
import unittest

import intellicache_harness as h

BASE_SIZE = 8 * h.MiB
# Cycles; IC_LIFECYCLE_CYCLES changes it (1000 take a few seconds).
CYCLES = int(os.environ.get("IC_LIFECYCLE_CYCLES", "1000"))


class LifecycleE2E(h.DaemonTestCase):
    PROGRAMS = ()

    def setUp(self):
        super().setUp()
        self.base_path = self.dir / "base.img"
        self.base_sha = h.make_base_image(self.base_path, BASE_SIZE, seed=3)
        base = {"driver": "file", "filename": str(self.base_path)}
        # No cache: the daemon exports base0; intellicache nodes come and go.
        self.d = h.IcDaemon(self.dir, base)
        self.addCleanup(self.d.stop)
        self.d.start()
        self.cache = self.new_cache()
        self.d.qmp.cmd("blockdev-add", driver="file", **{"node-name": "cf"},
                       filename=str(self.cache))

    def add_node(self):
        self.d.qmp.cmd("blockdev-add", driver="intellicache",
                       **{"node-name": "icl", "cache-file": "cf"}, file="base0")

    def read_through_export(self):
        """Export the node, read a few ranges, compare with the base."""
        self.d.qmp.cmd("block-export-add", type="nbd", id="el",
                       **{"node-name": "icl"})
        c = h.NbdClient(self.d.socket, "icl")
        try:
            with open(self.base_path, "rb") as f:
                for offset in (0, 3 * 65536 + 17, BASE_SIZE - 5000):
                    f.seek(offset)
                    self.assertEqual(c.pread(offset, 5000), f.read(5000))
        finally:
            c.close()

    def test_add_del_cycles_leak_nothing(self):
        pid = self.d.proc.pid
        warmup = 20
        for i in range(CYCLES + warmup):
            if i == warmup:
                rss0, fds0 = h.proc_status_kib(pid), h.fd_count(pid)
            self.add_node()
            if i % 10 == 0:
                self.read_through_export()
                self.d.qmp.cmd("block-export-del", id="el")
                h.wait_until(lambda: not any(
                    e["id"] == "el" for e in self.d.qmp.cmd("query-block-exports")),
                    10, "export removed")
            self.d.qmp.cmd("blockdev-del", **{"node-name": "icl"})
        rss1, fds1 = h.proc_status_kib(pid), h.fd_count(pid)
        figures = f"{CYCLES} cycles: RSS {rss0} -> {rss1} KiB, fds {fds0} -> {fds1}"
        self.assertEqual(fds1, fds0, f"file descriptors leaked; {figures}")
        self.assertLess(rss1 - rss0, 2048, f"RSS grew by 2 MiB or more; {figures}")

    def test_del_of_exported_node_is_refused(self):
        self.add_node()
        self.read_through_export()
        with self.assertRaises(h.QMPError) as cm:
            self.d.qmp.cmd("blockdev-del", **{"node-name": "icl"})
        self.assertIn("in use", str(cm.exception))
        # The export still serves correct data.
        self.read_through_export_again()

    def read_through_export_again(self):
        c = h.NbdClient(self.d.socket, "icl")
        try:
            with open(self.base_path, "rb") as f:
                self.assertEqual(c.pread(0, BASE_SIZE), f.read())
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
