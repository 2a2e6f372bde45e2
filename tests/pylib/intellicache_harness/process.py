"""Child processes that are always stopped by their own pid."""

import ctypes
import signal
import subprocess
from pathlib import Path

from .common import HarnessError, log_tail

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In a child before exec (preexec_fn): get SIGTERM if the harness
    process dies.  A safety net for when the harness itself is killed;
    normal runs stop every child explicitly."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def exit_on_sigterm():
    """Turn SIGTERM into KeyboardInterrupt so that cleanups run."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def proc_state(proc):
    """'still running', 'exited with status N' or 'killed by signal N'."""
    rc = proc.poll()
    if rc is None:
        return "still running"
    return f"exited with status {rc}" if rc >= 0 else f"killed by signal {-rc}"


class Server:
    """A child process we started, stopped by pid (SIGTERM, then SIGKILL).

    A context manager: leaving the block stops it, also on failure."""

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
                                         preexec_fn=die_with_parent)

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
