"""intellicache-ctl end to end: a real qemu-storage-daemon, a real base.

One daemon for the class, with two intellicache nodes over nbdkit bases
(ic0 unbounded and read whole, so its cache file is complete; ic1
bounded by cache-size) and a QMP monitor of its own for the tool (a QMP
monitor serves one client at a time; the harness holds the other).
Checked: status as a table and as JSON, metrics through promtool, the
textfile and HTTP outputs, top, inspect of the real cache file, verify
against the base (and a corrupted copy), and every kind of bad input:
one line on stderr, a non-zero exit, no hang.

The tool is build/tools/ctl/intellicache-ctl, or $IC_CTL.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import intellicache_harness as h

BASE_SIZE = 8 * h.MiB + 3 * 512
CACHE_SIZE = 2 * h.MiB



class CtlE2E(h.NbdkitFileTestCase):
    PROGRAMS = ("nbdkit", "nbdcopy", "promtool")
    BASE_SIZE = BASE_SIZE
    BASE_SEED = 12

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ctl = h.built_ctl()
        cls.nk = h.Nbdkit(cls.tmp, "file", {"file": cls.base_path, "cache": "none"},
                          tag="base")
        cls.addClassCleanup(cls.nk.stop)
        cls.nk.start()
        cls.cache0 = h.create_cache_file(cls.tmp / "cache0.img")
        cls.cache1 = h.create_cache_file(cls.tmp / "cache1.img")
        blockdevs = [
            dict(h.nbd_base(cls.nk.socket), **{"node-name": "base0", "read-only": True}),
            dict(h.nbd_base(cls.nk.socket), **{"node-name": "base1", "read-only": True}),
            h.file_node("cache0", cls.cache0, direct=False),
            dict(h.file_node("cache1", cls.cache1, direct=False), discard="unmap"),
            h.intellicache_node("ic0", "base0", "cache0"),
            h.intellicache_node("ic1", "base1", "cache1", **{"cache-size": CACHE_SIZE}),
        ]
        cls.daemon = h.StorageDaemon(cls.tmp, blockdevs, ["ic0", "ic1"], tag="ctl")
        cls.qmp_sock = cls.tmp / "ctl-tool.sock"
        cls.daemon.argv += ["--chardev", f"socket,id=ctl,path={cls.qmp_sock},server=on,wait=off",
                            "--monitor", "chardev=ctl"]
        cls.addClassCleanup(cls.daemon.stop)
        cls.daemon.start()
        h.wait_until(lambda: h.unix_socket_ready(cls.qmp_sock), 20, "the tool's monitor")
        # ic0: read whole and recorded durably, so its cache file is complete.
        assert h.nbd_read_all(cls.daemon.uri_for("ic0")).sha256 == cls.base_sha
        h.nbd_read_all(cls.daemon.uri_for("ic1"))
        h.wait_until(lambda: (lambda st: st["durable-clusters"] == st["cluster-count"])(
            cls.daemon.stats("ic0")), 30, "ic0 recorded whole", interval=0.1)
        cls.summary = None

    @classmethod
    def tearDownClass(cls):
        # Printed after unittest's "... ok" line (which run.sh counts).
        if getattr(cls, "summary", None):
            print(cls.summary, file=sys.stderr)
        super().tearDownClass()

    def run_ctl(self, *args, qmp=True, timeout=30, env=None):
        argv = [str(self.ctl)] + (["--qmp", str(self.qmp_sock)] if qmp else []) + list(args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=env)

    def ok(self, *args, **kw):
        r = self.run_ctl(*args, **kw)
        self.assertEqual(r.returncode, 0, f"{args}: {r.stderr}")
        self.assertEqual(r.stderr, "", args)
        return r.stdout

    def fails(self, args, pattern, status=2, qmp=True, timeout=30):
        """One line on stderr matching @pattern, exit @status, nothing
        that looks like a crash."""
        start = time.monotonic()
        r = self.run_ctl(*args, qmp=qmp, timeout=timeout)
        lines = r.stderr.splitlines()
        self.assertEqual(r.returncode, status, f"{args}: {r.stderr}")
        self.assertEqual(len(lines), 1, f"{args}: stderr {r.stderr!r}")
        self.assertTrue(lines[0].startswith("intellicache-ctl: "), lines[0])
        self.assertRegex(lines[0], pattern)
        for bad in ("terminate called", "Traceback", "Aborted", "what():"):
            self.assertNotIn(bad, r.stderr)
        return time.monotonic() - start

    def promtool(self, text):
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, f"promtool: {r.stdout}{r.stderr}\n{text}")

    # --- status ---

    def test_status_table(self):
        out = self.ok("status")
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        self.assertEqual(lines[0].split(), ["NODE", "BASE", "SIZE", "STATE", "BASE-STATE",
                                            "CLUSTER", "FILL", "USED", "HIT%"])
        st0 = self.daemon.stats("ic0")
        rows = {line.split()[0]: line for line in lines[1:]}
        self.assertEqual(set(rows), {"ic0", "ic1"})
        n = st0["cluster-count"]
        self.assertRegex(rows["ic0"], rf"^ic0\s+base0\s+8\.0M\s+caching\s+up\s+4\.0K\s+{n}/{n} "
                                      r"\(100\.0%\)\s+-\s+")
        self.assertRegex(rows["ic1"], r"^ic1\s+base1\s+8\.0M\s+caching\s+up\s+4\.0K\s+\d+/\d+ "
                                      r"\(\d+\.\d%\)\s+[\d.]+[BKM]/2\.0M\s+")
        # --node, and the default socket from the environment.
        out = self.ok("status", "--node", "ic1", qmp=False,
                      env=dict(os.environ, INTELLICACHE_QMP=str(self.qmp_sock)))
        self.assertEqual([line.split()[0] for line in out.splitlines()], ["NODE", "ic1"])

    def test_status_json(self):
        doc = json.loads(self.ok("status", "--json"))
        nodes = {n["node"]: n for n in doc["nodes"]}
        self.assertEqual(set(nodes), {"ic0", "ic1"})
        st0 = self.daemon.stats("ic0")
        ic0 = nodes["ic0"]
        self.assertEqual(ic0["base-node"], "base0")
        self.assertEqual(ic0["state"], "caching")
        self.assertEqual(ic0["base-state"], "up")
        self.assertEqual(ic0["base-size"], BASE_SIZE)
        self.assertEqual(ic0["cluster-size"], st0["cluster-size"])
        self.assertEqual(ic0["cluster-count"], st0["cluster-count"])
        self.assertEqual(ic0["fill"], 1.0)
        self.assertNotIn("cache-size", ic0)
        for key in ("cached-clusters", "hit-bytes", "miss-bytes", "fetched-bytes",
                    "fetch-errors", "stored-bytes"):
            self.assertEqual(ic0["counters"][key], st0[key], key)
        if "hit-latency" in st0:
            self.assertEqual(ic0["latency"]["hit"]["count"], sum(st0["hit-latency"]["bins"]))
            self.assertGreater(ic0["latency"]["hit"]["p50-ns"], 0)
        self.assertEqual(nodes["ic1"]["cache-size"], CACHE_SIZE)
        self.assertLessEqual(nodes["ic1"]["used-bytes"], CACHE_SIZE)

    def test_status_rates(self):
        # A reader during the interval: the rates show it.
        reader = subprocess.Popen(["nbdcopy", self.daemon.uri_for("ic0"), "null:"])
        try:
            doc = json.loads(self.ok("status", "--json", "--interval", "0.5"))
        finally:
            reader.wait(timeout=60)
        rates = {n["node"]: n["rates-per-second"] for n in doc["nodes"]}
        self.assertEqual(set(rates), {"ic0", "ic1"})
        self.assertGreaterEqual(rates["ic0"]["read-bytes"], 0)
        out = self.ok("status", "--interval", "0.2")
        self.assertIn("READ/s", out.splitlines()[0])

    # --- metrics ---

    def test_metrics_pass_promtool(self):
        text = self.ok("metrics")
        self.promtool(text)
        for node in ("ic0", "ic1"):
            self.assertRegex(text, rf'intellicache_read_bytes_total{{node="{node}",'
                                   rf'source="cache"}} \d+')
            self.assertIn(f'intellicache_base_up{{node="{node}"}} 1', text)
        self.assertIn(f'intellicache_cache_size_bytes{{node="ic1"}} {CACHE_SIZE}', text)
        self.assertIn(f'intellicache_base_size_bytes{{node="ic0"}} {BASE_SIZE}', text)
        st0 = self.daemon.stats("ic0")
        self.assertIn(f'intellicache_fetched_bytes_total{{node="ic0"}} {st0["fetched-bytes"]}',
                      text)
        # Latency histograms, when this daemon reports them.
        if "hit-latency" in st0:
            self.assertIn("# TYPE intellicache_hit_latency_seconds histogram", text)
        self.promtool(self.ok("metrics", "--node", "ic1"))

    def test_metrics_textfile(self):
        out_dir = self.dir / "textfile"
        out_dir.mkdir()
        out = self.ok("metrics", "--textfile-dir", str(out_dir))
        prom = out_dir / "intellicache.prom"
        self.assertEqual(out.strip(), f"wrote {prom}")
        self.assertEqual(sorted(p.name for p in out_dir.iterdir()), ["intellicache.prom"])
        self.promtool(prom.read_text())
        # Again: replaced in place, still the only file.
        self.ok("metrics", "--textfile-dir", str(out_dir))
        self.assertEqual(sorted(p.name for p in out_dir.iterdir()), ["intellicache.prom"])
        self.fails(["metrics", "--textfile-dir", str(self.dir / "missing")],
                   r"cannot write into textfile directory .*missing: No such file")

    def test_metrics_listen(self):
        p = subprocess.Popen([str(self.ctl), "--qmp", str(self.qmp_sock), "metrics",
                              "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            m = re.match(r"listening on (http://127\.0\.0\.1:(\d+))/metrics$", line.strip())
            self.assertTrue(m, f"first line {line!r}")
            url = m.group(1)
            with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
                self.assertEqual(resp.status, 200)
                self.assertTrue(resp.headers["Content-Type"].startswith(
                    "text/plain; version=0.0.4"), resp.headers["Content-Type"])
                text = resp.read().decode()
            self.promtool(text)
            self.assertIn('intellicache_read_bytes_total{node="ic0",source="cache"}', text)
            # Scraped again: a new QMP session each time.
            with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
                self.assertEqual(resp.status, 200)
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(url + "/nothing", timeout=10)
            self.assertEqual(cm.exception.code, 404)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            p.stdout.close()
            p.stderr.close()

    # --- top ---

    def test_top_frames(self):
        out = self.ok("top", "--count", "2", "--interval", "0.2")
        frames = [f for f in out.split("\n\n") if f.strip()]
        self.assertEqual(len(frames), 2, out)
        for f in frames:
            lines = f.splitlines()
            self.assertTrue(lines[0].startswith("intellicache-ctl top: 2 node(s)"), lines[0])
            self.assertEqual(lines[1].split()[:4], ["NODE", "STATE", "BASE", "READ/s"])
            self.assertEqual(sorted(line.split()[0] for line in lines[2:]), ["ic0", "ic1"])

    # --- inspect and verify ---

    def test_inspect(self):
        st0 = self.daemon.stats("ic0")
        doc = json.loads(self.ok("inspect", str(self.cache0), "--json", qmp=False))
        self.assertEqual(doc["format-version"], 1)
        self.assertEqual(doc["base-size"], BASE_SIZE)
        self.assertEqual(doc["cluster-size"], st0["cluster-size"])
        self.assertEqual(doc["cluster-count"], st0["cluster-count"])
        self.assertEqual(doc["recorded-clusters"], st0["cluster-count"])
        self.assertTrue(doc["metadata"]["healthy"])
        self.assertEqual(doc["metadata"]["damaged"], 0)
        self.assertRegex(doc["base-fingerprint"], r"^[0-9a-f]{64}$")
        text = self.ok("inspect", str(self.cache0), qmp=False)
        self.assertRegex(text, rf"recorded clusters:\s+{st0['cluster-count']} \(100\.0%\)")
        self.assertRegex(text, r"metadata health:\s+ok")
        self.assertRegex(text, rf"base size:\s+{BASE_SIZE} ")

    def verify(self, cache, *extra):
        return self.run_ctl("verify", str(cache), "--base", self.nk.uri, *extra, qmp=False,
                            timeout=120)

    def test_verify_matches_and_finds_corruption(self):
        t = time.monotonic()
        r = self.verify(self.cache0)
        seconds = time.monotonic() - t
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        n = self.daemon.stats("ic0")["cluster-count"]
        self.assertEqual(r.stdout.strip().splitlines()[-1],
                         f"verified {n} clusters (8.0M): {n} match, 0 mismatch")

        # A copy with two clusters' data overwritten.
        info = json.loads(self.ok("inspect", str(self.cache0), "--json", qmp=False))
        bad = self.dir / "corrupt.img"
        shutil.copyfile(self.cache0, bad)
        cs = info["cluster-size"]
        with open(bad, "r+b") as f:
            for cluster in (5, n - 1):
                f.seek(info["data-offset"] + cluster * cs + 17)
                f.write(b"\xde\xad\xbe\xef")
        r = self.verify(bad)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"mismatch: cluster 5 (base offset {5 * cs})", r.stdout)
        self.assertIn(f"mismatch: cluster {n - 1} (base offset {(n - 1) * cs})", r.stdout)
        self.assertTrue(r.stdout.strip().endswith(f"{n - 2} match, 2 mismatch"), r.stdout)
        type(self).summary = (f"ctl: verify of {n} clusters (8 MiB) over nbdkit took "
                              f"{seconds * 1000:.0f} ms")

    # --- bad input ---

    # --- profile, prefetch, jobs ---

    def test_profile_prefetch_and_jobs(self):
        """Record a boot profile on ic0, replay it into a new node's empty
        cache with a prefetch job, wait for the job, list the jobs."""
        profile = self.dir / "boot.profile"
        self.assertIn("recording", self.ok("profile", "start", "ic0", str(profile)))
        self.assertEqual(h.nbd_read_all(self.daemon.uri_for("ic0")).sha256, self.base_sha)
        self.assertIn("written", self.ok("profile", "stop", "ic0"))
        self.assertGreater(profile.stat().st_size, 64)
        self.fails(("profile", "stop", "ic0"), r"profile")

        cache2 = h.create_cache_file(self.dir / "cache2.img")
        qmp = self.daemon.qmp
        qmp.cmd("blockdev-add", **h.file_node("cache2", cache2, direct=False))
        qmp.cmd("blockdev-add", **h.intellicache_node("ic2", "base0", "cache2"))
        try:
            out = self.ok("prefetch", "ic2", "--profile", str(profile), "--wait",
                          timeout=120)
            self.assertEqual(out.splitlines(), ["job prefetch-ic2 started",
                                                "job prefetch-ic2 done"])
            st = self.daemon.stats("ic2")
            self.assertEqual(st["cached-clusters"], st["cluster-count"])
            self.assertGreater(st["prefetch-bytes"], 0)
            self.assertEqual(self.ok("jobs"), "no jobs\n")
            self.fails(("prefetch", "nosuch"), r"nosuch")
            self.fails(("prefetch", "ic2", "--speed", "fast"), r"--speed 'fast'")
        finally:
            qmp.cmd("blockdev-del", **{"node-name": "ic2"})
            qmp.cmd("blockdev-del", **{"node-name": "cache2"})

    def test_trace_at_run_time(self):
        """Trace events switched on and off in the running daemon (QEMU
        patch 0006): enabled ones print to its stderr."""
        out = self.ok("trace")
        names = [line.split()[0] for line in out.splitlines()]
        self.assertIn("intellicache_read_plan", names)
        self.assertTrue(all(n.startswith("intellicache_") for n in names), names)
        self.assertTrue(all(line.split()[1] == "disabled" for line in out.splitlines()))
        self.assertRegex(self.ok("trace", "intellicache_read_*", "--on"),
                         r"^enabled (\d+) of \1 trace events matching "
                         r"intellicache_read_\*: they print")
        self.assertIn("intellicache_read_plan  enabled",
                      self.ok("trace", "intellicache_read_plan"))
        log = self.daemon.log_path

        def plans():
            return log.read_text(errors="replace").count("intellicache_read_plan ")

        before = plans()
        h.nbd_read_all(self.daemon.uri_for("ic0"))
        h.wait_until(lambda: plans() > before, 10, "intellicache_read_plan lines")
        self.assertRegex(self.ok("trace", "intellicache_read_*", "--off"),
                         r"^disabled (\d+) of \1 trace events")
        after = plans()
        h.nbd_read_all(self.daemon.uri_for("ic0"))
        time.sleep(0.3)
        self.assertEqual(plans(), after, "no lines once disabled")
        for args, expected in (
                (("trace", "nope_*"), "no trace event matches 'nope_*'"),
                (("trace", "--on", "--off"), "trace: --on and --off together")):
            r = self.run_ctl(*args)
            self.assertEqual(r.returncode, 2, r)
            self.assertEqual(r.stderr, f"intellicache-ctl: {expected}\n")

    def test_bad_input_one_line_and_nonzero(self):
        junk = self.dir / "junk.img"
        junk.write_bytes(b"not a cache " * 1000)
        cases = [
            (["--qmp", str(self.dir / "none.sock"), "status"],
             r"no daemon at QMP socket .*none\.sock: No such file or directory", False),
            (["status", "--node", "nope"], r"no node 'nope' in the daemon at ", True),
            (["status", "--node", "base0"], r"node 'base0' is not an intellicache node", True),
            (["metrics", "--node", "nope"], r"no node 'nope'", True),
            (["top", "--count", "1", "--node", "nope"], r"no node 'nope'", True),
            (["inspect", str(junk)], r"junk\.img: not an intellicache cache file", False),
            (["inspect", str(self.dir / "missing.img")],
             r"cannot open .*missing\.img: No such file or directory", False),
            (["inspect", str(self.dir)], r"is not a regular file", False),
            (["verify", str(self.cache0), "--base", "http://127.0.0.1/x"],
             r"bad base URL 'http://127\.0\.0\.1/x': unsupported scheme 'http'", False),
            (["verify", str(self.cache0), "--base", "nbd+unix:///?socket=/nonexistent.sock"],
             r"cannot connect to nbd\+unix:///\?socket=/nonexistent\.sock", False),
            (["verify", str(junk), "--base", self.nk.uri], r"not an intellicache cache file",
             False),
            (["verify", str(self.cache0)], r"verify: --base URL is required", False),
            (["frobnicate"], r"unknown command 'frobnicate'", False),
            (["status", "--frob"], r"unknown option '--frob' for status", False),
            (["metrics", "--listen", "127.0.0.1:99999"], r"--listen wants ADDR:PORT", False),
            ([], r"no command given", False),
        ]
        for args, pattern, qmp in cases:
            with self.subTest(args=args):
                self.fails(args, pattern, qmp=qmp)

    def test_silent_socket_times_out(self):
        """A socket that accepts connections and never speaks: the tool
        gives up after --timeout, it does not hang."""
        path = self.dir / "silent.sock"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(str(path))
            s.listen(4)
            took = self.fails(["--qmp", str(path), "--timeout", "500", "status"],
                              r"timed out after 500 ms waiting for the daemon", qmp=False)
            self.assertLess(took, 5)
        finally:
            s.close()

    def test_help_for_every_command(self):
        self.assertTrue(self.ok("--help", qmp=False).startswith("usage: intellicache-ctl"))
        for cmd in ("status", "metrics", "top", "inspect", "verify"):
            with self.subTest(cmd=cmd):
                out = self.ok(cmd, "--help", qmp=False)
                self.assertTrue(out.startswith(f"usage: intellicache-ctl"), out)
                self.assertIn(cmd, out.splitlines()[0])


class CtlNfsE2E(h.DaemonTestCase):
    """verify over NFS (libnfs): a cache filled through QEMU's nfs driver
    from nfs-ganesha on 127.0.0.1, checked against the same file."""

    PROGRAMS = ("ganesha.nfsd", "rpcbind", "nbdcopy")
    BASE_SIZE = 16 * h.MiB + 5 * 512

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ctl = h.built_ctl()
        cls.export = cls.tmp / "export"
        cls.export.mkdir()
        cls.base_sha = h.make_base_image(cls.export / "base.img", cls.BASE_SIZE, seed=5)
        cls.ganesha = h.Ganesha(cls.tmp, cls.export)
        cls.addClassCleanup(cls.ganesha.stop)
        cls.ganesha.start()

    def verify(self, cache, url):
        return subprocess.run([str(self.ctl), "verify", str(cache), "--base", url],
                              capture_output=True, text=True, timeout=120)

    def test_verify_over_nfs(self):
        cache = self.new_cache()
        d = self.start_daemon(h.nfs_base(self.ganesha, "base.img"), cache)
        self.assertEqual(h.nbd_read_all(d.uri).sha256, self.base_sha)
        h.wait_until(lambda: (lambda st: st["durable-clusters"] == st["cluster-count"])(
            d.stats()), 30, "all clusters recorded", interval=0.1)
        self.stop_clean(d)

        r = self.verify(cache, self.ganesha.url("base.img"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        n = -(-self.BASE_SIZE // 4096)
        self.assertTrue(r.stdout.strip().endswith(f"{n} match, 0 mismatch"), r.stdout)

        # Another file of the export: another base, refused; a file that
        # is not there: one line naming it.
        h.make_base_image(self.export / "other.img", 4 * h.MiB, seed=6)
        for url, pattern in ((self.ganesha.url("other.img"), r"not this cache's base"),
                             (self.ganesha.url("missing.img"), r"cannot open nfs://.*missing\.img")):
            with self.subTest(url=url):
                r = self.verify(cache, url)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                lines = r.stderr.splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertRegex(lines[0], pattern)
