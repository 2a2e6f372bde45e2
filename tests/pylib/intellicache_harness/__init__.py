"""Harness of intellicache's end-to-end tests and benchmark: real servers
on loopback.

Everything here runs real programs: nfs-ganesha (NFSv3) with rpcbind,
nbdkit, qemu-storage-daemon with the intellicache filter exporting over
NBD, and the NBD clients nbdcopy and fio.  Servers listen on unix sockets
where they can; ganesha needs 127.0.0.1:2049 (and rpcbind on port 111), so
only one ganesha runs at a time.  Every server object is a context manager
and is stopped by its own pid, also when the code using it fails.  Every
wait is bounded in time.

Modules (everything public is also available from the package itself,
``import intellicache_harness as h``):

  common    sizes, HarnessError, wait_until, socket probes, QEMU build paths,
            /proc figures
  process   Server (a child stopped by pid), exit_on_sigterm
  servers   Ganesha, Nbdkit
  qmp       QMP: a blocking connection built on QEMU's qemu.qmp library
  stats     node_stats(): the only reader of the intellicache node's counters
  nodes     --blockdev option dicts (bases, file, intellicache, qcow2)
  netns     NetPair: two network namespaces, a veth pair, a blackhole
  daemon    StorageDaemon (any nodes and exports), IcDaemon (base -> cache)
  images    seeded random images, cache files, qcow2 overlays, sha256
  nbd       nbd_read_all (nbdcopy), NbdClient (reads at any offset)
  fio       fio's nbd engine: run_fio, run_fio_argv, fio_start/fio_finish
  testcase  DaemonTestCase, NbdkitFileTestCase (unittest)

Imports: the directory holding this package (tests/pylib) and QEMU's python
directory (build/qemu/src/python, for qemu.qmp) must be on PYTHONPATH;
tests/e2e/run.sh and scripts/bench.py set it.  No module edits sys.path.
Needs Python's standard library and QEMU's qemu.qmp only.
"""

from .common import (GiB, KiB, MiB, REPO, TiB, HarnessError, PortBusy, built_ctl, ctl_binary, fd_count,
                     log_tail, missing_programs, proc_cpu_s, proc_status_kib, qemu_binary,
                     qemu_build_dir, qemu_env, qsd_binary, tcp_port_open, unix_socket_ready,
                     wait_until)
from .daemon import IcDaemon, StorageDaemon
from .fio import fio_finish, fio_start, run_fio, run_fio_argv
from .images import (allocated_bytes, create_cache_file, make_base_image, overwrite_in_place,
                     qcow2_overlay, sha256_file, write_random)
from .nbd import NbdClient, NbdError, ReadResult, nbd_read_all, nbd_uri
from .netns import NetPair
from .nodes import (CACHE_DIRECT, RECONNECT_DELAY, file_node, intellicache_node, nbd_base,
                    nfs_base, qcow2_node)
from .process import Server, die_with_parent, exit_on_sigterm, proc_state
from .qmp import QMP, QMPError
from .servers import Ganesha, Nbdkit
from .stats import node_stats
from .testcase import DaemonTestCase, NbdkitFileTestCase

__all__ = [
    "GiB", "KiB", "MiB", "REPO", "TiB", "HarnessError", "PortBusy", "built_ctl", "ctl_binary",
    "fd_count", "log_tail",
    "missing_programs", "proc_cpu_s", "proc_status_kib", "qemu_binary", "qemu_build_dir",
    "qemu_env", "qsd_binary", "tcp_port_open", "unix_socket_ready", "wait_until",
    "IcDaemon", "StorageDaemon",
    "fio_finish", "fio_start", "run_fio", "run_fio_argv",
    "allocated_bytes", "create_cache_file", "make_base_image", "overwrite_in_place", "qcow2_overlay",
    "sha256_file", "write_random",
    "NbdClient", "NbdError", "ReadResult", "nbd_read_all", "nbd_uri",
    "NetPair",
    "CACHE_DIRECT", "RECONNECT_DELAY", "file_node", "intellicache_node", "nbd_base",
    "nfs_base", "qcow2_node",
    "Server", "die_with_parent", "exit_on_sigterm", "proc_state",
    "QMP", "QMPError",
    "Ganesha", "Nbdkit",
    "node_stats",
    "DaemonTestCase", "NbdkitFileTestCase",
]
