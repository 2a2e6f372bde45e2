"""Basics shared by every module: sizes, errors, bounded waits, socket
probes, program and QEMU build lookup, /proc figures."""

import contextlib
import os
import shutil
import socket
import time
from pathlib import Path

# tests/pylib/intellicache_harness/common.py -> the repository.
REPO = Path(__file__).resolve().parents[3]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB


class HarnessError(Exception):
    """A server could not be started or stopped, or a client failed."""


class PortBusy(HarnessError):
    """A fixed port the harness needs is already in use."""


def qemu_build_dir():
    """QEMU's build directory: $IC_QEMU_BUILD or <repo>/build/qemu/build."""
    return Path(os.environ.get("IC_QEMU_BUILD", REPO / "build" / "qemu" / "build"))


def qemu_binary(name):
    """A program of QEMU's build: qemu-storage-daemon, qemu-img, qemu-io."""
    b = qemu_build_dir()
    return b / "storage-daemon" / name if name == "qemu-storage-daemon" else b / name


def qsd_binary():
    return qemu_binary("qemu-storage-daemon")


def ctl_binary():
    """intellicache-ctl: $IC_CTL, default this tree's build (not checked)."""
    return Path(os.environ.get("IC_CTL", REPO / "build" / "tools" / "ctl" / "intellicache-ctl"))


def built_ctl():
    """ctl_binary(), or HarnessError if it has not been built."""
    ctl = ctl_binary()
    if not ctl.exists():
        raise HarnessError(f"{ctl} not built (scripts/build.sh)")
    return ctl


def qemu_env():
    """The environment for QEMU programs: modules from QEMU's build."""
    return dict(os.environ, QEMU_MODULE_DIR=str(qemu_build_dir()))


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
    """The last @lines lines of a log file, for error messages."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def proc_cpu_s(pid):
    """utime + stime of @pid in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid, field="VmRSS:"):
    """A KiB figure of /proc/@pid/status: VmRSS:, RssAnon:, VmHWM: ..."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise HarnessError(f"no {field} for pid {pid}")


def fd_count(pid):
    """Open file descriptors of @pid."""
    return len(os.listdir(f"/proc/{pid}/fd"))
