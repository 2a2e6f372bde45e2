"""NBD clients: nbdcopy for whole-export reads, and a minimal client for
reads at arbitrary byte offsets."""

import contextlib
import hashlib
import socket
import subprocess
import threading
import time

from .common import HarnessError, MiB


def nbd_uri(socket_path, export=""):
    return f"nbd+unix:///{export}?socket={socket_path}"


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


NBD_CMD_READ = 0
NBD_CMD_CACHE = 5
NBD_FLAG_SEND_CACHE = 1 << 10


class NbdClient:
    """A minimal NBD client (fixed newstyle, NBD_OPT_EXPORT_NAME, simple
    replies) for reads at arbitrary byte offsets, which nbdcopy and fio
    cannot do.  One request at a time."""

    def __init__(self, socket_path, export="", timeout=60, greeting_only=False):
        """Connect and negotiate @export; with @greeting_only, stop after
        the server's greeting: negotiate() finishes the handshake later."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(socket_path))
        if self._recv(16) != b"NBDMAGICIHAVEOPT":
            raise HarnessError("not a fixed-newstyle NBD server")
        self.server_flags = int.from_bytes(self._recv(2), "big")
        self.handle = 0
        self.size = None
        if not greeting_only:
            self.negotiate(export)

    def negotiate(self, export=""):
        no_zeroes = self.server_flags & 2
        # Client flags: FIXED_NEWSTYLE, and NO_ZEROES if offered.
        self.sock.sendall((1 | no_zeroes).to_bytes(4, "big"))
        # NBD_OPT_EXPORT_NAME (1): the server answers with the export's size
        # and flags, or closes the connection if there is no such export.
        name = export.encode()
        self.sock.sendall(b"IHAVEOPT" + (1).to_bytes(4, "big")
                          + len(name).to_bytes(4, "big") + name)
        self.size = int.from_bytes(self._recv(8), "big")
        self.transmission_flags = int.from_bytes(self._recv(2), "big")
        if not no_zeroes:
            self._recv(124)

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise HarnessError("NBD server closed the connection")
            buf += chunk
        return bytes(buf)

    def _request(self, command, name, offset, length):
        """Send one request and read its simple reply's header; raises
        NbdError with the server's errno if it failed."""
        self.handle += 1
        self.sock.sendall((0x25609513).to_bytes(4, "big") + command.to_bytes(4, "big")
                          + self.handle.to_bytes(8, "big") + offset.to_bytes(8, "big")
                          + length.to_bytes(4, "big"))
        reply = self._recv(16)
        if int.from_bytes(reply[0:4], "big") != 0x67446698:
            raise HarnessError("bad NBD reply magic")
        error = int.from_bytes(reply[4:8], "big")
        if int.from_bytes(reply[8:16], "big") != self.handle:
            raise HarnessError("NBD reply for an unknown handle")
        if error:
            raise NbdError(f"NBD {name} at {offset}+{length}: error {error}", error)

    def pread(self, offset, length):
        self._request(NBD_CMD_READ, "read", offset, length)
        return self._recv(length)

    def cache(self, offset, length):
        """NBD_CMD_CACHE: ask the server to have the range ready for
        reading; no data in the reply."""
        if not self.transmission_flags & NBD_FLAG_SEND_CACHE:
            raise HarnessError("the NBD server does not accept NBD_CMD_CACHE")
        self._request(NBD_CMD_CACHE, "cache", offset, length)

    def close(self):
        # NBD_CMD_DISC (2): polite disconnect, no reply.
        with contextlib.suppress(OSError):
            self.sock.sendall((0x25609513).to_bytes(4, "big") + (2).to_bytes(4, "big")
                              + bytes(20))
        self.sock.close()
