"""A synchronous QMP connection built on QEMU's own QMP library.

The library is the ``qemu.qmp`` package of QEMU's source tree
(``build/qemu/src/python``), which the runners put on PYTHONPATH.  This
wrapper adds what the harness wants from it: a blocking call per command
with a time limit, and one error type (QMPError, a HarnessError) that
carries QMP's error class and description.
"""

import asyncio

from .common import HarnessError

try:
    from qemu.qmp import ExecuteError, QMPClient
    from qemu.qmp import QMPError as LibQMPError
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"{e}: QEMU's QMP library (package qemu.qmp) is not importable; put QEMU's "
        "python/ directory on PYTHONPATH (build/qemu/src/python; tests/e2e/run.sh and "
        "scripts/bench.py do it, see docs/e2e.rst)") from e


class QMPError(HarnessError):
    """A QMP command failed.  error_class and desc are QMP's error members
    when the monitor answered with an error, None otherwise (connection
    lost, timeout)."""

    def __init__(self, message, command=None, error_class=None, desc=None):
        super().__init__(message)
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QMP:
    """A QMP connection to a unix socket, with capabilities negotiated.

    Each connection runs its own asyncio event loop, driven only while a
    call is in progress, so it can be used from any one thread at a time.
    Every call is bounded by @timeout seconds.
    """

    def __init__(self, path, timeout=30, name=None):
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient(name)
        try:
            self._run(self._client.connect(str(path)))
        except (LibQMPError, OSError, asyncio.TimeoutError) as e:
            self._loop.close()
            raise QMPError(f"QMP connection to {path} failed: {e!r}") from e
        except BaseException:
            self._loop.close()
            raise

    def _run(self, coro, timeout=None):
        return self._loop.run_until_complete(
            asyncio.wait_for(coro, timeout if timeout is not None else self.timeout))

    def cmd(self, name, **arguments):
        """Run the command @name and return its result.

        Arguments are keywords; QMP names with dashes go in a dict:
        cmd("blockdev-del", **{"node-name": "ic0"}).
        """
        try:
            return self._run(self._client.execute(name, arguments or None))
        except ExecuteError as e:
            raise QMPError(f"{name}: {e}", name, e.error_class, str(e)) from e
        except asyncio.TimeoutError as e:
            raise QMPError(f"{name}: no answer within {self.timeout} s", name) from e
        except (LibQMPError, OSError) as e:
            raise QMPError(f"{name}: {e!r}", name) from e

    def events(self, name=None, wait=0.0):
        """The events received since the last call, oldest first (QMP
        messages as dicts: event, data, timestamp), only those called
        @name if given.  Events are read while a command runs; @wait
        seconds more are spent reading them first."""
        async def drain():
            await asyncio.sleep(wait)
            return self._client.events.clear()
        try:
            messages = self._run(drain(), wait + self.timeout)
        except (LibQMPError, OSError) as e:
            raise QMPError(f"reading events: {e!r}") from e
        result = [dict(m) for m in messages]
        return [m for m in result if name is None or m["event"] == name]

    def close(self):
        """Disconnect; safe to call more than once and after the peer died."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.disconnect(), 10)
        except Exception:  # noqa: BLE001 -- the peer may be gone; nothing to do
            pass
        finally:
            self._loop.close()
