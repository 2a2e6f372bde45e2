"""intellicache-ctl apply and vm-disk end to end: a real, empty
qemu-storage-daemon made to match a host file.

Two bases served by nbdkit on unix sockets; the daemon starts with no
nodes and no NBD server, and two QMP monitors (one for the harness, one
for the tool: a monitor serves one client at a time).  The tests run in
order, each from the state the previous one left: the first apply adds
both bases, the second changes nothing, a tunable is reopened, VM
overlays come and go, a base is removed (its cache file stays), the pool
comes in, the daemon restarts and apply brings the bases back warm, and
bad host files get one line and a non-zero exit.

The tool is build/tools/ctl/intellicache-ctl, or $IC_CTL.
"""

import grp
import json
import os
import stat
import subprocess
import time
import unittest
from pathlib import Path

import intellicache_harness as h

BASE_SIZE = 6 * h.MiB + 3 * 512



class EmptyDaemon(h.Server):
    """qemu-storage-daemon with no node, no export, no NBD server: only
    the harness's monitor and the tool's."""

    name = "qemu-storage-daemon"

    def __init__(self, workdir):
        super().__init__()
        self.workdir = Path(workdir)
        self.qmp_path = self.workdir / "qsd-qmp.sock"
        self.ctl_path = self.workdir / "ctl-qmp.sock"
        self.qmp = None

    def start(self):
        for p in (self.qmp_path, self.ctl_path):
            if p.exists():
                p.unlink()
        argv = [str(h.qsd_binary())]
        for cid, path in (("qmp0", self.qmp_path), ("ctl", self.ctl_path)):
            argv += ["--chardev", f"socket,id={cid},path={path},server=on,wait=off",
                     "--monitor", f"chardev={cid}"]
        self._spawn(argv, self.workdir / "qsd.log", env=h.qemu_env())
        h.wait_until(lambda: (h.unix_socket_ready(self.qmp_path)
                              and h.unix_socket_ready(self.ctl_path)) or self._check_alive(),
                     30, "the daemon's monitors")
        self.qmp = h.QMP(self.qmp_path, name="apply")
        return self

    def stop(self, timeout=60):
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        return super().stop(timeout)


class ApplyE2E(h.DaemonTestCase):
    PROGRAMS = ("nbdkit", "nbdcopy")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ctl = h.built_ctl()
        cls.base_sha = {}
        cls.nbdkit = {}
        for seed, name in enumerate(("alpha", "beta"), start=21):
            path = cls.tmp / f"{name}.img"
            cls.base_sha[name] = h.make_base_image(path, BASE_SIZE + seed * 4096, seed=seed)
            nk = h.Nbdkit(cls.tmp, "file", {"file": path, "cache": "none"}, tag=name)
            cls.addClassCleanup(nk.stop)
            cls.nbdkit[name] = nk.start()
        cls.cache_dir = cls.tmp / "cache"
        cls.export_dir = cls.tmp / "run"
        cls.host_path = cls.tmp / "host.json"
        cls.host = {
            "cache-dir": str(cls.cache_dir),
            "export-dir": str(cls.export_dir),
            "defaults": {"miss-timeout": 10},
            "bases": {
                "alpha": {"url": f"nbd+unix:///?socket={cls.nbdkit['alpha'].socket}",
                          "fingerprint": "2026-11"},
                "beta": {"url": f"nbd+unix:///?socket={cls.nbdkit['beta'].socket}",
                         "options": {"max-inflight": 8}},
            },
        }
        cls.daemon = EmptyDaemon(cls.tmp)
        cls.addClassCleanup(cls.daemon.stop)
        cls.daemon.start()
        cls.figures = {}

    @classmethod
    def tearDownClass(cls):
        # Printed after unittest's "... ok" lines (which run.sh counts).
        if getattr(cls, "figures", None):
            print("\napply e2e: " + ", ".join(f"{k} {v}" for k, v in cls.figures.items()))
        super().tearDownClass()

    # -- helpers --

    def write_host(self, host=None):
        self.host_path.write_text(json.dumps(host if host is not None else self.host))

    def run_ctl(self, *args, check=True):
        t = time.monotonic()
        r = subprocess.run([str(self.ctl), "--qmp", str(self.daemon.ctl_path), *args],
                           capture_output=True, text=True, timeout=120)
        r.seconds = time.monotonic() - t
        if check:
            self.assertEqual(r.returncode, 0, f"{args}: {r.stdout}{r.stderr}")
        return r

    def apply(self):
        self.write_host()
        return self.run_ctl("apply", str(self.host_path))

    def uri(self, export):
        return h.nbd_uri(self.export_dir / "nbd.sock", export)

    def exports(self):
        return {e["id"]: e for e in self.daemon.qmp.cmd("query-block-exports")}

    def nodes(self):
        return {n["node-name"] for n in self.daemon.qmp.cmd("query-named-block-nodes", flat=True)}

    def settings(self, node):
        return h.node_stats(self.daemon.qmp, node)["settings"]

    def qemu_io(self, uri, command):
        r = subprocess.run([str(h.qemu_binary("qemu-io")), "-f", "raw", "-c", command, uri],
                           capture_output=True, text=True, timeout=60, env=h.qemu_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("failed", r.stdout + r.stderr)
        return r.stdout

    # -- the steps, in order --

    def test_01_first_apply_adds_both_bases(self):
        r = self.apply()
        self.figures["first apply s"] = round(r.seconds, 3)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertTrue(lines[0].startswith("added base alpha: nbd+unix://?socket="), lines[0])
        self.assertIn("(created)", lines[0])
        self.assertIn(f"started the NBD server on {self.export_dir}/nbd.sock", lines[0])
        self.assertTrue(lines[1].startswith("added base beta: "), lines[1])
        self.assertTrue({"ic-alpha", "ic-alpha-cf", "ic-alpha-base", "ic-beta"} <= self.nodes())
        for name in ("alpha", "beta"):
            self.assertEqual(h.nbd_read_all(self.uri(name)).sha256, self.base_sha[name])
            mode = stat.S_IMODE(os.stat(self.cache_dir / f"{name}.cache").st_mode)
            self.assertEqual(mode, 0o600, f"{name}.cache mode {mode:o}")
        self.assertEqual(self.settings("ic-beta")["max-inflight"], 8)
        self.assertEqual(self.settings("ic-alpha")["miss-timeout"], 10)
        # alpha's cache is complete and recorded, for the restart below.
        h.wait_until(lambda: (lambda st: st["durable-clusters"] == st["cluster-count"])(
            h.node_stats(self.daemon.qmp, "ic-alpha")), 30, "alpha recorded", interval=0.1)

    def test_02_second_apply_changes_nothing(self):
        r = self.apply()
        self.figures["idempotent apply s"] = round(r.seconds, 3)
        self.assertEqual(r.stdout, "nothing to change\n")
        r = self.run_ctl("apply", str(self.host_path), "--json")
        self.assertEqual(json.loads(r.stdout)["actions"], [])

    def test_03_tunable_is_reopened_live(self):
        before = h.node_stats(self.daemon.qmp, "ic-beta")["fetches"]
        self.host["bases"]["beta"]["options"] = {"max-inflight": 32, "read-ahead": "256K"}
        r = self.run_ctl("apply", str(self.host_path), "--dry-run")
        self.assertEqual(r.stdout, "nothing to change\n")  # the file is not written yet
        self.write_host()
        r = self.run_ctl("apply", str(self.host_path), "--dry-run")
        self.assertEqual(r.stdout, "would reopen ic-beta: max-inflight 8 -> 32, "
                                   "read-ahead 2097152 -> 262144\n")
        self.assertEqual(self.settings("ic-beta")["max-inflight"], 8)
        r = self.apply()
        self.assertEqual(r.stdout, "reopened ic-beta: max-inflight 8 -> 32, "
                                   "read-ahead 2097152 -> 262144\n")
        s = self.settings("ic-beta")
        self.assertEqual((s["max-inflight"], s["read-ahead"]), (32, 262144))
        # The same node, reopened: its counters went on.
        self.assertGreaterEqual(h.node_stats(self.daemon.qmp, "ic-beta")["fetches"], before)
        self.assertEqual(self.apply().stdout, "nothing to change\n")

    def test_04_vm_disk_over_nbd(self):
        r = self.run_ctl("vm-disk", "add", "vm1", "--base", "alpha", "--nbd",
                         "--host", str(self.host_path))
        overlay = self.cache_dir / "vms" / "vm1.qcow2"
        self.assertIn(f"overlay {overlay} (created) over ic-alpha", r.stdout)
        self.assertIn("<source protocol='nbd' name='vm1'>", r.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(overlay).st_mode), 0o600)
        self.assertEqual(self.exports()["ic-vm-vm1"]["type"], "nbd")
        # Writes land in the overlay; the base and its export stay as they were.
        self.qemu_io(self.uri("vm1"), "write -P 0x5a 65536 131072")
        self.qemu_io(self.uri("vm1"), "read -P 0x5a 65536 131072")
        self.qemu_io(self.uri("vm1"), "read -P 0x5a 65536 131072")
        whole = h.nbd_read_all(self.uri("vm1"))
        self.assertNotEqual(whole.sha256, self.base_sha["alpha"])
        self.assertEqual(whole.nbytes, BASE_SIZE + 21 * 4096)
        self.assertEqual(h.nbd_read_all(self.uri("alpha")).sha256, self.base_sha["alpha"])
        self.assertEqual(h.sha256_file(self.tmp / "alpha.img"), self.base_sha["alpha"])
        listing = self.run_ctl("vm-disk", "list").stdout
        self.assertIn(f"vm1: base ic-alpha, overlay {overlay}", listing)
        r = self.run_ctl("vm-disk", "remove", "vm1", "--delete")
        self.assertIn(f"deleted {overlay}", r.stdout)
        self.assertFalse(overlay.exists())
        self.assertNotIn("ic-vm-vm1", self.exports())
        self.assertNotIn("ic-vm-vm1", self.nodes())

    def test_05_vm_disk_over_vhost_user(self):
        group = grp.getgrgid(os.getgid()).gr_name
        for args, expected in (
                (("--group", "no-such-group-ic"), "vm-disk add: no group 'no-such-group-ic'"),
                (("--nbd", "--group", group), "vm-disk add: --group gives a VM's vhost-user "
                                              "socket to a group")):
            r = self.run_ctl("vm-disk", "add", "vm2", "--base", "beta", *args,
                             "--host", str(self.host_path), check=False)
            self.assertEqual(r.returncode, 2, r)
            self.assertIn(expected, r.stderr)
            self.assertNotIn("ic-vm-vm2", self.nodes())
        # Given to a group (libvirt's QEMU user's, on a real host).
        r = self.run_ctl("vm-disk", "add", "vm2", "--base", "beta", "--group", group,
                         "--host", str(self.host_path))
        sock = self.export_dir / "vm2.vhost"
        self.assertIn(f"vhost-user-blk on {sock} (group {group}, mode 0660)", r.stdout)
        st = sock.stat()
        self.assertEqual((st.st_gid, stat.S_IMODE(st.st_mode)), (os.getgid(), 0o660))
        self.assertIn("<disk type='vhostuser' device='disk'>", r.stdout)
        self.assertEqual(self.exports()["ic-vm-vm2"]["type"], "vhost-user-blk")
        self.assertTrue(h.unix_socket_ready(sock))
        r = self.run_ctl("vm-disk", "add", "vm2", "--base", "beta", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "intellicache-ctl: VM vm2 has a disk already (node ic-vm-vm2)\n")
        # A step that fails undoes the others: the NBD export name "alpha"
        # is the base's.
        r = self.run_ctl("vm-disk", "add", "alpha", "--base", "beta", "--nbd",
                         "--host", str(self.host_path), check=False)
        self.assertEqual((r.returncode, len(r.stderr.splitlines())), (2, 1), r.stderr)
        self.assertIn("(nothing of it is left)", r.stderr)
        self.assertFalse({"ic-vm-alpha", "ic-vm-alpha-file"} & self.nodes())
        self.assertFalse((self.cache_dir / "vms" / "alpha.qcow2").exists())
        # The overlay holds the base's node: apply does not remove it under it.
        unlisted = dict(self.host, bases={"alpha": self.host["bases"]["alpha"]})
        self.write_host(unlisted)
        r = self.run_ctl("apply", str(self.host_path), check=False)
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertEqual(r.stderr, "intellicache-ctl: bases.beta: cannot remove it (no longer "
                                   "listed): the disks of VM(s) vm2 are overlays over it "
                                   "(vm-disk remove them first)\n")
        self.assertIn("ic-beta", self.exports())
        self.write_host()
        r = self.run_ctl("vm-disk", "remove", "vm2")
        self.assertIn("kept", r.stdout)
        self.assertTrue((self.cache_dir / "vms" / "vm2.qcow2").exists())
        self.assertFalse(sock.exists())

    def test_06_removed_base_goes_its_cache_file_stays(self):
        del self.host["bases"]["beta"]
        r = self.apply()
        cache = self.cache_dir / "beta.cache"
        self.assertEqual(r.stdout, "removed base beta (no longer listed): export ic-beta, "
                                   "nodes ic-beta ic-beta-cf ic-beta-base; left its cache file "
                                   f"{cache}\n")
        self.assertTrue(cache.exists())
        self.assertGreater(cache.stat().st_size, 0)
        self.assertFalse({"ic-beta", "ic-beta-cf", "ic-beta-base"} & self.nodes())
        self.assertNotIn("ic-beta", self.exports())
        self.assertEqual(self.apply().stdout, "nothing to change\n")

    def test_07_pool(self):
        # Joining the pool is a reopen: the node, its export and its
        # counters stay.
        before = h.node_stats(self.daemon.qmp, "ic-alpha")
        self.host["pool-size"] = "64M"
        r = self.apply()
        self.assertEqual(r.stdout.splitlines(), [
            "created pool ic-pool-64M (size 67108864)",
            "reopened ic-alpha: scan-threshold 0 -> 8388608, pool (none) -> ic-pool-64M"])
        self.assertEqual(self.daemon.qmp.cmd("qom-get", path="/objects/ic-pool-64M",
                                             property="members"), 1)
        st = h.node_stats(self.daemon.qmp, "ic-alpha")
        self.assertEqual(st["settings"]["pool"], "ic-pool-64M")
        self.assertGreaterEqual(st["hit-bytes"], before["hit-bytes"])
        self.assertEqual(st["fetched-bytes"], before["fetched-bytes"])
        self.assertIn("ic-alpha", self.exports())
        self.assertEqual(self.apply().stdout, "nothing to change\n")
        # A new size is a new pool: the members move to it live, with what
        # they hold, and the old pool goes.
        self.host["pool-size"] = "128M"
        r = self.apply()
        self.assertEqual(r.stdout.splitlines(), [
            "created pool ic-pool-128M (size 134217728)",
            "reopened ic-alpha: scan-threshold 8388608 -> 16777216, "
            "pool ic-pool-64M -> ic-pool-128M",
            "deleted pool ic-pool-64M (replaced by ic-pool-128M)"])
        st = h.node_stats(self.daemon.qmp, "ic-alpha")
        self.assertEqual(self.daemon.qmp.cmd("qom-get", path="/objects/ic-pool-128M",
                                             property="used"), st["used-bytes"])
        self.assertEqual(st["fetched-bytes"], before["fetched-bytes"])
        self.assertEqual(self.apply().stdout, "nothing to change\n")
        self.host["pool-size"] = "64M"
        r = self.apply()
        self.assertEqual(r.stdout.splitlines()[-1],
                         "deleted pool ic-pool-128M (replaced by ic-pool-64M)")
        read = h.nbd_read_all(self.uri("alpha"))
        self.assertEqual(read.sha256, self.base_sha["alpha"])

    def test_08_restart_and_apply_bring_the_bases_back_warm(self):
        self.daemon.stop()
        self.daemon.start()
        self.host["bases"]["beta"] = {
            "url": f"nbd+unix:///?socket={self.nbdkit['beta'].socket}"}
        r = self.apply()
        self.figures["apply after restart s"] = round(r.seconds, 3)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "created pool ic-pool-64M (size 67108864)")
        self.assertIn(f"cache file {self.cache_dir}/alpha.cache (kept)", lines[1])
        self.assertIn(f"cache file {self.cache_dir}/beta.cache (kept)", lines[2])
        read = h.nbd_read_all(self.uri("alpha"))
        self.assertEqual(read.sha256, self.base_sha["alpha"])
        st = h.node_stats(self.daemon.qmp, "ic-alpha")
        self.assertEqual(st["fetched-bytes"], 0, st)
        self.assertEqual(st["hit-bytes"], read.nbytes)
        self.figures["warm re-read fetched-bytes"] = st["fetched-bytes"]
        self.assertEqual(self.apply().stdout, "nothing to change\n")
        # The VM overlay kept by test_05 comes back with its data.
        r = self.run_ctl("vm-disk", "add", "vm2", "--base", "beta", "--nbd",
                         "--host", str(self.host_path))
        self.assertIn("(kept)", r.stdout)
        self.assertEqual(h.nbd_read_all(self.uri("vm2")).sha256, self.base_sha["beta"])
        self.run_ctl("vm-disk", "remove", "vm2", "--delete")

    def test_09_bad_host_files_one_line_nonzero(self):
        good = self.host
        cases = [
            ("{", "not JSON"),
            (json.dumps(dict(good, extra=1)), "extra: unknown key"),
            (json.dumps(dict(good, bases={"bad name": {"url": "nfs://s/e/f"}})),
             "bases.bad name: a base name may hold only"),
            (json.dumps(dict(good, bases={"x": {"url": "http://s/f"}})),
             "bases.x.url: 'http://s/f' is not nfs://"),
            (json.dumps(dict(good, **{"pool-size": "lots"})), "pool-size: must be a size"),
            (json.dumps(dict(good, bases={"x": {"url": "nfs://s/e/f",
                                                "options": {"pool": "p"}}})),
             "bases.x.options.pool: unknown key"),
            (json.dumps(dict(good, bases={"x": {"url": "nfs://s/e/f",
                                                "options": {"max-inflight": 5000}}})),
             "bases.x.options: max-inflight must be from 1 to 1024, not 5000"),
        ]
        bad = self.tmp / "bad.json"
        for text, expected in cases:
            bad.write_text(text)
            r = self.run_ctl("apply", str(bad), check=False)
            self.assertEqual(r.returncode, 2, text)
            self.assertEqual(r.stdout, "", text)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertTrue(r.stderr.startswith(f"intellicache-ctl: {bad}: "), r.stderr)
            self.assertIn(expected, r.stderr)
        r = self.run_ctl("apply", str(self.tmp / "missing.json"), check=False)
        self.assertEqual((r.returncode, len(r.stderr.splitlines())), (2, 1), r.stderr)
        r = subprocess.run([str(self.ctl), "--qmp", str(self.tmp / "no.sock"), "apply",
                            str(self.host_path)], capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, len(r.stderr.splitlines())), (2, 1), r.stderr)
        # Nothing changed.
        self.assertEqual(self.apply().stdout, "nothing to change\n")

    def test_10_the_shipped_example_plans(self):
        example = h.REPO / "scripts" / "systemd" / "host.json.example"
        r = self.run_ctl("apply", str(example), "--dry-run")
        self.assertEqual(r.stdout.splitlines(), [
            "would remove base alpha (no longer listed)",
            "would remove base beta (no longer listed)",
            "would create pool ic-pool-200G (size 214748364800)",
            "would add base deb12 (new)",
            "would add base win11 (new)",
            "would delete pool ic-pool-64M (replaced by ic-pool-200G)",
        ])
        self.assertEqual(self.apply().stdout, "nothing to change\n")


class ApplyNfsE2E(h.DaemonTestCase):
    """apply with an nfs:// base (nfs-ganesha on 127.0.0.1): the base node's
    filename, as QEMU's nfs driver prints it, matches the file's URL, so a
    second apply changes nothing."""

    PROGRAMS = ("ganesha.nfsd", "rpcbind", "nbdcopy")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ctl = h.built_ctl()
        export = cls.tmp / "export"
        export.mkdir()
        cls.base_sha = h.make_base_image(export / "golden.img", BASE_SIZE, seed=31)
        cls.ganesha = h.Ganesha(cls.tmp, export)
        cls.addClassCleanup(cls.ganesha.stop)
        try:
            cls.ganesha.start()
        except h.PortBusy as e:
            raise unittest.SkipTest(str(e)) from e
        cls.daemon = EmptyDaemon(cls.tmp)
        cls.addClassCleanup(cls.daemon.stop)
        cls.daemon.start()
        cls.host_path = cls.tmp / "host.json"
        cls.host = {"cache-dir": str(cls.tmp / "cache"), "export-dir": str(cls.tmp / "run"),
                    "bases": {"golden": {"url": cls.ganesha.url("golden.img"),
                                         "fingerprint": "v1"}}}

    def run_apply(self):
        self.host_path.write_text(json.dumps(self.host))
        r = subprocess.run([str(self.ctl), "--qmp", str(self.daemon.ctl_path), "apply",
                            str(self.host_path)], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_nfs_base_applied_once(self):
        out = self.run_apply()
        self.assertTrue(out.startswith(f"added base golden: {self.ganesha.url('golden.img')}, "),
                        out)
        nodes = {n["node-name"]: n for n in
                 self.daemon.qmp.cmd("query-named-block-nodes", flat=True)}
        self.assertEqual(nodes["ic-golden-base"]["drv"], "nfs")
        self.assertTrue(nodes["ic-golden-base"]["ro"])
        uri = h.nbd_uri(self.tmp / "run" / "nbd.sock", "golden")
        self.assertEqual(h.nbd_read_all(uri).sha256, self.base_sha)
        self.assertEqual(self.run_apply(), "nothing to change\n")
        self.host["bases"]["golden"]["options"] = {"miss-timeout": 5}
        self.assertEqual(self.run_apply(), "reopened ic-golden: miss-timeout 20 -> 5\n")
        self.assertEqual(self.run_apply(), "nothing to change\n")
