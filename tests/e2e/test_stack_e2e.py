"""The daemon's main-thread stack stays bounded under stores.

Random 4 KiB misses over a 1 TiB base store one 64 KiB cluster each (as
they are read, or once the reads stop if the node defers them), and each
metadata write-out then writes hundreds of far-apart blocks one
after the other, then flushes: long chains of requests, each issued from
the completion of the last.  With QEMU's native AIO, each request
already complete when the next was submitted used to nest another level
of linux-aio's submission and completion code on the stack of the thread
that polls (8.5 KiB a level): the main thread's stack grew by up to
1 MiB during 5000 such reads, and a longer chain could overflow a
coroutine's 1 MiB stack.  QEMU patch 0007 (docs/building.rst) ends that
recursion; this test checks VmStk of /proc/PID/status, which counts the
pages the main thread's stack ever reached.
"""

import sys
import unittest

import intellicache_harness as h

# The kernel's initial stack VMA is 132 KiB; the daemon never needs more
# than a few tens of KiB of it.  One level of the old recursion was
# 8.5 KiB; without patch 0007 this test measured 276-444 KiB in three
# runs of three (QD16 makes each write-out long), and the memory
# benchmark up to 1100 KiB.
STACK_LIMIT_KIB = 256
READS = 10000
ROUNDS = 2


class StackE2E(h.DaemonTestCase):
    PROGRAMS = ("nbdkit", "fio")
    summary = None

    @classmethod
    def tearDownClass(cls):
        # After unittest's "... ok" line, which run.sh counts.
        if cls.summary:
            print(cls.summary, file=sys.stderr)
        super().tearDownClass()

    def test_main_stack_stays_small_under_stores(self):
        nk = h.Nbdkit(self.dir, "pattern", {"size": "1T"}, tag="base")
        self.addCleanup(nk.stop)
        nk.start()
        cache = self.new_cache()
        blockdevs = [dict(h.nbd_base(nk.socket), **{"node-name": "base0", "read-only": True}),
                     # linux-aio, whose recursion this is about; the
                     # harness's default is io_uring.
                     dict(h.file_node("cache0", cache), aio="native"),
                     h.intellicache_node("ic0", "base0", "cache0", **{"cluster-size": 65536})]
        d = h.StorageDaemon(self.dir, blockdevs, ["ic0"], tag="stack")
        self.addCleanup(d.stop)
        d.start()
        stk = []
        for r in range(ROUNDS):
            argv = ["--ioengine=nbd", f"--uri={d.uri_for('ic0')}", "--name=misses",
                    "--rw=randread", "--bs=4k", "--iodepth=16", "--norandommap",
                    "--randrepeat=0", f"--number_ios={READS}"]
            h.run_fio_argv(argv, self.dir, f"fio-{r}", 300)
            # Misses read once while the thread is busy are stored once
            # fio stops (docs/design.rst, Deferred stores): with the same
            # metadata write-outs after them.
            self.wait_settled(d, 180)
            stk.append(h.proc_status_kib(d.proc.pid, "VmStk:"))
        st = d.stats("ic0")
        self.assertGreaterEqual(st["stored-bytes"], ROUNDS * READS * 65536 // 2, st)
        type(self).summary = (f"stack e2e: VmStk after each round of {READS} misses: "
                              f"{stk} KiB (limit {STACK_LIMIT_KIB})")
        self.assertLessEqual(max(stk), STACK_LIMIT_KIB, stk)


if __name__ == "__main__":
    unittest.main()
