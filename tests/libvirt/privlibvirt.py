"""A libvirt of the test's own: virtlogd and libvirtd as root, each in a
private mount namespace where directories of a work directory are mounted
over libvirt's system paths.

libvirtd run as root is always the privileged (system) instance, whose
paths (/etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt,
/var/cache/libvirt) are compiled in; only the unprivileged session
instance follows XDG_* variables.  In a mount namespace of its own
(unshare -m, private propagation) the daemon sees the work directory's
etc/, run/, lib/, log/ and cache/ at those paths instead, while nothing
changes for the rest of the machine.  Its client socket is in the work
directory's sock/ (unix_sock_dir), outside the mounted paths, so virsh
reaches it from the host's namespace: qemu:///system?socket=WORK/sock/
libvirt-sock.  LIBVIRT_DRIVER_DIR names a directory that holds the QEMU
driver alone: no network, nwfilter or storage driver is loaded, so there
is no default network and no bridge or firewall rule.

Both daemons are our children (unshare execs a shell that mounts and
execs the daemon), stopped by their pids, and get SIGTERM if the test
process dies.  Every wait is bounded.
"""

import os
import shutil
import signal
import subprocess
import time

from intellicache_harness.process import die_with_parent

DRIVER = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"

# (system path, directory of the work directory mounted over it)
MOUNTS = (("/etc/libvirt", "etc"), ("/run/libvirt", "run"), ("/var/lib/libvirt", "lib"),
          ("/var/log/libvirt", "log"), ("/var/cache/libvirt", "cache"))

LIBVIRTD_CONF = """\
unix_sock_dir = "{sock}"
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "6a1e2c3d-0b4f-4c5e-9d7a-1b2c3d4e5f60"
log_outputs = "2:file:{work}/libvirtd.log"
"""

# The libvirt-qemu user must exist anyway (the driver resolves its default
# user before reading this file).  No security driver, no ownership
# changes of the files the domains use, no cgroups, no per-domain mount
# namespace: the test's files stay as they are.
QEMU_CONF = """\
user = "root"
group = "root"
swtpm_user = "root"
swtpm_group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "logd"
"""

VIRTLOGD_CONF = """\
log_outputs = "2:file:{work}/virtlogd.log"
"""

NS_SCRIPT = """\
#!/bin/sh
# In a new mount namespace: mount the work directory's parts over
# libvirt's system paths, then become the daemon.
set -e
{mounts}
exec "$@"
"""


class LibvirtError(Exception):
    """libvirt could not be started, or a virsh command failed."""


def missing():
    """What is missing to run libvirt here, or None."""
    if os.geteuid() != 0:
        return "not root (libvirtd's QEMU driver and the mount namespace need it)"
    for prog in ("libvirtd", "virtlogd", "virsh", "virt-xml-validate", "xmllint", "unshare"):
        if shutil.which(prog) is None:
            return (f"no {prog} (libvirt-daemon, libvirt-clients, libxml2-utils: "
                    "scripts/setup-deps.sh)")
    if not os.path.exists(DRIVER):
        return f"no {DRIVER} (libvirt-daemon-driver-qemu)"
    try:
        import pwd  # pylint: disable=import-outside-toplevel
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        return "no libvirt-qemu user (tests/libvirt/run.sh creates it)"
    return None


class PrivateLibvirt:
    """virtlogd and libvirtd of our own under @work."""

    def __init__(self, work):
        self.work = os.path.abspath(work)
        self.sock_dir = os.path.join(self.work, "sock")
        self.socket = os.path.join(self.sock_dir, "libvirt-sock")
        self.uri = f"qemu:///system?socket={self.socket}"
        self.virtlogd = None
        self.libvirtd = None
        self.made_mountpoints = []

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def log_dir(self):
        """Where /var/log/libvirt is, seen from outside the namespace."""
        return self.path("log")

    def _prepare(self):
        for _, d in MOUNTS:
            os.makedirs(self.path(d), exist_ok=True)
        os.makedirs(self.sock_dir, exist_ok=True)
        drivers = self.path("drivers")
        os.makedirs(drivers, exist_ok=True)
        link = os.path.join(drivers, os.path.basename(DRIVER))
        if not os.path.lexists(link):
            os.symlink(DRIVER, link)
        with open(self.path("etc", "libvirtd.conf"), "w", encoding="utf-8") as f:
            f.write(LIBVIRTD_CONF.format(sock=self.sock_dir, work=self.work))
        with open(self.path("etc", "qemu.conf"), "w", encoding="utf-8") as f:
            f.write(QEMU_CONF)
        with open(self.path("etc", "virtlogd.conf"), "w", encoding="utf-8") as f:
            f.write(VIRTLOGD_CONF.format(work=self.work))
        # Mount points: libvirt's system directories, made (empty) when
        # missing and removed again at the end if still empty.
        for target, _ in MOUNTS:
            if not os.path.isdir(target):
                os.makedirs(target)
                self.made_mountpoints.append(target)
        mounts = "\n".join(f"mount --bind '{self.path(d)}' '{t}'" for t, d in MOUNTS)
        script = self.path("ns.sh")
        with open(script, "w", encoding="utf-8") as f:
            f.write(NS_SCRIPT.format(mounts=mounts))
        os.chmod(script, 0o755)
        return script

    def _spawn(self, name, argv, env=None):
        log = open(self.path(f"{name}.out"), "ab")  # pylint: disable=consider-using-with
        try:
            return subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                     self.path("ns.sh")] + argv,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, start_new_session=True,
                                    preexec_fn=die_with_parent)
        finally:
            log.close()

    def start(self, timeout=60):
        self._prepare()
        try:
            self.virtlogd = self._spawn("virtlogd", [
                "virtlogd", "-p", self.path("virtlogd.pid"), "-f", "/etc/libvirt/virtlogd.conf"])
            self._wait(lambda: os.path.exists(self.path("run", "virtlogd-sock")),
                       self.virtlogd, "virtlogd", timeout)
            env = dict(os.environ, LIBVIRT_DRIVER_DIR=self.path("drivers"))
            self.libvirtd = self._spawn("libvirtd", [
                "libvirtd", "-p", self.path("libvirtd.pid"), "-f", "/etc/libvirt/libvirtd.conf"],
                env=env)
            self._wait(lambda: os.path.exists(self.socket), self.libvirtd, "libvirtd", timeout)
            # The first connection probes QEMU's capabilities (seconds).
            self.virsh("version", timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, ready, proc, name, timeout):
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise LibvirtError(f"{name} exited with {proc.returncode}: "
                                   f"{self.tail(name + '.out')} {self.tail(name + '.log')}")
            if time.monotonic() > deadline:
                raise LibvirtError(f"{name} not ready within {timeout} s")
            time.sleep(0.1)

    def tail(self, name, lines=15):
        try:
            with open(self.path(name), encoding="utf-8", errors="replace") as f:
                return "\n".join(f.read().splitlines()[-lines:])
        except OSError:
            return ""

    def virsh(self, *args, timeout=60, check=True):
        """Run virsh on our libvirtd; returns its stdout."""
        r = subprocess.run(["virsh", "-c", self.uri] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, check=False)
        if check and r.returncode != 0:
            raise LibvirtError(f"virsh {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def domains(self):
        out = self.virsh("list", "--all", "--name", check=False)
        return [l.strip() for l in out.splitlines() if l.strip()]

    def _qemu_pids(self):
        """Pids of the QEMU processes our libvirtd started (its pid files)."""
        pids = []
        qdir = self.path("run", "qemu")
        if os.path.isdir(qdir):
            for name in os.listdir(qdir):
                if name.endswith(".pid"):
                    try:
                        with open(os.path.join(qdir, name), encoding="ascii") as f:
                            pids.append(int(f.read().strip()))
                    except (OSError, ValueError):
                        pass
        return pids

    def stop(self):
        """Destroy and undefine every domain, stop libvirtd and virtlogd by
        their pids; kill, by pid, any QEMU of ours still alive."""
        if self.libvirtd is not None and self.libvirtd.poll() is None:
            for dom in self.domains():
                self.virsh("destroy", dom, check=False)
                self.virsh("undefine", dom, "--nvram", check=False)
        qemu_pids = self._qemu_pids()
        for proc in (self.libvirtd, self.virtlogd):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for pid in qemu_pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"qemu-system" not in f.read():
                        continue
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        for target in reversed(self.made_mountpoints):
            try:
                os.rmdir(target)
            except OSError:
                pass
        self.made_mountpoints = []
