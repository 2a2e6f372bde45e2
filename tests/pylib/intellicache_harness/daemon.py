"""qemu-storage-daemon with NBD exports and a QMP monitor on unix sockets."""

import contextlib
import json
import os
import time
from pathlib import Path

from .common import HarnessError, log_tail, qemu_env, qsd_binary, unix_socket_ready, wait_until
from .nbd import nbd_uri
from .nodes import file_node, intellicache_node
from .process import Server
from .qmp import QMP, QMPError
from .stats import node_stats


class StorageDaemon(Server):
    """qemu-storage-daemon with the nodes @blockdevs (a list of --blockdev
    option dicts, in order) and one NBD export per node name in @exports,
    each named after its node.  Once started, .qmp is a QMP connection
    (harness.qmp.QMP) to its monitor.  With @netns (a harness.netns.NetPair)
    the daemon runs in its client namespace; its sockets are files, so it
    is reached as usual.  stop() and start() again restart it with the same
    options (a restart of the same daemon)."""

    name = "qemu-storage-daemon"

    def __init__(self, workdir, blockdevs, exports, tag="qsd", netns=None, extra_args=()):
        """@extra_args: more command-line arguments, e.g. ["--trace", ...]."""
        super().__init__()
        self.workdir = Path(workdir)
        self.tag = tag
        self.socket = self.workdir / f"{tag}-nbd.sock"
        self.qmp_path = self.workdir / f"{tag}-qmp.sock"
        self.node = exports[0] if exports else None
        self.argv = netns.argv_in(netns.client_ns) if netns is not None else []
        self.argv += [str(qsd_binary())]
        for b in blockdevs:
            self.argv += ["--blockdev", json.dumps(b)]
        self.argv += ["--nbd-server", f"addr.type=unix,addr.path={self.socket}"]
        for i, node in enumerate(exports):
            self.argv += ["--export", f"type=nbd,id=e{i},node-name={node}"]
        self.argv += ["--chardev", f"socket,id=qmp0,path={self.qmp_path},server=on,wait=off",
                      "--monitor", "chardev=qmp0"]
        self.argv += list(extra_args)
        self.qmp = None

    @property
    def uri(self):
        """NBD URI of the first export."""
        return self.uri_for(self.node)

    def uri_for(self, node):
        # QEMU names an NBD export after its node unless told otherwise.
        return nbd_uri(self.socket, node)

    def start(self, timeout=60):
        for p in (self.socket, self.qmp_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self._spawn(self.argv, self.workdir / f"{self.tag}.log", env=qemu_env())
        try:
            wait_until(lambda: (unix_socket_ready(self.qmp_path)
                                and unix_socket_ready(self.socket))
                       or self._check_alive(), timeout, f"{self.name} sockets")
            self.qmp = self._connect_qmp()
        except BaseException:
            self.stop()
            raise
        return self

    def _connect_qmp(self, attempts=3):
        """The QMP session, tried again while the daemon lives: the
        monitor serves one client at a time, and on a loaded machine it
        may still be closing the readiness probe's connection when the
        session starts (seen once as 'Failed to establish session')."""
        for attempt in range(1, attempts + 1):
            try:
                return QMP(self.qmp_path, name=self.tag)
            except QMPError:
                self._check_alive()
                if attempt == attempts:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    def stats(self, node=None):
        """The intellicache node's counters and state (harness.stats.node_stats)
        of @node, by default the first export."""
        return node_stats(self.qmp, node or self.node)

    def _close_qmp(self):
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None

    def stop(self, timeout=60):
        """Clean shutdown by SIGTERM; returns (status, killed)."""
        self._close_qmp()
        return super().stop(timeout)

    def stop_checked(self, what, timeout=300):
        """stop(), raising HarnessError unless the daemon exited with
        status 0 by itself; returns the seconds the stop took."""
        t = time.monotonic()
        status, killed = self.stop(timeout)
        if killed or status != 0:
            raise HarnessError(f"{what}: daemon exit status {status}, killed={killed}; "
                               f"log:\n{log_tail(self.log_path)}")
        return time.monotonic() - t

    def kill9(self):
        self._close_qmp()
        super().kill9()


class IcDaemon(StorageDaemon):
    """The usual stack: base -> intellicache -> NBD export.

    @base: options of the base node (node-name base0 and read-only are set
    here).  With @cache None the base itself is exported (no cache, the
    reference configuration).  @ic_options: extra intellicache options,
    e.g. {"max-inflight": 1}.  @cache_options: extra options of the cache's
    file node, e.g. CACHE_DIRECT.
    """

    def __init__(self, workdir, base, cache=None, ic_options=None, tag="qsd",
                 cache_options=None, netns=None):
        blockdevs = [dict(base, **{"node-name": "base0", "read-only": True})]
        if cache:
            blockdevs.append(dict(file_node("cache0", cache, direct=False),
                                  **(cache_options or {})))
            blockdevs.append(intellicache_node("ic0", "base0", "cache0",
                                               **(ic_options or {})))
        super().__init__(workdir, blockdevs, ["ic0" if cache else "base0"], tag, netns)
