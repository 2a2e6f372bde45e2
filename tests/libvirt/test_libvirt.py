"""libvirt domains whose disk is served by qemu-storage-daemon through the
intellicache node (docs/libvirt.rst).

The daemon's command line and both domains' XML are taken from
docs/libvirt.rst, so what the page shows is what runs here: the page's
paths are mapped into a work directory, the daemon's base (an NFS node on
the page) becomes an NBD node on nbdkit serving the guest's disk image,
and the guest's kernel command line gets the reads to run (ic.run=, see
tests/guest/init).  A libvirt of the test's own (privlibvirt.py) defines
and starts each domain: a vhost-user-blk disk and an NBD disk, both on
the same node ic0.  The guest (tests/guest's kernel and initramfs) reads
its whole disk twice, prints SHA-256 digests on its file console and
powers off.  The checks: the XML validates, libvirt made the device, the
guest's data is the base's, the node served the reads (its counters, by
QMP), the guest powered off in time.  Two more runs of the vhost-user
domain: the daemon restarted under the running guest (<reconnect>), and
QEMU as libvirt-qemu on a socket given to its group.  SystemdUnitTest
installs the unit into a temporary root and runs systemd-analyze verify
on it.

Environment: IC_QEMU_BUILD (QEMU's build directory, default
build/qemu/build), IC_GUEST_DIR (kernel and initramfs, default
build/guest), IC_LIBVIRT_MIB (size of the disk, default 64),
IC_LIBVIRT_KEEP=1 keeps the work directory.
"""

import atexit
import contextlib
import grp
import hashlib
import json
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from intellicache_harness.common import REPO, qemu_env, qsd_binary, \
    unix_socket_ready, wait_until
from intellicache_harness.process import Server
from intellicache_harness.qmp import QMP
from intellicache_harness.servers import Nbdkit
from intellicache_harness.stats import node_stats

import privlibvirt
from privlibvirt import PrivateLibvirt

MiB = 1 << 20
DOC = os.path.join(REPO, "docs", "libvirt.rst")
BASE_MIB = int(os.environ.get("IC_LIBVIRT_MIB", "64"))
BLOCK = 64 * 1024
READERS = 2
NODE = "ic0"
BOOT_TIMEOUT = 240          # define + start to power-off
DAEMON_TIMEOUT = 60


def guest_dir():
    return os.environ.get("IC_GUEST_DIR", os.path.join(REPO, "build", "guest"))


# -- the page's blocks ----------------------------------------------------

def doc_block(name, path=DOC):
    """The text of the code-block of docs/libvirt.rst whose :name: is
    @name, dedented."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f":name: {name}" and lines[i - 1].startswith(".. code-block::"):
            break
    else:
        raise AssertionError(f"no code-block named {name} in {path}")
    j = i + 1
    while j < len(lines) and lines[j].strip().startswith(":"):
        j += 1
    body = []
    for line in lines[j:]:
        if line.strip() and not line.startswith("   "):
            break
        body.append(line[3:] if line.startswith("   ") else "")
    while body and not body[0]:
        body.pop(0)
    while body and not body[-1]:
        body.pop()
    return "\n".join(body) + "\n"


class PathMap:
    """The page's paths, mapped into the work directory (and the guest's
    kernel and initramfs)."""

    def __init__(self, work):
        self.work = work
        self.run = os.path.join(work, "run-intellicache")
        self.state = os.path.join(work, "lib-intellicache")
        self.consoles = os.path.join(work, "consoles")
        for d in (self.run, self.state, self.consoles):
            os.makedirs(d, exist_ok=True)
        self.prefixes = (("/run/intellicache/", self.run + "/"),
                         ("/var/lib/intellicache/", self.state + "/"),
                         ("/var/lib/libvirt/boot/", guest_dir() + "/"),
                         ("/var/log/libvirt/qemu/", self.consoles + "/"))

    def __call__(self, text):
        for doc, real in self.prefixes:
            text = text.replace(doc, real)
        for doc, _ in self.prefixes:
            if doc in text:
                raise AssertionError(f"unmapped path {doc} in {text!r}")
        return text


def daemon_argv(paths, nbd_socket):
    """The page's daemon command line, mapped, with its base0 replaced by
    an NBD node on @nbd_socket."""
    text = doc_block("libvirt-daemon").replace("\\\n", " ")
    argv = shlex.split(paths(text))
    if argv[0] != "qemu-storage-daemon":
        raise AssertionError(f"the page's command is {argv[0]}")
    argv[0] = str(qsd_binary())
    base = [i for i, a in enumerate(argv)
            if i > 0 and argv[i - 1] == "--blockdev" and "node-name=base0" in a]
    if len(base) != 1:
        raise AssertionError(f"no single base0 --blockdev in {argv}")
    argv[base[0]] = (f"driver=nbd,node-name=base0,server.type=unix,"
                     f"server.path={nbd_socket},read-only=on")
    return argv


def option(argv, opt, key):
    """Value of key=VALUE in the option @opt (e.g. --export) of @argv that
    has it."""
    for i, a in enumerate(argv[:-1]):
        if a == opt:
            for kv in argv[i + 1].split(","):
                k, _, v = kv.partition("=")
                if k == key:
                    yield v


def guest_commands(size, pause=2):
    """ic.run= of the guest: the whole disk cold, then warm, each half read
    by one reader; @pause seconds between them (for the stores)."""
    region = size // READERS
    read = f"{BLOCK},{READERS},{region},1"
    return f"read,cold,{read}/sleep,{pause}/read,warm,{read}"


def domain_xml(name, paths, commands):
    """The page's domain @name, its paths mapped, its guest running
    @commands."""
    xml = paths(doc_block(name))
    if "<domain type='qemu'>" in xml:
        # Under TCG, QEMU 10.0's multi-threaded translation can abort while
        # a vCPU and the main loop change the memory map at the same time
        # ("iotlb_to_section: Assertion `section_index <
        # d->map.sections_nb' failed", QEMU issue 1921); it did so in one
        # of this test's boots.  With one vCPU the guest's two readers
        # share it, and its disk one of the device's two queues.
        xml = re.sub(r"<vcpu>\d+</vcpu>", "<vcpu>1</vcpu>", xml, count=1)
    m = re.search(r"<cmdline>(.*?)</cmdline>", xml)
    if not m:
        raise AssertionError(f"{name}: no <cmdline>")
    cmdline = f"{m.group(1)} quiet loglevel=3 panic=-1 ic.run={commands}"
    return xml[:m.start(1)] + cmdline + xml[m.end(1):]


def xml_validate(path):
    r = subprocess.run(["virt-xml-validate", path, "domain"], capture_output=True, text=True,
                       timeout=60, check=False)
    return r.returncode, (r.stdout + r.stderr).strip()


def host_links():
    """Names of the network interfaces of the host's namespace."""
    return sorted(os.listdir("/sys/class/net"))


# -- the environment, shared by the domain classes ------------------------

class Daemon(Server):
    name = "qemu-storage-daemon"


class Env:
    """Work directory, base image, nbdkit, the daemon, libvirt; started by
    the first domain class, stopped by tearDownModule."""

    instance = None

    @classmethod
    def get(cls):
        if cls.instance is None:
            env = cls()
            cls.instance = env
            env.start()
        if env_error := cls.instance.error:
            raise AssertionError(f"environment failed: {env_error}")
        return cls.instance

    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="ic-libvirt-")
        self.paths = PathMap(self.work)
        self.size = BASE_MIB * MiB
        self.error = None
        self.nbdkit = self.daemon = self.libvirt = self.qmp = None

    def start(self):
        try:
            self._start()
        except BaseException as e:
            self.error = repr(e)
            raise

    def _start(self):
        reason = privlibvirt.missing()
        if reason:
            raise AssertionError(reason)
        for f in ("vmlinuz", "initramfs.gz"):
            if not os.path.isfile(os.path.join(guest_dir(), f)):
                raise AssertionError(f"no {guest_dir()}/{f} (scripts/guest-image.sh)")
        if not os.access(qsd_binary(), os.X_OK):
            raise AssertionError(f"no {qsd_binary()} (scripts/build.sh)")
        base = os.path.join(self.work, "base.img")
        self.data = random.Random(7).randbytes(self.size)
        with open(base, "wb") as f:
            f.write(self.data)
        self.nbdkit = Nbdkit(self.work, "file", {"file": base}, tag="base").start()
        self.argv = daemon_argv(self.paths, self.nbdkit.socket)
        for cache in option(self.argv, "--blockdev", "filename"):
            fd = os.open(cache, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        self.qmp_path = next(option(self.argv, "--chardev", "path"))
        self.sockets = [self.qmp_path] + list(option(self.argv, "--export", "addr.path")) \
            + list(option(self.argv, "--nbd-server", "addr.path"))
        self.start_daemon()
        self.links_before = host_links()
        self.libvirt = PrivateLibvirt(os.path.join(self.work, "libvirt")).start()

    def start_daemon(self):
        self.daemon = Daemon()
        self.daemon._spawn(self.argv, os.path.join(self.work, "qsd.log"), env=qemu_env())
        wait_until(lambda: all(unix_socket_ready(s) for s in self.sockets)
                   or self.daemon._check_alive(), DAEMON_TIMEOUT, "the daemon's sockets")
        self.qmp = QMP(self.qmp_path, name="qsd")

    def stop_daemon(self):
        """SIGTERM; returns (exit status, killed)."""
        self.qmp.close()
        self.qmp = None
        return self.daemon.stop(60)

    def stats(self):
        return node_stats(self.qmp, NODE)

    def stop(self):
        if self.libvirt is not None:
            self.libvirt.stop()
        if self.qmp is not None:
            self.qmp.close()
        if self.daemon is not None:
            self.daemon.stop(60)
        if self.nbdkit is not None:
            # nbdkit may ignore SIGTERM while a client is connected
            self.nbdkit.kill9()
        if os.environ.get("IC_LIBVIRT_KEEP") == "1":
            sys.stderr.write(f"\nwork directory kept: {self.work}\n")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def tearDownModule():  # pylint: disable=invalid-name
    if Env.instance is not None:
        env, Env.instance = Env.instance, None
        env.stop()


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# Stopped from outside (run.sh's timeout): the domains, libvirt and the
# daemons are stopped all the same.
signal.signal(signal.SIGTERM, _interrupted)
atexit.register(tearDownModule)


class LibvirtPrivateTest(unittest.TestCase):
    """The test's libvirt keeps to itself: no network driver (so no default
    network and no bridge), no new interface on the host, its domains'
    files in its own work directory."""

    @classmethod
    def setUpClass(cls):
        cls.env = Env.get()

    def test_no_network_driver(self):
        r = subprocess.run(["virsh", "-c", self.env.libvirt.uri, "net-list", "--all"],
                           capture_output=True, text=True, timeout=60, check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("not supported by the connection driver", r.stderr)

    def test_host_interfaces_unchanged(self):
        self.assertEqual(host_links(), self.env.links_before)

    def test_own_directories(self):
        # its persistent state is the work directory's, seen at /etc/libvirt
        # and /run/libvirt inside its namespace only
        lv = self.env.libvirt
        self.assertTrue(os.path.exists(lv.path("run", "virtlogd-sock")))
        self.assertTrue(os.path.isdir(lv.path("cache", "qemu", "capabilities")))
        if "/run/libvirt" in lv.made_mountpoints:
            # the mount point, seen from outside: still empty
            self.assertEqual(os.listdir("/run/libvirt"), [])


# -- the domains ----------------------------------------------------------

class DomainRun:
    """One domain from the page, run once by setUpClass; the tests check
    its record."""

    BLOCK_NAME = None       # the page's code-block
    DOMAIN = None           # its <name>

    @classmethod
    def commands(cls, size):
        return guest_commands(size)

    @classmethod
    def while_running(cls):
        """Called once the domain started (the outage test's restart)."""

    @classmethod
    def prepare(cls, xml):
        """Called before the domain is defined; returns its XML."""
        return xml

    @classmethod
    def setUpClass(cls):
        cls.env = Env.get()
        cls.rec = {}
        t0 = time.monotonic()
        try:
            cls.run_domain()
        finally:
            cls.rec["seconds"] = round(time.monotonic() - t0, 1)
            sys.stderr.write(f"\n{cls.__name__}: {cls.rec['seconds']} s in all, "
                             f"guest {cls.rec.get('guest_seconds')} s\n")

    @classmethod
    def run_domain(cls):
        env, rec = cls.env, cls.rec
        lv = env.libvirt
        doc_xml = os.path.join(env.work, f"{cls.DOMAIN}.doc.xml")
        with open(doc_xml, "w", encoding="utf-8") as f:
            f.write(doc_block(cls.BLOCK_NAME))
        xml = os.path.join(env.work, f"{cls.DOMAIN}.xml")
        with open(xml, "w", encoding="utf-8") as f:
            f.write(cls.prepare(domain_xml(cls.BLOCK_NAME, env.paths,
                                           cls.commands(env.size))))
        rec["validate"] = {"doc": xml_validate(doc_xml), "test": xml_validate(xml)}
        cls.console = os.path.join(env.paths.consoles, f"{cls.DOMAIN}.console.log")
        if os.path.exists(cls.console):
            os.unlink(cls.console)
        rec["stats0"] = env.stats()
        lv.virsh("define", xml)
        try:
            rec["inactive_xml"] = lv.virsh("dumpxml", "--inactive", cls.DOMAIN)
            t0 = time.monotonic()
            lv.virsh("start", cls.DOMAIN, timeout=120)
            try:
                rec["live_xml"] = lv.virsh("dumpxml", cls.DOMAIN)
            except privlibvirt.LibvirtError:
                pass  # the guest may already be gone
            cls.while_running()
            rec["state"] = cls.wait_shutoff(BOOT_TIMEOUT - (time.monotonic() - t0))
            rec["guest_seconds"] = round(time.monotonic() - t0, 1)
        finally:
            if lv.virsh("domstate", cls.DOMAIN, check=False).strip() != "shut off":
                lv.virsh("destroy", cls.DOMAIN, check=False)
            lv.virsh("undefine", cls.DOMAIN, check=False)
            rec["undefined"] = cls.DOMAIN not in lv.domains()
        rec["stats1"] = env.stats()
        rec["console"] = cls.read(cls.console)
        rec["qemu_log"] = cls.read(os.path.join(lv.log_dir(), "qemu", f"{cls.DOMAIN}.log"))

    @classmethod
    def wait_shutoff(cls, timeout):
        """Wait until the domain is shut off; returns its state and reason."""
        deadline = time.monotonic() + timeout
        while True:
            state = cls.env.libvirt.virsh("domstate", "--reason", cls.DOMAIN,
                                          check=False).strip()
            if state.startswith("shut off"):
                return state
            if time.monotonic() > deadline:
                return f"timeout ({state})"
            time.sleep(0.5)

    @classmethod
    def wait_console(cls, pattern, timeout):
        """Wait for a line matching @pattern on the console file; returns
        the host's monotonic time when it was seen."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while not rx.search(cls.read(cls.console)):
            if cls.env.libvirt.virsh("domstate", cls.DOMAIN,
                                     check=False).strip() != "running":
                raise AssertionError(f"the domain stopped before {pattern!r}: "
                                     f"{cls.read(cls.console)[-1000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on the console within {timeout} s")
            time.sleep(0.2)
        return time.monotonic()

    @staticmethod
    def read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read().replace("\r", "")
        except OSError:
            return ""

    def sums(self, tag):
        return {int(i): s for i, s in
                re.findall(rf"^IC SUM {tag} (\d+) ([0-9a-f]{{64}})$", self.rec["console"], re.M)}

    def context(self):
        return (f"console:\n{self.rec['console'][-1500:]}\nQEMU log:\n"
                f"{self.rec['qemu_log'][-1500:]}")

    def check_sums(self, tag):
        self.assertRegex(self.rec["console"], rf"(?m)^IC DONE {tag} ok ", self.context())
        sums = self.sums(tag)
        self.assertEqual(sorted(sums), list(range(READERS)), self.context())
        region = self.env.size // READERS
        for i in range(READERS):
            want = hashlib.sha256(self.env.data[i * region:(i + 1) * region]).hexdigest()
            self.assertEqual(sums[i], want, f"{tag} pass, reader {i}")


class DomainChecks:
    """The checks of a domain's run (DomainRun's record)."""

    def test_xml_validates(self):
        for which, (rc, out) in self.rec["validate"].items():
            self.assertEqual(rc, 0, f"{which} XML: {out}")

    def test_guest_powered_off(self):
        self.assertTrue(self.rec["state"].startswith("shut off"), self.rec["state"])
        self.assertNotIn("destroyed", self.rec["state"])
        self.assertRegex(self.rec["console"], r"(?m)^IC BYE$", self.context())
        self.assertTrue(self.rec["undefined"])

    def test_guest_sees_the_disk(self):
        m = re.search(r"^IC READY cpus=(\d+) size=(\d+) queues=(\d+)$", self.rec["console"],
                      re.M)
        self.assertIsNotNone(m, self.context())
        vcpus = re.search(r"<vcpu[^>]*>(\d+)</vcpu>", self.rec.get("inactive_xml", ""))
        self.assertIsNotNone(vcpus, self.context())
        self.assertEqual(int(m.group(1)), int(vcpus.group(1)))
        self.assertEqual(int(m.group(2)), self.env.size)
        # read-only: the export's writable=off (vhost-user), <readonly/> (NBD)
        self.assertRegex(self.rec["console"], r"(?m)^IC DISK ro=1$", self.context())

    def test_cold_data(self):
        self.check_sums("cold")

    def test_warm_data(self):
        self.check_sums("warm")

    def test_reads_went_through_the_cache(self):
        s0, s1 = self.rec["stats0"], self.rec["stats1"]
        size = self.env.size

        def served(s):
            return s["hit-bytes"] + s["miss-bytes"] + s["wait-bytes"]

        # both passes read the whole disk through the node
        self.assertGreaterEqual(served(s1) - served(s0), 2 * size, (s0, s1))
        # the warm pass (at least) came from the cache
        if s1["store-skipped"] == 0:
            self.assertGreaterEqual(s1["hit-bytes"] - s0["hit-bytes"], size, (s0, s1))
        else:
            self.assertGreater(s1["hit-bytes"], s0["hit-bytes"], (s0, s1))
        # the base was read once at most, whichever domain ran first (the
        # whole disk: every cluster is cached now)
        self.assertLessEqual(s1["fetched-bytes"] - s0["fetched-bytes"], size, (s0, s1))
        self.assertEqual(s1["cached-clusters"], s1["cluster-count"], s1)
        self.assertEqual(s1["state"], "caching")
        for k in ("fetch-errors", "store-errors"):
            self.assertEqual(s1[k], 0, k)


class VhostUserDomainTest(DomainRun, DomainChecks, unittest.TestCase):
    """<disk type='vhostuser'> on the daemon's vhost-user-blk export."""

    BLOCK_NAME = "libvirt-vhostuser-domain"
    DOMAIN = "ic-vhostuser"

    def test_libvirt_made_the_device(self):
        sock = next(option(self.env.argv, "--export", "addr.path"))
        log = self.rec["qemu_log"]
        self.assertIn('"driver":"vhost-user-blk-pci"', log)
        self.assertRegex(log, rf"-chardev socket,id=[^,]+,path={re.escape(sock)},reconnect=10",
                         log[-2000:])
        self.assertIn('"share":true', log)        # the memfd backend
        for x in ("inactive_xml", "live_xml"):
            self.assertIn(f"path='{sock}'", self.rec.get(x, ""), x)


    def refused(self, edit):
        """libvirt's error when defining the page's vhostuser domain, changed
        by @edit (a function of the XML text), or None if it was accepted
        (then undefined again)."""
        xml = edit(domain_xml(self.BLOCK_NAME, self.env.paths, "quit"))
        xml = xml.replace(f"<name>{self.DOMAIN}</name>", "<name>ic-refused</name>")
        path = os.path.join(self.env.work, "refused.xml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(xml)
        try:
            self.env.libvirt.virsh("define", path)
        except privlibvirt.LibvirtError as e:
            return str(e)
        self.env.libvirt.virsh("undefine", "ic-refused", check=False)
        return None

    # As the page says: no <readonly/> on a vhostuser disk.
    def test_readonly_is_refused(self):
        err = self.refused(lambda x: x.replace("<target dev='vda' bus='virtio'/>",
                                               "<target dev='vda' bus='virtio'/><readonly/>"))
        self.assertIsNotNone(err)
        self.assertIn("readonly is not supported with vhostuser disk", err)

    # As the page says: no vhostuser disk without shared memory.
    def test_shared_memory_is_required(self):
        err = self.refused(lambda x: re.sub(r"\s*<memoryBacking>.*?</memoryBacking>", "", x,
                                            flags=re.S))
        self.assertIsNotNone(err)
        self.assertIn("'vhostuser' requires shared memory", err)


class VhostUserReconnectTest(DomainRun, unittest.TestCase):
    """<reconnect enabled='yes' timeout='10'/>: the daemon restarts under a
    running guest.  Once the guest's cold pass is done the daemon is
    stopped (SIGTERM) and started again 5 s later with the same command
    line; the guest's warm pass, started 2 s after the cold one, must wait
    for QEMU to reconnect (every 10 s) and then read the right data, all
    of it served by the restarted daemon from the cache file the first one
    filled."""

    BLOCK_NAME = "libvirt-vhostuser-domain"
    DOMAIN = "ic-vhostuser"
    OUTAGE = 5

    @classmethod
    def while_running(cls):
        rec = cls.rec
        rec["cold_done"] = cls.wait_console(r"^IC DONE cold ", BOOT_TIMEOUT)
        rec["stop"] = cls.env.stop_daemon()
        time.sleep(cls.OUTAGE)
        cls.env.start_daemon()
        rec["restarted"] = time.monotonic()
        rec["stats_restart"] = cls.env.stats()
        rec["warm_done"] = cls.wait_console(r"^IC DONE warm ", 120)

    def test_daemon_stopped_cleanly(self):
        self.assertEqual(self.rec["stop"], (0, False))

    def test_cold_data(self):
        self.check_sums("cold")

    def test_warm_data_after_the_restart(self):
        self.check_sums("warm")
        self.assertNotRegex(self.rec["console"], r"(?m)^IC ERR ", self.context())

    def test_warm_pass_served_by_the_restarted_daemon(self):
        s0, s1 = self.rec["stats_restart"], self.rec["stats1"]
        served = sum(s1[k] - s0[k] for k in ("hit-bytes", "miss-bytes", "wait-bytes"))
        self.assertGreaterEqual(served, self.env.size, (s0, s1))
        # from the cache the first daemon filled: nothing fetched again
        self.assertEqual(s1["fetched-bytes"], s0["fetched-bytes"], (s0, s1))
        self.assertGreaterEqual(s1["hit-bytes"] - s0["hit-bytes"], self.env.size, (s0, s1))

    def test_guest_powered_off(self):
        self.assertTrue(self.rec["state"].startswith("shut off"), self.rec["state"])
        self.assertRegex(self.rec["console"], r"(?m)^IC BYE$", self.context())


class VhostUserUnprivilegedTest(DomainRun, unittest.TestCase):
    """The page's second way with permissions: QEMU runs as libvirt-qemu,
    not root, and reaches the vhost-user socket because the socket's group
    is libvirt-qemu with mode 0660 and the directories above it are
    searchable (0711).  The test's qemu.conf says root, so this domain
    alone gets libvirt-qemu with a static DAC <seclabel> (on a host with
    Debian's qemu.conf, libvirt-qemu is the default anyway)."""

    BLOCK_NAME = "libvirt-vhostuser-domain"
    DOMAIN = "ic-vhostuser"

    @classmethod
    def prepare(cls, xml):
        env = cls.env
        cls.ids = (pwd.getpwnam("libvirt-qemu").pw_uid, grp.getgrnam("libvirt-qemu").gr_gid)
        sock = next(option(env.argv, "--export", "addr.path"))
        for d in (env.work, env.paths.run):
            os.chmod(d, 0o711)
        os.chown(sock, -1, cls.ids[1])
        os.chmod(sock, 0o660)
        st = os.stat(sock)
        cls.rec["socket"] = (st.st_uid, st.st_gid, st.st_mode & 0o777)
        label = (f"  <seclabel type='static' model='dac' relabel='no'>"
                 f"<label>+{cls.ids[0]}:+{cls.ids[1]}</label></seclabel>\n")
        return xml.replace("</domain>", label + "</domain>")

    @classmethod
    def while_running(cls):
        """QEMU's real and effective user and group ids."""
        pidfile = os.path.join(cls.env.libvirt.path("run", "qemu"), f"{cls.DOMAIN}.pid")
        with open(pidfile, encoding="ascii") as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        cls.rec["uids"] = [int(x) for x in status["Uid"].split()[:2]]
        cls.rec["gids"] = [int(x) for x in status["Gid"].split()[:2]]

    def test_qemu_ran_as_libvirt_qemu(self):
        self.assertEqual(self.rec["uids"], [self.ids[0]] * 2)
        self.assertEqual(self.rec["gids"], [self.ids[1]] * 2)

    def test_socket_for_its_group_only(self):
        self.assertEqual(self.rec["socket"], (0, self.ids[1], 0o660))

    def test_cold_data(self):
        self.check_sums("cold")

    def test_warm_data(self):
        self.check_sums("warm")

    def test_guest_powered_off(self):
        self.assertTrue(self.rec["state"].startswith("shut off"), self.rec["state"])
        self.assertRegex(self.rec["console"], r"(?m)^IC BYE$", self.context())


class NbdRestartTest(DomainRun, unittest.TestCase):
    """The daemon restarted under a running NBD guest.  libvirt 9.0 sets no
    reconnect-delay on its NBD nodes, so QEMU fails the requests made while
    the daemon is down, and connects again by itself afterwards.  The guest
    reads cold, waits 2 s, reads again ("mid", during the 5 s outage),
    waits 12 s, reads again ("warm", after the restart).  Checked: the mid
    pass fails with I/O errors or reads the right data, never wrong data;
    the warm pass reads the right data without restarting the VM."""

    BLOCK_NAME = "libvirt-nbd-domain"
    DOMAIN = "ic-nbd"
    OUTAGE = 5

    @classmethod
    def commands(cls, size):
        region = size // READERS
        read = f"{BLOCK},{READERS},{region},1"
        return f"read,cold,{read}/sleep,2/read,mid,{read}/sleep,12/read,warm,{read}"

    @classmethod
    def while_running(cls):
        cls.wait_console(r"^IC DONE cold ", BOOT_TIMEOUT)
        cls.rec["stop"] = cls.env.stop_daemon()
        time.sleep(cls.OUTAGE)
        cls.env.start_daemon()
        cls.rec["stats_restart"] = cls.env.stats()

    def test_daemon_stopped_cleanly(self):
        self.assertEqual(self.rec["stop"], (0, False))

    def test_cold_data(self):
        self.check_sums("cold")

    def test_no_wrong_data_during_the_outage(self):
        m = re.search(r"^IC DONE mid (ok|fail) ", self.rec["console"], re.M)
        self.assertIsNotNone(m, self.context())
        if m.group(1) == "ok":
            self.check_sums("mid")
        else:
            errs = re.findall(r"^IC ERR mid .*$", self.rec["console"], re.M)
            self.assertTrue(errs)
            for e in errs:
                self.assertIn("Input/output error", e)

    def test_reads_again_after_the_restart(self):
        self.check_sums("warm")
        s0, s1 = self.rec["stats_restart"], self.rec["stats1"]
        self.assertGreaterEqual(s1["hit-bytes"] - s0["hit-bytes"], self.env.size, (s0, s1))

    def test_guest_powered_off(self):
        self.assertTrue(self.rec["state"].startswith("shut off"), self.rec["state"])
        self.assertRegex(self.rec["console"], r"(?m)^IC BYE$", self.context())


class NbdDomainTest(DomainRun, DomainChecks, unittest.TestCase):
    """<disk type='network'> with an NBD source on the daemon's unix socket."""

    BLOCK_NAME = "libvirt-nbd-domain"
    DOMAIN = "ic-nbd"

    def test_libvirt_made_the_device(self):
        sock = next(option(self.env.argv, "--nbd-server", "addr.path"))
        log = self.rec["qemu_log"]
        self.assertRegex(log, rf'"driver":"nbd".*"path":"{re.escape(sock)}"', log[-2000:])
        self.assertIn('"export":"ic0"', log)
        self.assertIn('"driver":"virtio-blk-pci"', log)
        for x in ("inactive_xml", "live_xml"):
            self.assertIn(f"socket='{sock}'", self.rec.get(x, ""), x)


# -- the systemd unit -----------------------------------------------------

class SystemdUnitTest(unittest.TestCase):
    """scripts/install-unit.sh into a temporary root; systemd-analyze
    verify on the result (the unit is verified, not started: these
    machines run no systemd)."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="ic-unit-")
        r = subprocess.run([os.path.join(REPO, "scripts", "install-unit.sh"),
                            "--destdir", cls.root], capture_output=True, text=True,
                           timeout=60, check=False)
        cls.install = r
        cls.unit = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def text(self):
        with open(self.unit, encoding="utf-8") as f:
            return f.read()

    def test_installed(self):
        self.assertEqual(self.install.returncode, 0, self.install.stderr)
        self.assertEqual(self.unit, os.path.join(self.root, "etc/systemd/system/"
                                                 "intellicache.service"))
        self.assertNotRegex(self.text(), r"@[A-Z_]+@")

    def test_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.fail("no systemd-analyze (package systemd)")
        r = subprocess.run(["systemd-analyze", "verify", self.unit], capture_output=True,
                           text=True, timeout=120, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "", "warnings from verify")

    def test_runs_the_daemon_with_its_monitor(self):
        text = self.text()
        m = re.search(r"^ExecStart=(\S+)", text, re.M)
        self.assertIsNotNone(m)
        self.assertEqual(m.group(1), str(qsd_binary()))
        self.assertIn("--chardev socket,id=qmp0,path=/run/intellicache/qmp.sock,"
                      "server=on,wait=off", text)
        self.assertIn("--monitor chardev=qmp0", text)
        for line in ("Restart=on-failure", "RuntimeDirectory=intellicache",
                     "StateDirectory=intellicache", "ProtectSystem=strict",
                     f"Environment=QEMU_MODULE_DIR={qsd_binary().parent.parent}"):
            self.assertRegex(text, rf"(?m)^{re.escape(line)}$")

    def test_example_host_file(self):
        etc = os.path.join(self.root, "etc", "intellicache")
        example = os.path.join(etc, "host.json.example")
        with open(example, encoding="utf-8") as f, \
                open(os.path.join(REPO, "scripts", "systemd", "host.json.example"),
                     encoding="utf-8") as g:
            self.assertEqual(f.read(), g.read())
        self.assertEqual(os.stat(example).st_mode & 0o777, 0o644)
        self.assertFalse(os.path.exists(os.path.join(etc, "host.json")))
        self.assertIn("host.json.example installed", self.install.stderr)
        # The administrator's host file is never written.
        mine = os.path.join(etc, "host.json")
        with open(mine, "w", encoding="utf-8") as f:
            f.write("{}")
        r = subprocess.run([os.path.join(REPO, "scripts", "install-unit.sh"),
                            "--destdir", self.root], capture_output=True, text=True,
                           timeout=60, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("host.json.example installed", r.stderr)
        with open(mine, encoding="utf-8") as f:
            self.assertEqual(f.read(), "{}")
        os.remove(mine)

    def unit_command(self, key):
        """The argv of the unit's @key= line as systemd runs it: continued
        lines joined, $$ unescaped."""
        m = re.search(rf"^{key}=((?:.*\\\n)*.*)$", self.text(), re.M)
        self.assertIsNotNone(m, key)
        return shlex.split(m.group(1).replace("\\\n", " ").replace("$$", "$"))

    def test_exec_start_post_applies_the_host_file(self):
        """The unit's own ExecStart and ExecStartPost, run as systemd would
        (with a temporary directory for /run/intellicache and
        /etc/intellicache): after a start, the host file is applied; again
        after a restart; without a host file, nothing; without the daemon's
        socket, an error after 10 s."""
        work = tempfile.mkdtemp(prefix="ic-unit-run-")
        procs = []
        try:
            sock = os.path.join(work, "qmp.sock")
            hostfile = os.path.join(work, "host.json")

            def local(argv):
                return [a.replace("/run/intellicache/qmp.sock", sock)
                         .replace("/etc/intellicache/host.json", hostfile) for a in argv]

            start = [a for a in local(self.unit_command("ExecStart"))
                     if a != "$INTELLICACHE_ARGS"]
            post = local(self.unit_command("ExecStartPost"))
            self.assertEqual(post[:2], ["/bin/sh", "-c"])
            nbdkit = Nbdkit(work, "pattern", {"size": "4M"}, tag="base").start()
            procs.append(nbdkit.stop)
            with open(hostfile, "w", encoding="utf-8") as f:
                json.dump({"cache-dir": os.path.join(work, "cache"),
                           "export-dir": os.path.join(work, "run"),
                           "pool-size": "8M",
                           "bases": {"pat": {"url": f"nbd+unix:///?socket={nbdkit.socket}"}}},
                          f)

            def run_post():
                return subprocess.run(post, capture_output=True, text=True, timeout=60,
                                      check=False)

            for attempt in ("start", "restart"):
                log = os.path.join(work, f"qsd-{attempt}.log")
                with open(log, "w", encoding="utf-8") as f:
                    daemon = subprocess.Popen(start, env=qemu_env(), stdout=f,
                                              stderr=subprocess.STDOUT)
                procs.append(lambda d=daemon: (d.terminate(), d.wait(30)))
                # systemd runs ExecStartPost right after the start (Type=exec).
                r = run_post()
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("created pool ic-pool-8M (size 8388608)", r.stdout, attempt)
                self.assertIn("added base pat: ", r.stdout, attempt)
                self.assertIn("(created)" if attempt == "start" else "(kept)", r.stdout)
                r = run_post()
                self.assertEqual((r.returncode, r.stdout), (0, "nothing to change\n"))
                daemon.terminate()
                with open(log, encoding="utf-8") as f:
                    self.assertEqual(daemon.wait(30), 0, f.read())
                with contextlib.suppress(FileNotFoundError):
                    os.remove(sock)  # a new start makes it again
            self.assertEqual(os.stat(os.path.join(work, "cache", "pat.cache")).st_mode
                             & 0o777, 0o600)

            # No host file: nothing to do, at once.
            os.remove(hostfile)
            r = run_post()
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
            # A host file but no daemon: it gives up after 10 s, and says so.
            with open(hostfile, "w", encoding="utf-8") as f:
                f.write("{}")
            t0 = time.monotonic()
            r = run_post()
            waited = time.monotonic() - t0
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"no QMP socket after 10 s: {hostfile} not applied", r.stderr)
            self.assertGreater(waited, 9)
        finally:
            for stop in reversed(procs):
                with contextlib.suppress(Exception):
                    stop()
            shutil.rmtree(work, ignore_errors=True)

    def test_prefix(self):
        root = tempfile.mkdtemp(prefix="ic-unit-")
        try:
            r = subprocess.run([os.path.join(REPO, "scripts", "install-unit.sh"),
                                "--destdir", root, "--prefix", "/usr/local"],
                               capture_output=True, text=True, timeout=60, check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.isfile(os.path.join(
                root, "usr/local/lib/systemd/system/intellicache.service")))
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
