"""A full-disk scan through a bounded cache keeps the boot set.

A boot set (scattered reads over a region) is read twice, then the whole
base is read sequentially by nbdcopy (a backup, a virus scan), then the
boot set again: with a cache much smaller than the base, the last pass
must still hit at least 90% of its bytes, and the scan must not have been
stored beyond the scan threshold.  The base is nbdkit's pattern plugin,
so every byte read is checked.

CI: a 512 MiB base, a 64 MiB cache, a 24 MiB boot set.  IC_E2E_LONG=1:
the benchmark's figure, a 4 GiB base, a 512 MiB cache, a 256 MiB boot
set.
"""

import os
import random
import subprocess
import sys

import intellicache_harness as h

LONG = os.environ.get("IC_E2E_LONG") == "1"
BASE = 4 * h.GiB if LONG else 512 * h.MiB
CACHE = 512 * h.MiB if LONG else 64 * h.MiB
BOOT = 256 * h.MiB if LONG else 24 * h.MiB
PIECE = 64 * h.KiB


class ScanE2E(h.DaemonTestCase):
    PROGRAMS = ("nbdkit", "nbdcopy")

    def boot_pass(self, c, order):
        for off in order:
            data = c.pread(off, PIECE)
            want = b"".join((off + i).to_bytes(8, "big") for i in range(0, PIECE, 8))
            self.assertEqual(data, want, f"wrong data at {off}")

    def test_boot_set_survives_a_full_scan(self):
        nk = h.Nbdkit(self.dir, "pattern", {"size": BASE}, tag="base").start()
        self.addCleanup(nk.stop)
        cache = self.new_cache()
        d = self.start_daemon(h.nbd_base(nk.socket), cache,
                              cache_options=dict(h.CACHE_DIRECT, discard="unmap"),
                              **{"cache-size": CACHE, "read-ahead": 0})
        # The boot set lies in the middle of the base, read scattered.
        start = BASE // 3 // PIECE * PIECE
        order = [start + i * PIECE for i in range(BOOT // PIECE)]
        random.Random(7).shuffle(order)
        c = h.NbdClient(d.socket, "ic0", timeout=60)
        try:
            self.boot_pass(c, order)
            self.boot_pass(c, order)
            before_scan = d.stats()
            subprocess.run(["nbdcopy", "--", d.uri, "null:"], check=True, timeout=900)
            after_scan = d.stats()
            self.boot_pass(c, order)
            after = d.stats()
        finally:
            c.close()
        hits = after["hit-bytes"] - after_scan["hit-bytes"]
        ratio = hits / BOOT
        scanned_stored = after_scan["stored-bytes"] - before_scan["stored-bytes"]
        self.assertGreaterEqual(ratio, 0.90,
                                f"the boot set's last pass hit {ratio:.1%} of its bytes")
        self.assertGreater(after_scan["scan-bytes"] - before_scan["scan-bytes"], BASE // 2,
                           "the scan was not passed through")
        self.assertLessEqual(after["used-bytes"], CACHE)
        type(self).summary = (f"scan: last boot pass hit {ratio:.1%}; the scan stored "
              f"{scanned_stored} of {BASE} bytes, passed "
              f"{after_scan['scan-bytes'] - before_scan['scan-bytes']} through")

    @classmethod
    def tearDownClass(cls):
        # Printed after unittest's "... ok" line (which run.sh counts).
        if getattr(cls, "summary", None):
            print(cls.summary, file=sys.stderr)
        super().tearDownClass()
