"""A TCG guest in QEMU's system emulator, driven over its serial console.

The guest is scripts/guest-image.sh's kernel and initramfs; its init
(tests/guest/init) answers commands written on the serial console with
lines starting "IC ".  GuestVM starts qemu-system-x86_64 from a build
directory with the intellicache module (QEMU_MODULE_DIR), connects to the
console socket (QEMU waits for that before it starts the guest), copies
everything the guest prints into a log file, and opens QMP monitors.

Everything is bounded in time; the VM is stopped by its own pid.
Needs Python's standard library and QEMU's qemu.qmp (PYTHONPATH, set by
tests/guest/run.sh).
"""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

from qemu.qmp.legacy import QEMUMonitorProtocol

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Firmware of Debian's packages: seabios (bios-256k.bin), qemu-system-data
# (linuxboot_dma.bin for -kernel), ipxe-qemu.  The +ds source tarball has no
# firmware, so the build tree has none.
FIRMWARE_DIRS = ["/usr/share/seabios", "/usr/share/qemu", "/usr/lib/ipxe/qemu"]

# ASan's notices about QEMU's coroutines: not errors.
SANITIZER_ERRORS = re.compile(r"ERROR: AddressSanitizer|runtime error:|LeakSanitizer")


class GuestError(Exception):
    """The guest or QEMU did not do what was expected in time."""


def qemu_build_dir():
    return os.environ.get("IC_QEMU_BUILD", os.path.join(REPO, "build", "qemu", "build"))


def guest_dir():
    return os.environ.get("IC_GUEST_DIR", os.path.join(REPO, "build", "guest"))


def qemu_system(build):
    return os.path.join(build, "qemu-system-x86_64")


def thread_ticks(pid, tid):
    """utime + stime of thread @tid of process @pid, in clock ticks."""
    with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


class Monitor:
    """A QMP monitor (QEMU's legacy synchronous client) with its own event
    loop: usable from the thread that created it only."""

    def __init__(self, path, timeout):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.qmp = QEMUMonitorProtocol(path)
        try:
            self.qmp.connect()
        except BaseException:
            self.loop.close()
            raise
        self.qmp.settimeout(timeout)

    def cmd(self, name, **arguments):
        return self.qmp.cmd(name, **arguments)

    def close(self):
        if self.loop.is_closed():
            return
        try:
            self.qmp.close()
        except Exception:  # pylint: disable=broad-except
            pass
        self.loop.close()


class GuestVM:
    """qemu-system-x86_64 with the test guest.

    @workdir holds the sockets and logs (console.log, qemu.out, qemu.err).
    @blockdevs: the --blockdev option dicts; @device: the -device dict of
    the disk; @iothreads: ids of the iothread objects; @extra: more args.
    """

    def __init__(self, workdir, blockdevs, device, iothreads=(), smp=2, mem="512M",
                 extra=(), build=None, timeout=300):
        self.workdir = workdir
        self.build = build or qemu_build_dir()
        self.timeout = timeout
        self.console_log = os.path.join(workdir, "console.log")
        self.out_log = os.path.join(workdir, "qemu.out")
        self.err_log = os.path.join(workdir, "qemu.err")
        self.console_sock = os.path.join(workdir, "console.sock")
        self.qmp_socks = [os.path.join(workdir, f"qmp{i}.sock") for i in range(2)]
        gdir = guest_dir()
        args = [qemu_system(self.build), "-accel", "tcg", "-smp", str(smp), "-m", mem,
                "-name", "icguest,debug-threads=on",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]
        for d in FIRMWARE_DIRS:
            if os.path.isdir(d):
                args += ["-L", d]
        args += ["-kernel", os.path.join(gdir, "vmlinuz"),
                 "-initrd", os.path.join(gdir, "initramfs.gz"),
                 "-append", "console=ttyS0 quiet loglevel=3 panic=-1",
                 "-chardev", f"socket,id=con0,path={self.console_sock},server=on,wait=on",
                 "-serial", "chardev:con0"]
        for s in self.qmp_socks:
            args += ["-qmp", f"unix:{s},server=on,wait=off"]
        for io in iothreads:
            args += ["-object", f"iothread,id={io}"]
        for b in blockdevs:
            args += ["-blockdev", json.dumps(b)]
        args += ["-device", json.dumps(device)]
        args += list(extra)
        self.args = args
        self.proc = None
        self._con = None
        self._reader = None
        self._buf = ""
        self._pos = 0
        self._cond = threading.Condition()
        self._eof = False
        self.qmp = None
        self.started = None

    # -- lifecycle ------------------------------------------------------

    def start(self):
        env = dict(os.environ, QEMU_MODULE_DIR=self.build)
        with open(self.out_log, "wb") as out, open(self.err_log, "wb") as err:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=env, start_new_session=True)
        self.started = time.monotonic()
        try:
            self._connect_console()
            # QEMU creates the monitors' sockets after the console's
            for sock in self.qmp_socks:
                self.wait_socket(sock, 60)
            self.qmp = Monitor(self.qmp_socks[0], 60)
        except BaseException:
            self.kill()
            raise
        return self

    def _connect_console(self):
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise GuestError(f"QEMU exited with {self.proc.returncode} at start: "
                                 f"{self.stderr_tail()}")
            if os.path.exists(self.console_sock):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.console_sock)
                    break
                except OSError:
                    s.close()
            if time.monotonic() > deadline:
                raise GuestError("no console socket from QEMU within 60 s")
            time.sleep(0.05)
        self._con = s
        self._reader = threading.Thread(target=self._read_console, daemon=True)
        self._reader.start()

    def wait_socket(self, path, timeout):
        """Wait until QEMU listens on the unix socket @path."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise GuestError(f"QEMU exited with {self.proc.returncode} at start: "
                                 f"{self.stderr_tail()}")
            if os.path.exists(path):
                return
            if time.monotonic() > deadline:
                raise GuestError(f"no socket {path} from QEMU within {timeout} s")
            time.sleep(0.05)

    def _read_console(self):
        with open(self.console_log, "w", encoding="utf-8", errors="replace") as log:
            while True:
                try:
                    data = self._con.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    break
                text = data.decode("utf-8", errors="replace").replace("\r", "")
                log.write(text)
                log.flush()
                with self._cond:
                    self._buf += text
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """Stop QEMU by its pid (SIGKILL) and reap it; closes the console."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self._close()

    def _close(self):
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        if self._con is not None:
            try:
                self._con.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._con.close()
            self._con = None
        if self._reader is not None:
            self._reader.join(timeout=10)
            self._reader = None

    def quit(self, timeout=60):
        """Ask the guest to power off; wait for QEMU to exit, else kill it.
        Returns QEMU's exit status (None if it had to be killed)."""
        if self.alive():
            try:
                self.send("quit")
                self.expect(r"IC BYE", timeout=timeout)
            except GuestError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._close()
        return self.proc.returncode

    # -- console --------------------------------------------------------

    def send(self, line):
        self._con.sendall(line.encode() + b"\n")

    def expect(self, pattern, timeout=None):
        """Wait for a console line matching @pattern (a regex), searched
        from where the previous expect stopped; returns the match."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while True:
                m = rx.search(self._buf, self._pos)
                if m:
                    self._pos = m.end()
                    return m
                fatal = re.search(r"^IC (FATAL|UNKNOWN).*$", self._buf[self._pos:], re.M)
                if fatal:
                    raise GuestError(f"guest: {fatal.group(0)}")
                if self._eof:
                    raise GuestError(f"console closed while waiting for {pattern!r}; "
                                     f"QEMU: {self.stderr_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GuestError(f"no {pattern!r} on the console within "
                                     f"{timeout or self.timeout} s")
                self._cond.wait(min(left, 1.0))

    def console_since(self, start):
        with self._cond:
            return self._buf[start:]

    def console_pos(self):
        with self._cond:
            return self._pos

    # -- the guest's commands --------------------------------------------

    def wait_ready(self, timeout=180):
        m = self.expect(r"^IC READY cpus=(\d+) size=(\d+) queues=(\d+)$", timeout)
        return {"cpus": int(m.group(1)), "size": int(m.group(2)), "queues": int(m.group(3))}

    def read_regions(self, tag, bs, n, region, share=1, timeout=None):
        """Run the guest's "read" command: @n readers, reader i reads
        region i // @share; returns (sums by reader index, seconds from the
        command to its answer, measured on the host: the guest's clock under
        TCG is not to be trusted).  Raises GuestError if a reader failed."""
        start = self.console_pos()
        t0 = time.monotonic()
        self.send(f"read {tag} {bs} {n} {region} {share}")
        m = self.expect(rf"^IC DONE {re.escape(tag)} (ok|fail) (\d+)", timeout)
        seconds = time.monotonic() - t0
        text = self.console_since(start)
        if m.group(1) != "ok":
            errs = re.findall(rf"^IC ERR {re.escape(tag)} .*$", text, re.M)
            raise GuestError(f"read {tag} failed in the guest: {errs}")
        sums = {int(i): s for i, s in
                re.findall(rf"^IC SUM {re.escape(tag)} (\d+) ([0-9a-f]{{64}})$", text, re.M)}
        return sums, round(seconds, 2)

    def drop_caches(self):
        self.send("drop")
        self.expect(r"^IC DONE drop ok", 60)

    # -- host side -------------------------------------------------------

    def iothread_tids(self):
        """{iothread id: thread id} from query-iothreads."""
        return {t["id"]: t["thread-id"] for t in self.qmp.cmd("query-iothreads")}

    def thread_ticks(self, tid):
        return thread_ticks(self.proc.pid, tid)

    def stderr_text(self):
        try:
            with open(self.err_log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stderr_tail(self, n=20):
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def sanitizer_errors(self):
        """Lines of QEMU's stderr that report a sanitizer error."""
        return [l for l in self.stderr_text().splitlines() if SANITIZER_ERRORS.search(l)]
