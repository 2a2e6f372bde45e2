"""unittest base classes of the end-to-end tests."""

import tempfile
import unittest
from pathlib import Path

from .common import log_tail, missing_programs, qsd_binary, wait_until
from .daemon import IcDaemon
from .images import create_cache_file, make_base_image
from .servers import Nbdkit


class DaemonTestCase(unittest.TestCase):
    """Base class for the e2e tests: per-test temp dir, daemon helpers."""

    # The programs a test class needs besides qemu-storage-daemon.
    PROGRAMS = ("nbdcopy",)

    @classmethod
    def setUpClass(cls):
        missing = missing_programs(cls.PROGRAMS)
        if missing:
            raise unittest.SkipTest(f"missing programs: {', '.join(missing)}")
        if not qsd_binary().exists():
            raise unittest.SkipTest(f"{qsd_binary()} not built (set IC_QEMU_BUILD?)")
        tmp = tempfile.TemporaryDirectory(prefix=f"ic-e2e-{cls.__name__}-")
        cls.addClassCleanup(tmp.cleanup)
        cls.tmp = Path(tmp.name)

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self._testMethodName}-", dir=self.tmp))

    def new_cache(self, name="cache.img"):
        return create_cache_file(self.dir / name)

    def start_daemon(self, base, cache, tag="qsd", cache_options=None, netns=None,
                     **ic_options):
        """Start an IcDaemon that is stopped at the end of the test in any case."""
        d = IcDaemon(self.dir, base, cache, ic_options, tag=tag, cache_options=cache_options,
                     netns=netns)
        self.addCleanup(d.stop)
        return d.start()

    def stop_clean(self, daemon):
        """Stop by SIGTERM and insist on a clean, timely exit."""
        status, killed = daemon.stop()
        self.assertFalse(killed, f"{daemon.name} ignored SIGTERM; log:\n"
                                 f"{log_tail(daemon.log_path)}")
        self.assertEqual(status, 0, f"{daemon.name} exit status; log:\n"
                                    f"{log_tail(daemon.log_path)}")

    def wait_settled(self, daemon, timeout=30):
        """Wait until nothing is fetched, waits to be stored, or is
        deferred until guests are quiet (docs/design.rst, Deferred
        stores): what was read is then cached."""
        def done():
            st = daemon.stats()
            return st if (st["inflight-fetches"] == 0 and st["store-backlog-bytes"] == 0
                          and st["deferred-bytes"] == 0) else None
        return wait_until(done, timeout, "fetches and stores to settle", interval=0.1)

    def wait_all_cached(self, daemon, timeout=30):
        """Wait until every cluster is cached (stores finish behind reads)."""
        def done():
            st = daemon.stats()
            return st if st["cached-clusters"] == st["cluster-count"] else None
        return wait_until(done, timeout, "all clusters cached", interval=0.1)

    def assert_no_errors(self, stats):
        self.assertEqual(stats["fetch-errors"], 0, stats)
        self.assertEqual(stats["store-errors"], 0, stats)


class NbdkitFileTestCase(DaemonTestCase):
    """Tests over one base image of seeded random content (BASE_SIZE bytes,
    BASE_SEED), made once per class and served by nbdkit's file plugin."""

    PROGRAMS = ("nbdkit", "nbdcopy")
    BASE_SIZE = 0
    BASE_SEED = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base_path = cls.tmp / "base.img"
        cls.base_sha = make_base_image(cls.base_path, cls.BASE_SIZE, seed=cls.BASE_SEED)

    def start_nbdkit(self, tag, filters=(), filter_args=None, stats=False):
        """nbdkit serving the base (no page cache), stopped at the end."""
        nk = Nbdkit(self.dir, "file", {"file": self.base_path, "cache": "none"},
                    filters, filter_args, stats=stats, tag=tag)
        self.addCleanup(nk.stop)
        return nk.start()
