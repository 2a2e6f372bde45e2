"""End-to-end harness for intellicache: real servers on loopback.

Everything here runs real programs: nfs-ganesha (NFSv3) with rpcbind, nbdkit,
qemu-storage-daemon with the intellicache filter exporting over NBD, and the
NBD clients nbdcopy and fio.  Servers listen on unix sockets where they can;
ganesha needs 127.0.0.1:2049 (and rpcbind on port 111), so only one ganesha
runs at a time.

Every server object is a context manager and is stopped by its own pid, also
when the code using it fails.  Every wait is bounded in time.

Standard library only.
"""

import contextlib
import ctypes
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In a child before exec: get SIGTERM if the harness process dies.

    A safety net for when the harness itself is killed; normal runs stop
    every server explicitly.
    """
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def exit_on_sigterm():
    """Turn SIGTERM into KeyboardInterrupt so that cleanups run."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


class HarnessError(Exception):
    """A server could not be started or stopped, or a client failed."""


class PortBusy(HarnessError):
    """A fixed port the harness needs is already in use."""


def qemu_build_dir():
    """QEMU's build directory: $IC_QEMU_BUILD or <repo>/build/qemu/build."""
    return Path(os.environ.get("IC_QEMU_BUILD", REPO / "build" / "qemu" / "build"))


def qsd_binary():
    return qemu_build_dir() / "storage-daemon" / "qemu-storage-daemon"


def missing_programs(names):
    """The names in @names that are not on $PATH."""
    return [n for n in names if shutil.which(n) is None]


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll @predicate until it returns a true value, at most @timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def tcp_port_open(port, host="127.0.0.1"):
    """True if something accepts TCP connections on host:port."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def unix_socket_ready(path):
    """True if a server accepts connections on the unix socket @path."""
    if not os.path.exists(path):
        return False
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as s:
        s.settimeout(1)
        return s.connect_ex(str(path)) == 0


def log_tail(path, lines=20):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class Server:
    """A child process we started, stopped by pid (SIGTERM, then SIGKILL)."""

    name = "server"

    def __init__(self):
        self.proc = None
        self.log_path = None

    def _spawn(self, argv, log_path, env=None):
        self.log_path = Path(log_path)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _check_alive(self):
        """Raise, with the log, if the process has exited (used while waiting)."""
        if self.proc.poll() is not None:
            raise HarnessError(f"{self.name} exited with status {self.proc.returncode}; "
                               f"log {self.log_path}:\n{log_tail(self.log_path)}")
        return False

    def stop(self, timeout=30):
        """SIGTERM, wait up to @timeout s, then SIGKILL.

        Returns (exit status, True if it had to be killed).  Safe to call
        more than once and on a process that already exited.
        """
        if self.proc is None:
            return None, False
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                killed = True
        return self.proc.returncode, killed

    def kill9(self):
        """SIGKILL: a crash, nothing gets a chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------
# NFS: rpcbind + nfs-ganesha

GANESHA_CONF = """\
NFS_CORE_PARAM {{ Protocols = 3; NFS_Port = {port}; Bind_addr = 127.0.0.1;
                 Enable_NLM = false; Enable_RQUOTA = false; }}
NFSV4 {{ Graceless = true; }}
EXPORT {{ Export_Id = 1; Path = {export}; Pseudo = /export; Access_Type = RO;
         Squash = No_Root_Squash; Protocols = 3; Transports = TCP; SecType = sys;
         FSAL {{ Name = VFS; }} }}
LOG {{ Default_Log_Level = WARN; }}
"""


class Ganesha(Server):
    """nfs-ganesha exporting @export_dir read-only over NFSv3 on 127.0.0.1.

    Starts rpcbind (in the foreground, as our child) if none answers on
    127.0.0.1:111, and stops it again.  Refuses to start if port 2049 is
    already taken (kernel nfsd or another ganesha): raises PortBusy.
    """

    name = "ganesha.nfsd"
    PORT = 2049

    def __init__(self, workdir, export_dir):
        super().__init__()
        self.workdir = Path(workdir)
        self.export_dir = Path(export_dir).resolve()
        self.rpcbind = None

    def url(self, name=""):
        """nfs:// URL of @name in the export (NFSv3 paths are real paths)."""
        return f"nfs://127.0.0.1{self.export_dir}/{name}"

    def path(self, name):
        """Path of @name as QEMU's nfs driver wants it."""
        return f"{self.export_dir}/{name}"

    def start(self):
        if tcp_port_open(self.PORT):
            raise PortBusy(f"127.0.0.1:{self.PORT} is already in use (kernel NFS server or "
                           "another nfs-ganesha?); stop it to run the NFS tests")
        if not tcp_port_open(111):
            self.rpcbind = Server()
            self.rpcbind.name = "rpcbind"
            self.rpcbind._spawn(["rpcbind", "-f", "-w"], self.workdir / "rpcbind.log")
            wait_until(lambda: tcp_port_open(111) or self.rpcbind._check_alive(),
                       10, "rpcbind on port 111")
        conf = self.workdir / "ganesha.conf"
        conf.write_text(GANESHA_CONF.format(port=self.PORT, export=self.export_dir))
        try:
            self._spawn(["ganesha.nfsd", "-F", "-f", str(conf),
                         "-L", str(self.workdir / "ganesha.log"),
                         "-p", str(self.workdir / "ganesha.pid"), "-N", "NIV_WARN"],
                        self.workdir / "ganesha.out")
            self.log_path = self.workdir / "ganesha.log"
            wait_until(lambda: self._export_answers() or self._check_alive(),
                       30, f"NFS export {self.export_dir}", interval=0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def _export_answers(self):
        r = subprocess.run(["nfs-ls", self.url()], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0

    def stop(self, timeout=30):
        try:
            return super().stop(timeout)
        finally:
            if self.rpcbind is not None:
                self.rpcbind.stop(10)
                self.rpcbind = None


# ---------------------------------------------------------------------------
# nbdkit


class Nbdkit(Server):
    """nbdkit serving @plugin on a unix socket, with optional filters.

    @plugin_args and @filter_args are dicts of key=value parameters.  With
    stats=True the stats filter is added (outermost, so it counts what
    clients asked for) and stats() returns its figures after stop().
    """

    name = "nbdkit"

    def __init__(self, workdir, plugin, plugin_args, filters=(), filter_args=None,
                 stats=False, tag="nbdkit"):
        super().__init__()
        self.workdir = Path(workdir)
        self.socket = self.workdir / f"{tag}.sock"
        self.statsfile = self.workdir / f"{tag}.stats" if stats else None
        filters = (["stats"] if stats else []) + list(filters)
        args = dict(plugin_args)
        args.update(filter_args or {})
        if stats:
            args["statsfile"] = str(self.statsfile)
        self.argv = (["nbdkit", "-f", "--exit-with-parent", "-U", str(self.socket),
                      "-P", str(self.workdir / f"{tag}.pid")]
                     + [f"--filter={f}" for f in filters]
                     + [plugin] + [f"{k}={v}" for k, v in args.items()])
        self.tag = tag

    @property
    def uri(self):
        return nbd_uri(self.socket)

    def start(self):
        self._spawn(self.argv, self.workdir / f"{self.tag}.log")
        # nbdkit writes its pid file once it accepts connections.
        pidfile = self.workdir / f"{self.tag}.pid"
        try:
            wait_until(lambda: pidfile.exists() or self._check_alive(), 20,
                       "nbdkit to listen")
        except BaseException:
            self.stop()
            raise
        return self

    _UNITS = {"bytes": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20,
              "GiB": 1 << 30, "TiB": 1 << 40}

    def stats(self):
        """{op: {"ops": int, "bytes": int}} from the stats file (after stop()).

        nbdkit prints sizes with two decimals in binary units, so "bytes"
        is approximate for large amounts.
        """
        result = {}
        for line in self.statsfile.read_text().splitlines():
            if line.startswith(" ") or ":" not in line:
                continue
            op, rest = line.split(":", 1)
            fields = [f.strip() for f in rest.split(",")]
            if not fields[0].endswith(" ops"):
                continue
            entry = {"ops": int(fields[0].split()[0]), "bytes": 0}
            for f in fields[1:]:
                parts = f.split()
                if len(parts) == 2 and parts[1] in self._UNITS:
                    entry["bytes"] = round(float(parts[0]) * self._UNITS[parts[1]])
                    break
            result[op] = entry
        return result


# ---------------------------------------------------------------------------
# QMP and qemu-storage-daemon


class QMPError(HarnessError):
    pass


class QMP:
    """Minimal QMP client: line-delimited JSON over a unix socket."""

    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting {greeting}")
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise QMPError("QMP connection closed")
        return json.loads(line)

    def cmd(self, execute, **arguments):
        msg = {"execute": execute}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        # Asynchronous events may arrive before the answer; skip them.  The
        # socket timeout bounds each read, the count bounds the loop.
        for _ in range(10000):
            reply = self._read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QMPError(f"{execute}: {reply['error'].get('desc', reply['error'])}")
        raise QMPError(f"{execute}: no answer among 10000 messages")

    def close(self):
        self.file.close()
        self.sock.close()


def create_cache_file(path):
    """An empty cache file, mode 0600, as the driver expects before start."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    return Path(path)


def nfs_base(ganesha, name):
    """--blockdev options of a read-only QEMU nfs node for @name on @ganesha."""
    return {"driver": "nfs", "server": {"type": "inet", "host": "127.0.0.1"},
            "path": ganesha.path(name)}


def nbd_base(socket_path):
    """--blockdev options of a QEMU nbd client node on a unix socket."""
    return {"driver": "nbd", "server": {"type": "unix", "path": str(socket_path)}}


# The cache file node configuration recommended for speed: O_DIRECT with
# Linux native AIO keeps the cache's writes out of the page cache, which
# otherwise costs more CPU than the cold reads themselves (docs/design.rst).
# Not for tmpfs, which has no O_DIRECT.
CACHE_DIRECT = {"cache": {"direct": True}, "aio": "native"}


class StorageDaemon(Server):
    """qemu-storage-daemon: base -> intellicache -> NBD export on a unix socket.

    @base: blockdev options of the base node (node-name and read-only are
    set here).  With @cache None the base itself is exported (no cache, the
    reference configuration).  @ic_options: extra intellicache options, e.g.
    {"max-inflight": 1}.  @cache_options: extra options of the cache's file
    node, e.g. CACHE_DIRECT.
    """

    name = "qemu-storage-daemon"

    def __init__(self, workdir, base, cache=None, ic_options=None, tag="qsd",
                 cache_options=None):
        super().__init__()
        self.workdir = Path(workdir)
        self.tag = tag
        self.socket = self.workdir / f"{tag}-nbd.sock"
        self.qmp_path = self.workdir / f"{tag}-qmp.sock"
        self.node = "ic0" if cache else "base0"
        blockdevs = [dict(base, **{"node-name": "base0", "read-only": True})]
        if cache:
            blockdevs.append(dict({"driver": "file", "node-name": "cache0",
                                   "filename": str(cache)},
                                  **(cache_options or {})))
            blockdevs.append(dict({"driver": "intellicache", "node-name": "ic0",
                                   "file": "base0", "cache-file": "cache0"},
                                  **(ic_options or {})))
        self.argv = [str(qsd_binary())]
        for b in blockdevs:
            self.argv += ["--blockdev", json.dumps(b)]
        self.argv += [
            "--nbd-server", f"addr.type=unix,addr.path={self.socket}",
            "--export", f"type=nbd,id=e0,node-name={self.node}",
            "--chardev", f"socket,id=qmp0,path={self.qmp_path},server=on,wait=off",
            "--monitor", "chardev=qmp0",
        ]
        self.qmp = None

    @property
    def uri(self):
        # QEMU names an NBD export after its node unless told otherwise.
        return nbd_uri(self.socket, self.node)

    def start(self, timeout=60):
        for p in (self.socket, self.qmp_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        env = dict(os.environ, QEMU_MODULE_DIR=str(qemu_build_dir()))
        self._spawn(self.argv, self.workdir / f"{self.tag}.log", env=env)
        try:
            wait_until(lambda: (unix_socket_ready(self.qmp_path)
                                and unix_socket_ready(self.socket))
                       or self._check_alive(), timeout, f"{self.name} sockets")
            self.qmp = QMP(self.qmp_path)
        except BaseException:
            self.stop()
            raise
        return self

    def stats(self, node=None):
        """The intellicache statistics of @node (default ic0) as a dict."""
        node = node or self.node
        for n in self.qmp.cmd("query-named-block-nodes", flat=True):
            if n.get("node-name") == node:
                fs = n.get("image", {}).get("format-specific")
                if not fs or fs.get("type") != "intellicache":
                    raise HarnessError(f"node {node} has no intellicache stats: {fs}")
                return fs["data"]
        raise HarnessError(f"node {node} not found")

    def _close_qmp(self):
        if self.qmp is not None:
            with contextlib.suppress(OSError):
                self.qmp.close()
            self.qmp = None

    def stop(self, timeout=60):
        """Clean shutdown by SIGTERM; returns (status, killed)."""
        self._close_qmp()
        return super().stop(timeout)

    def kill9(self):
        self._close_qmp()
        super().kill9()


# ---------------------------------------------------------------------------
# Data and clients


def nbd_uri(socket_path, export=""):
    return f"nbd+unix:///{export}?socket={socket_path}"


def _write_random(f, size, seed):
    """Write @size bytes of seeded pseudo-random data to @f; return sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    left = size
    while left:
        chunk = rng.randbytes(min(left, MiB))
        digest.update(chunk)
        f.write(chunk)
        left -= len(chunk)
    return digest


def make_base_image(path, size, seed):
    """Write @size bytes of seeded pseudo-random data to @path; return sha256.

    The content is incompressible and reproducible for a given seed.
    """
    with open(path, "wb") as f:
        return _write_random(f, size, seed).hexdigest()


def overwrite_in_place(path, seed):
    """Replace the content of @path (same size, same inode); return sha256."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        digest = _write_random(f, size, seed)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ReadResult:
    def __init__(self, sha256, nbytes, seconds):
        self.sha256 = sha256
        self.nbytes = nbytes
        self.seconds = seconds

    @property
    def mib_per_s(self):
        return self.nbytes / MiB / self.seconds if self.seconds else float("inf")


def nbd_read_all(uri, timeout=300):
    """Read the whole export at @uri with nbdcopy; return a ReadResult.

    nbdcopy writes to a pipe and we hash as the data arrives, so the time
    includes hashing (well above 1 GiB/s, not the limit for these reads).
    """
    start = time.monotonic()
    digest = hashlib.sha256()
    nbytes = 0
    with subprocess.Popen(["nbdcopy", uri, "-"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        # A watchdog bounds the whole read: killing nbdcopy ends the loop.
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            for chunk in iter(lambda: proc.stdout.read(MiB), b""):
                digest.update(chunk)
                nbytes += len(chunk)
            err = proc.stderr.read().decode(errors="replace")
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise HarnessError(f"nbdcopy {uri} failed with status {proc.returncode} "
                           f"after {seconds:.1f} s: {err.strip()}")
    return ReadResult(digest.hexdigest(), nbytes, seconds)


class NbdError(HarnessError):
    """The NBD server answered a request with an error (NBD errno value)."""

    def __init__(self, message, errno):
        super().__init__(message)
        self.errno = errno


class NbdClient:
    """A minimal NBD client (fixed newstyle, NBD_OPT_EXPORT_NAME, simple
    replies) for reads at arbitrary byte offsets, which nbdcopy and fio
    cannot do.  One request at a time."""

    def __init__(self, socket_path, export="", timeout=60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(socket_path))
        if self._recv(16) != b"NBDMAGICIHAVEOPT":
            raise HarnessError("not a fixed-newstyle NBD server")
        server_flags = int.from_bytes(self._recv(2), "big")
        no_zeroes = server_flags & 2
        # Client flags: FIXED_NEWSTYLE, and NO_ZEROES if offered.
        self.sock.sendall((1 | no_zeroes).to_bytes(4, "big"))
        # NBD_OPT_EXPORT_NAME (1): the server answers with the export's size
        # and flags, or closes the connection if there is no such export.
        name = export.encode()
        self.sock.sendall(b"IHAVEOPT" + (1).to_bytes(4, "big")
                          + len(name).to_bytes(4, "big") + name)
        self.size = int.from_bytes(self._recv(8), "big")
        self._recv(2 if no_zeroes else 2 + 124)
        self.handle = 0

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise HarnessError("NBD server closed the connection")
            buf += chunk
        return bytes(buf)

    def pread(self, offset, length):
        self.handle += 1
        self.sock.sendall((0x25609513).to_bytes(4, "big") + (0).to_bytes(4, "big")
                          + self.handle.to_bytes(8, "big") + offset.to_bytes(8, "big")
                          + length.to_bytes(4, "big"))
        reply = self._recv(16)
        if int.from_bytes(reply[0:4], "big") != 0x67446698:
            raise HarnessError("bad NBD reply magic")
        error = int.from_bytes(reply[4:8], "big")
        if int.from_bytes(reply[8:16], "big") != self.handle:
            raise HarnessError("NBD reply for an unknown handle")
        if error:
            raise NbdError(f"NBD read at {offset}+{length}: error {error}", error)
        return self._recv(length)

    def close(self):
        # NBD_CMD_DISC (2): polite disconnect, no reply.
        with contextlib.suppress(OSError):
            self.sock.sendall((0x25609513).to_bytes(4, "big") + (2).to_bytes(4, "big")
                              + bytes(20))
        self.sock.close()


def run_fio(uri, workdir, rw="randread", bs="4k", iodepth=16, runtime=None,
            number_ios=None, seed=1, tag="fio", timeout=300):
    """Run fio's nbd engine against @uri; return the read figures.

    Either @runtime (seconds, time based) or @number_ios bounds the job.
    Returns {"iops", "io_bytes", "total_ios", "runtime_ms", "clat_mean_us"}.
    """
    out = Path(workdir) / f"{tag}.json"
    argv = ["fio", f"--name={tag}", "--ioengine=nbd", f"--uri={uri}",
            f"--rw={rw}", f"--bs={bs}", f"--iodepth={iodepth}",
            f"--randseed={seed}", "--output-format=json", f"--output={out}"]
    if runtime is not None:
        argv += [f"--runtime={runtime}", "--time_based"]
    if number_ios is not None:
        argv += [f"--number_ios={number_ios}"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    text = out.read_text() if out.exists() else ""
    if r.returncode != 0:
        raise HarnessError(f"fio failed with status {r.returncode}: "
                           f"{r.stdout.decode(errors='replace')}{text}")
    # The nbd engine prints a "connected" line before the JSON document.
    job = json.loads(text[text.index("{"):])["jobs"][0]
    if job["error"]:
        raise HarnessError(f"fio job error {job['error']}")
    read = job["read"]
    return {"iops": read["iops"], "io_bytes": read["io_bytes"],
            "total_ios": read["total_ios"], "runtime_ms": read["runtime"],
            "clat_mean_us": read["clat_ns"]["mean"] / 1000}


# ---------------------------------------------------------------------------
# unittest support


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

    def start_daemon(self, base, cache, tag="qsd", **ic_options):
        """Start a daemon that is stopped at the end of the test in any case."""
        d = StorageDaemon(self.dir, base, cache, ic_options, tag=tag)
        self.addCleanup(d.stop)
        return d.start()

    def stop_clean(self, daemon):
        """Stop by SIGTERM and insist on a clean, timely exit."""
        status, killed = daemon.stop()
        self.assertFalse(killed, f"{daemon.name} ignored SIGTERM; log:\n"
                                 f"{log_tail(daemon.log_path)}")
        self.assertEqual(status, 0, f"{daemon.name} exit status; log:\n"
                                    f"{log_tail(daemon.log_path)}")

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
