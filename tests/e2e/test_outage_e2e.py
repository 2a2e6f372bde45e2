"""intellicache end to end: the base server goes away and comes back.

The same two scenarios run against each kind of outage, with a cache that
is half warm (the first half of the base read, read-ahead off):

- a short outage, shorter than miss-timeout: hits are served (data
  compared with the base) and fetch nothing; a miss is held, and served
  with the base's data once the server is back;
- a long outage, longer than miss-timeout (3 s): hits are served; held
  misses get EIO between miss-timeout and miss-timeout + 1 s after they
  were sent; the base becomes ``down`` (INTELLICACHE_BASE_STATE_CHANGE
  events, counters); new misses fail at once; after the server returns,
  misses succeed again with no operator action, and a full read equals the
  base.

Outages: the server stopped (SIGKILL: nbdkit on a unix socket, opened by
QEMU's nbd driver with reconnect-delay; nfs-ganesha, opened by QEMU's nfs
driver) and packets dropped (a blackhole: the server in a network namespace
of its own, the daemon in another, joined by a veth pair; an nftables rule
drops everything between them).  The blackhole tests are skipped, with the
reason, where namespaces cannot be created.

A cache of a cache: daemon A caches the base and exports its node over NBD;
daemon B's intellicache node uses that export as its base.  A full read
through B equals the base; A stops: B's hits are served, its misses fail at
their deadline; A restarts on the same (warm) cache file: B's misses work
again and A serves them without reading the base.

The measured figures (how long after the server returned a held miss
completed or misses worked again) are printed on stderr after the last
test, as lines "figure: ..."; docs/outages.rst has them.  IC_E2E_LONG=1
adds the long variants (a 20 s outage with miss-timeout 60 while fio reads
hits).
"""

import os
import sys
import threading
import time
import unittest

import intellicache_harness as h

BASE_SIZE = 8 * h.MiB
HALF = BASE_SIZE // 2
CLUSTER = 4096
# miss-timeout of the short outages: longer than the outage plus the time
# the base's client takes to find the server again (QEMU's nbd client
# retries its connection after 1, 2, 4, 8 and 16 s).
SHORT_MISS_TIMEOUT = 15
SHORT_OUTAGE = 1.5
# miss-timeout and outage of the long outages.
LONG_MISS_TIMEOUT = 3
LONG_OUTAGE = 5.0
# The longest wait for misses to work again after the server is back:
# QEMU's nbd client reconnects at most 16 s apart, the node probes every
# second.
RECOVERY_BOUND = 25
LONG = os.environ.get("IC_E2E_LONG") == "1"
# net.ipv4.tcp_rto_max_ms in the blackhole tests' namespaces, as
# docs/outages.rst advises: TCP retransmits at least once a second, so a
# connection whose packets were dropped resumes within a second of the
# network's return (by default the interval doubles up to 120 s).
RTO_MAX_MS = 1000
# The most CPU the daemon may use while the server is away, in cores: it
# serves a few hits and waits.  libnfs reconnects in a loop while the
# server refuses connections; QEMU patch 0008 paces it (65% of a core
# without).
OUTAGE_CPU_MAX = 0.25
# The least hit throughput during the 20 s outage, relative to before it
# (test_20s_outage_load).
HIT_RATIO_MIN = 0.9
EVENT = "INTELLICACHE_BASE_STATE_CHANGE"


FIGURES = []


def figure(text):
    """Record a measured figure; all are printed after the last test (not
    during one: tests/e2e/run.sh counts the lines that end in "... ok")."""
    FIGURES.append(text)


def tearDownModule():
    for text in FIGURES:
        print(f"figure: {text}", file=sys.stderr, flush=True)


class HeldRead:
    """One read through the export in a thread of its own (its own NBD
    connection, simple replies so that a failed read is an error reply):
    .data or .error once done, .started and .ended (monotonic seconds)."""

    def __init__(self, socket_path, offset, length=CLUSTER):
        self.offset, self.length = offset, length
        self.client = h.NbdClient(socket_path, "ic0", timeout=RECOVERY_BOUND + 60)
        self.data = self.error = None
        self.ended = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()
        self.thread.start()

    def _run(self):
        try:
            self.data = self.client.pread(self.offset, self.length)
        except h.HarnessError as e:
            self.error = e
        finally:
            self.ended = time.monotonic()

    def done(self):
        return self.ended is not None

    def wait(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise h.HarnessError(f"read at {self.offset} still pending after {timeout} s")
        self.client.close()
        return self

    @property
    def seconds(self):
        return self.ended - self.started


class ReadChecks:
    """Reads through a daemon's export compared with the base file
    (self.base_file), and what the outage tests check with them."""

    def base_bytes(self, offset, length):
        with open(self.base_file, "rb") as f:
            f.seek(offset)
            return f.read(length)

    # -- building blocks ---------------------------------------------------

    def warm_half(self, d):
        """Read the first half through the export; wait until it is cached."""
        self.read_and_compare(d, 0, HALF, "warming")
        h.wait_until(lambda: d.stats()["cached-clusters"] >= HALF // CLUSTER, 30,
                     "the first half cached", interval=0.05)

    def read_and_compare(self, d, offset, length, what):
        c = h.NbdClient(d.socket, "ic0")
        try:
            for off in range(offset, offset + length, h.MiB):
                n = min(h.MiB, offset + length - off)
                self.assertEqual(c.pread(off, n), self.base_bytes(off, n),
                                 f"{what}: data at {off}+{n} differs from the base")
        finally:
            c.close()

    def assert_hits_served(self, d, what):
        """The warm half is served, right, quickly and without the base."""
        fetched = d.stats()["fetched-bytes"]
        t = time.monotonic()
        self.read_and_compare(d, 0, HALF, what)
        seconds = time.monotonic() - t
        self.assertLess(seconds, 2, f"{what}: hits took {seconds:.2f} s")
        self.assertEqual(d.stats()["fetched-bytes"], fetched, f"{what}: hits fetched")
        return seconds

    def miss_offset(self, i):
        """An offset in the cold half, a cluster of its own for each @i
        below HALF / CLUSTER."""
        return HALF + (17 * i + 3) % (HALF // CLUSTER) * CLUSTER

    def assert_transitions(self, events, want):
        """The base-state changes form a chain from 'up' that passes
        through every state of @want in order."""
        states = [(e["data"]["old-state"], e["data"]["new-state"]) for e in events]
        self.assertTrue(states, "no INTELLICACHE_BASE_STATE_CHANGE event")
        self.assertTrue(all(e["data"]["node-name"] == "ic0" for e in events), events)
        self.assertEqual(states[0][0], "up", states)
        for (_, new), (old, _) in zip(states, states[1:]):
            self.assertEqual(old, new, f"events do not chain: {states}")
        path = [states[0][0]] + [new for _, new in states]
        it = iter(path)
        self.assertTrue(all(s in it for s in want), f"states {path}, wanted {want}")
        return path

    def wait_misses_work(self, d, since, offset):
        """Read a miss every 0.2 s until one succeeds; seconds after @since."""
        deadline = since + RECOVERY_BOUND
        attempts = 0
        while True:
            attempts += 1
            r = HeldRead(d.socket, offset).wait(LONG_MISS_TIMEOUT + 5)
            if r.error is None:
                self.assertEqual(r.data, self.base_bytes(offset, CLUSTER))
                return r.ended - since, attempts
            if time.monotonic() > deadline:
                self.fail(f"misses still fail {RECOVERY_BOUND} s after the server "
                          f"returned ({attempts} attempts): {r.error}; {d.stats()}")
            time.sleep(0.2)


class OutageTests(ReadChecks):
    """The scenarios.  A test class provides the base's node options
    (base_node()), the outage (server_away(), server_back()), a name for the
    figures (KIND) and, for a daemon in a network namespace, netns."""

    netns = None
    KIND = "?"

    def begin_outage(self):
        """server_away(), with server_back() as a cleanup that runs before
        the daemon is stopped if the test ends during the outage."""
        self.server_away()
        self.outage = True
        self.addCleanup(self.end_outage)
        return time.monotonic()

    def end_outage(self):
        """server_back(); returns when it began (a server is back while it
        starts: ganesha answers before it has written its pid file)."""
        t = time.monotonic()
        if getattr(self, "outage", False):
            self.outage = False
            self.server_back()
        return t

    def daemon(self, miss_timeout, tag="qsd"):
        return self.start_daemon(self.base_node(), self.new_cache(f"cache-{tag}.img"),
                                 tag=tag, netns=self.netns,
                                 **{"read-ahead": 0, "miss-timeout": miss_timeout})

    # -- the scenarios ------------------------------------------------------

    def test_short_outage(self):
        """The server is away for 1.5 s: hits are served, a miss waits and
        gets the base's data when the server is back."""
        d = self.daemon(SHORT_MISS_TIMEOUT)
        self.warm_half(d)
        away = self.begin_outage()
        self.assert_hits_served(d, "hits during the outage")
        miss = HeldRead(d.socket, self.miss_offset(0))
        time.sleep(max(0.0, SHORT_OUTAGE - (time.monotonic() - away)))
        self.assertFalse(miss.done(), f"the miss did not wait: {miss.error}")
        back = self.end_outage()
        miss.wait(SHORT_MISS_TIMEOUT + 5)
        self.assertIsNone(miss.error, f"held miss failed after {miss.seconds:.2f} s")
        self.assertEqual(miss.data, self.base_bytes(miss.offset, CLUSTER))
        after = miss.ended - back
        figure(f"{self.KIND}: outage {back - away:.1f} s, held miss served "
               f"{after:.2f} s after the server returned ({miss.seconds:.2f} s in all)")
        self.assertLess(after, RECOVERY_BOUND)
        st = d.stats()
        self.assertEqual(st["miss-timeouts"], 0, st)
        self.assertEqual(st["fast-failures"], 0, st)
        h.wait_until(lambda: d.stats()["base-state"] == "up", 10, "base-state up")
        self.read_and_compare(d, 0, BASE_SIZE, "full read after the outage")
        self.stop_clean(d)

    def test_long_outage(self):
        """The server is away for 5 s, miss-timeout is 3 s: held misses get
        EIO at their deadline, the base is down, new misses fail at once,
        hits are served; then misses work again by themselves."""
        d = self.daemon(LONG_MISS_TIMEOUT)
        self.warm_half(d)
        d.qmp.events()
        away = self.begin_outage()
        cpu0 = h.proc_cpu_s(d.pid)
        misses = [HeldRead(d.socket, self.miss_offset(i)) for i in range(4)]
        self.assert_hits_served(d, "hits while misses wait")
        for m in misses:
            m.wait(LONG_MISS_TIMEOUT + 5)
        for m in misses:
            self.assertIsInstance(m.error, h.NbdError, f"miss at {m.offset}: {m.data!r:.40}")
            self.assertEqual(m.error.errno, 5, "expected NBD_EIO")
            self.assertGreaterEqual(m.seconds, LONG_MISS_TIMEOUT - 0.05)
            self.assertLessEqual(m.seconds, LONG_MISS_TIMEOUT + 1.0)
        figure(f"{self.KIND}: held misses failed after "
               f"{', '.join(f'{m.seconds:.2f}' for m in misses)} s "
               f"(miss-timeout {LONG_MISS_TIMEOUT})")
        st = d.stats()
        self.assertEqual(st["base-state"], "down", st)
        self.assertGreaterEqual(st["miss-timeouts"], len(misses), st)
        # While down, a new miss fails at once.
        fast = HeldRead(d.socket, self.miss_offset(10)).wait(LONG_MISS_TIMEOUT + 5)
        self.assertIsInstance(fast.error, h.NbdError)
        self.assertLess(fast.seconds, 0.5, "a miss while down did not fail at once")
        self.assertGreater(d.stats()["fast-failures"], 0)
        self.assert_hits_served(d, "hits while the base is down")

        time.sleep(max(0.0, LONG_OUTAGE - (time.monotonic() - away)))
        busy = (h.proc_cpu_s(d.pid) - cpu0) / (time.monotonic() - away)
        back = self.end_outage()
        figure(f"{self.KIND}: the daemon used {busy:.0%} of a core during the outage")
        self.assertLess(busy, OUTAGE_CPU_MAX, "the daemon was busy while the server was away")
        after, attempts = self.wait_misses_work(d, back, self.miss_offset(20))
        st = h.wait_until(lambda: (lambda s: s if s["base-state"] == "up" else None)(
            d.stats()), 10, "base-state up")
        figure(f"{self.KIND}: outage {back - away:.1f} s, misses work again "
               f"{after:.2f} s after the server returned ({attempts} attempts); "
               f"probes {st['probes']}, late fetches {st['late-fetches']}")
        path = self.assert_transitions(d.qmp.events(EVENT, wait=0.2), ["down", "up"])
        self.assertEqual(path[-1], "up", path)
        self.assertEqual(st["store-errors"], 0, st)
        self.read_and_compare(d, 0, BASE_SIZE, "full read after the outage")
        self.stop_clean(d)

    @unittest.skipUnless(LONG, "long variant (IC_E2E_LONG=1)")
    def test_64_readers(self):
        """An 8 s outage with miss-timeout 5 and 64 readers waiting: each
        gets EIO 5 to 6 s after it was sent, the daemon's memory stays
        bounded, misses work again after the return (measured)."""
        d = self.daemon(5)
        self.warm_half(d)
        rss0 = h.proc_status_kib(d.pid)
        away = self.begin_outage()
        misses = [HeldRead(d.socket, self.miss_offset(i)) for i in range(64)]
        peak = rss0
        while not all(m.done() for m in misses) and time.monotonic() - away < 15:
            peak = max(peak, h.proc_status_kib(d.pid))
            time.sleep(0.1)
        for m in misses:
            m.wait(5)
            self.assertIsInstance(m.error, h.NbdError, f"miss at {m.offset}")
            self.assertGreaterEqual(m.seconds, 5 - 0.05)
            self.assertLessEqual(m.seconds, 6)
        slowest = max(m.seconds for m in misses)
        time.sleep(max(0.0, 8 - (time.monotonic() - away)))
        back = self.end_outage()
        after, attempts = self.wait_misses_work(d, back, self.miss_offset(100))
        figure(f"{self.KIND}: 64 readers, 8 s outage, miss-timeout 5: all failed within "
               f"{slowest:.2f} s; RSS {rss0} KiB before, at most {peak} KiB while they "
               f"waited; misses work again {after:.2f} s after the server returned")
        self.assertLess(peak - rss0, 32 * 1024, "RSS grew by 32 MiB or more")
        self.stop_clean(d)

    @unittest.skipUnless(LONG, "long variant (IC_E2E_LONG=1)")
    def test_20s_outage_load(self):
        """A 20 s outage with miss-timeout 60 while fio reads hits and
        misses: no read fails; hit throughput during the outage; how long
        after the server returns the held misses complete."""
        d = self.daemon(60)
        self.warm_half(d)
        argv_common = ["--ioengine=nbd", f"--uri={d.uri}", "--rw=randread", "--bs=4k",
                       "--iodepth=4", "--time_based"]

        def hits(tag, seconds=4, runs=2):
            # The best of two runs: on a shared machine one run can lose a
            # tenth of its rate to other work.
            return max((h.run_fio_argv([f"--name={tag}{i}", *argv_common,
                                        f"--size={HALF}", f"--runtime={seconds}"],
                                       self.dir, f"{tag}{i}", seconds + 60)
                        for i in range(runs)), key=lambda r: r["iops"])

        before = hits("hits-up")
        away = self.begin_outage()
        misses = [HeldRead(d.socket, self.miss_offset(i)) for i in range(16)]
        during = hits("hits-down")
        time.sleep(max(0.0, 20 - (time.monotonic() - away)))
        back = self.end_outage()
        for m in misses:
            m.wait(70)
            self.assertIsNone(m.error, f"miss at {m.offset}: {m.error}")
            self.assertEqual(m.data, self.base_bytes(m.offset, CLUSTER))
        last = max(m.ended for m in misses) - back
        ratio = during["iops"] / before["iops"]
        figure(f"{self.KIND}: 20 s outage under load: hit IOPS {during['iops']:.0f} during, "
               f"{before['iops']:.0f} before ({ratio:.2f}x); 16 held misses all served "
               f"{last:.2f} s after the server returned")
        self.assertGreaterEqual(ratio, HIT_RATIO_MIN)
        self.assertLess(last, RECOVERY_BOUND)
        self.stop_clean(d)


# -- NBD base: nbdkit killed ---------------------------------------------------


class NbdServerStopped(OutageTests, h.NbdkitFileTestCase):
    """nbdkit (file plugin, unix socket) is killed and started again; QEMU's
    nbd client has reconnect-delay (h.RECONNECT_DELAY)."""

    KIND = "nbd, server stopped"
    BASE_SIZE = BASE_SIZE
    BASE_SEED = 21

    def setUp(self):
        super().setUp()
        self.base_file = self.base_path
        self.nk = self.start_nbdkit("base")

    def base_node(self):
        return h.nbd_base(self.nk.socket)

    def server_away(self):
        # nbdkit ignores SIGTERM while a client is connected.
        self.nk.kill9()

    def server_back(self):
        self.nk.start()

    def test_reconnect_delay(self):
        """What reconnect-delay does, with the node's retries off
        (miss-timeout 0): a miss sent while the server is away waits for
        the connection up to reconnect-delay; without it the miss fails at
        once.  Either way QEMU's nbd client connects again in the
        background: the next miss once the server is back is served."""
        for delay in (h.RECONNECT_DELAY, 0):
            with self.subTest(reconnect_delay=delay):
                cache = self.new_cache(f"cache-rd{delay}.img")
                d = self.start_daemon(h.nbd_base(self.nk.socket, reconnect_delay=delay),
                                      cache, tag=f"rd{delay}",
                                      **{"read-ahead": 0, "miss-timeout": 0})
                self.warm_half(d)
                self.begin_outage()
                miss = HeldRead(d.socket, self.miss_offset(delay))
                time.sleep(0.5)
                back = self.end_outage()
                miss.wait(delay + 10)
                if delay:
                    self.assertIsNone(miss.error, "reconnect-delay did not hold the miss")
                    self.assertEqual(miss.data, self.base_bytes(miss.offset, CLUSTER))
                    figure(f"{self.KIND}, miss-timeout 0, reconnect-delay {delay}: "
                           f"miss held and served {miss.ended - back:.2f} s after the "
                           "server returned")
                else:
                    self.assertIsInstance(miss.error, h.NbdError)
                    self.assertLess(miss.seconds, 0.5, "without reconnect-delay")
                    after, attempts = self.wait_misses_work(d, back, self.miss_offset(30))
                    figure(f"{self.KIND}, miss-timeout 0, no reconnect-delay: the miss "
                           f"failed after {miss.seconds:.2f} s; misses work again "
                           f"{after:.2f} s after the server returned")
                self.stop_clean(d)


# -- NFS base: ganesha killed ----------------------------------------------------


class NfsCase(h.DaemonTestCase):
    PROGRAMS = ("ganesha.nfsd", "rpcbind", "nfs-ls")
    NETNS = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.netns = None
        if cls.NETNS:
            cls.netns = netpair_or_skip(cls)
        export = cls.tmp / "export"
        export.mkdir()
        cls.base_file = export / "base.img"
        h.make_base_image(cls.base_file, BASE_SIZE, seed=22)
        cls.ganesha = h.Ganesha(cls.tmp, export, netns=cls.netns)
        cls.addClassCleanup(cls.ganesha.stop)
        cls.ganesha.start()

    def base_node(self):
        return h.nfs_base(self.ganesha, "base.img")

    def setUp(self):
        super().setUp()
        # A test that failed half way leaves no outage behind.
        if not self.ganesha.running():
            self.ganesha.start()


class NfsServerStopped(OutageTests, NfsCase):
    """ganesha is killed (rpcbind stays) and started again."""

    KIND = "nfs, server stopped"

    def server_away(self):
        self.ganesha.kill9()

    def server_back(self):
        t = time.monotonic()
        self.ganesha.start()
        figure(f"{self.KIND}: ganesha took {time.monotonic() - t:.2f} s to start")


# -- blackholes -------------------------------------------------------------------


_netpair_skip = []


def netpair_or_skip(cls):
    """A started NetPair for the class @cls, stopped after it; SkipTest if
    this machine cannot create one."""
    if not _netpair_skip:
        _netpair_skip.append(h.NetPair.skip_reason())
    if _netpair_skip[0]:
        raise unittest.SkipTest(_netpair_skip[0])
    net = h.NetPair(rto_max_ms=RTO_MAX_MS)
    cls.addClassCleanup(net.stop)
    return net.start()


class NbdBlackhole(OutageTests, h.NbdkitFileTestCase):
    """nbdkit listens on TCP in the server namespace, the daemon runs in the
    client namespace; the outage drops every packet between them."""

    KIND = "nbd, packets dropped"
    BASE_SIZE = BASE_SIZE
    BASE_SEED = 23

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.netns = netpair_or_skip(cls)

    def setUp(self):
        super().setUp()
        self.base_file = self.base_path
        nk = h.Nbdkit(self.dir, "file", {"file": self.base_path, "cache": "none"},
                      tag="base", netns=self.netns)
        self.addCleanup(nk.stop)
        self.nk = nk.start()

    def base_node(self):
        return h.nbd_base(host=self.nk.host, port=self.nk.port)

    def server_away(self):
        self.netns.blackhole()

    def server_back(self):
        self.netns.restore()


class NfsBlackhole(OutageTests, NfsCase):
    """ganesha and its rpcbind in the server namespace, the daemon in the
    client namespace; the outage drops every packet between them."""

    KIND = "nfs, packets dropped"
    NETNS = True

    @classmethod
    def setUpClass(cls):
        # The namespace's rpcbind takes /run/rpcbind.sock, a file every
        # namespace shares: not while the host's own rpcbind has it.
        if h.unix_socket_ready("/run/rpcbind.sock"):
            raise unittest.SkipTest("an rpcbind runs on this host (/run/rpcbind.sock); "
                                    "the namespace's would replace its socket")
        super().setUpClass()

    def server_away(self):
        self.netns.blackhole()

    def server_back(self):
        self.netns.restore()


# -- a cache of a cache -------------------------------------------------------------


class TieredCache(ReadChecks, h.NbdkitFileTestCase):
    """Daemon A: base (nbdkit) -> intellicache -> NBD export.  Daemon B: A's
    export (QEMU's nbd driver, reconnect-delay) -> intellicache -> NBD
    export."""

    BASE_SIZE = BASE_SIZE
    BASE_SEED = 24
    def setUp(self):
        super().setUp()
        self.base_file = self.base_path

    def test_middle_tier_outage(self):
        nk = self.start_nbdkit("base", stats=True)
        cache_a = self.new_cache("cache-a.img")
        a = self.start_daemon(h.nbd_base(nk.socket), cache_a, tag="tier-a")
        b = self.start_daemon(h.nbd_base(a.socket, export="ic0"), self.new_cache("cache-b.img"),
                              tag="tier-b", **{"read-ahead": 0,
                                               "miss-timeout": LONG_MISS_TIMEOUT})
        # B's first half: cached in B, and on the way in A.
        self.read_and_compare(b, 0, HALF, "first half through B")
        h.wait_until(lambda: b.stats()["cached-clusters"] >= HALF // CLUSTER, 30,
                     "B's first half cached")
        # A whole, through A: A holds everything, B half of it.
        self.assertEqual(h.nbd_read_all(a.uri).sha256, self.base_sha)
        self.wait_all_cached(a)
        self.stop_clean(a)
        b.qmp.events()

        # The middle tier is gone.
        away = time.monotonic()
        self.assert_hits_served(b, "B's hits while A is down")
        miss = HeldRead(b.socket, self.miss_offset(0)).wait(LONG_MISS_TIMEOUT + 5)
        self.assertIsInstance(miss.error, h.NbdError, "a miss through B while A is down")
        self.assertGreaterEqual(miss.seconds, LONG_MISS_TIMEOUT - 0.05)
        self.assertLessEqual(miss.seconds, LONG_MISS_TIMEOUT + 1.0)
        self.assertEqual(b.stats()["base-state"], "down")
        figure(f"tiers: a miss through B failed {miss.seconds:.2f} s after it was sent "
               f"(B's miss-timeout {LONG_MISS_TIMEOUT})")

        # A again, on its warm cache file.
        a.start()
        back = time.monotonic()
        after, attempts = self.wait_misses_work(b, back, self.miss_offset(1))
        figure(f"tiers: A away {back - away:.1f} s; B's misses work again {after:.2f} s "
               f"after A returned ({attempts} attempts)")
        self.assertEqual(h.nbd_read_all(b.uri).sha256, self.base_sha,
                         "full read through B after A's restart")
        self.assertEqual(a.stats()["fetched-bytes"], 0, "A read the base after its restart")
        path = self.assert_transitions(b.qmp.events(EVENT, wait=0.2), ["down", "up"])
        self.assertEqual(path[-1], "up")
        self.stop_clean(b)
        self.stop_clean(a)


if __name__ == "__main__":
    unittest.main(verbosity=2)
