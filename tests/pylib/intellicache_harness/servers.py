"""The base servers: nfs-ganesha (with rpcbind) and nbdkit."""

import subprocess
from pathlib import Path

from .common import PortBusy, tcp_port_open, wait_until
from .nbd import nbd_uri
from .process import Server

GANESHA_CONF = """\
NFS_CORE_PARAM {{ Protocols = 3; NFS_Port = {port}; Bind_addr = {host};
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

    With @netns (a harness.netns.NetPair) both run in its server namespace
    and listen on its server address instead (its own rpcbind, always):
    the port checks do not apply there.  kill9() stops ganesha alone (our
    rpcbind, if any, goes on) and start() again restarts it on the same
    export: a server outage.
    """

    name = "ganesha.nfsd"
    PORT = 2049

    def __init__(self, workdir, export_dir, netns=None):
        super().__init__()
        self.workdir = Path(workdir)
        self.export_dir = Path(export_dir).resolve()
        self.rpcbind = None
        self.netns = netns
        if netns is not None:
            from .netns import SERVER_ADDR
            self.host = SERVER_ADDR
            self.prefix = netns.argv_in(netns.server_ns)
        else:
            self.host = "127.0.0.1"
            self.prefix = []

    def url(self, name=""):
        """nfs:// URL of @name in the export (NFSv3 paths are real paths)."""
        return f"nfs://{self.host}{self.export_dir}/{name}"

    def path(self, name):
        """Path of @name as QEMU's nfs driver wants it."""
        return f"{self.export_dir}/{name}"

    def start(self):
        if self.netns is None and tcp_port_open(self.PORT):
            raise PortBusy(f"127.0.0.1:{self.PORT} is already in use (kernel NFS server or "
                           "another nfs-ganesha?); stop it to run the NFS tests")
        if self.rpcbind is not None and self.rpcbind.running():
            pass  # a restart: ours still runs
        elif self.netns is not None or not tcp_port_open(111):
            self.rpcbind = Server()
            self.rpcbind.name = "rpcbind"
            self.rpcbind._spawn(self.prefix + ["rpcbind", "-f", "-w"],
                                self.workdir / "rpcbind.log")
            wait_until(lambda: self._rpcbind_answers() or self.rpcbind._check_alive(),
                       10, "rpcbind on port 111")
        conf = self.workdir / "ganesha.conf"
        conf.write_text(GANESHA_CONF.format(port=self.PORT, host=self.host,
                                            export=self.export_dir))
        try:
            self._spawn(self.prefix + ["ganesha.nfsd", "-F", "-f", str(conf),
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

    def _rpcbind_answers(self):
        if self.netns is None:
            return tcp_port_open(111)
        r = subprocess.run(self.prefix + ["rpcinfo", "-p", "127.0.0.1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0

    def _export_answers(self):
        # In a network namespace, ask from the server's side (the client's
        # side may be cut off on purpose).
        r = subprocess.run(self.prefix + ["nfs-ls", self.url()], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0

    def stop(self, timeout=30):
        try:
            return super().stop(timeout)
        finally:
            if self.rpcbind is not None:
                self.rpcbind.stop(10)
                self.rpcbind = None


class Nbdkit(Server):
    """nbdkit serving @plugin on a unix socket, with optional filters.

    @plugin_args and @filter_args are dicts of key=value parameters.  With
    stats=True the stats filter is added (outermost, so it counts what
    clients asked for) and stats() returns its figures after stop().
    @threads sets nbdkit's worker threads (-t).  With @netns (a
    harness.netns.NetPair) nbdkit runs in its server namespace and listens
    on TCP at its server address, port @port, instead of the unix socket
    (.socket is then None; .host and .port say where).  stop() and start()
    again restart it on the same socket or port (a server outage).
    """

    name = "nbdkit"

    def __init__(self, workdir, plugin, plugin_args, filters=(), filter_args=None,
                 stats=False, tag="nbdkit", threads=None, netns=None, port=10809):
        super().__init__()
        self.workdir = Path(workdir)
        if netns is not None:
            from .netns import SERVER_ADDR
            self.socket, self.host, self.port = None, SERVER_ADDR, port
            listen = ["-i", self.host, "-p", str(port)]
            prefix = netns.argv_in(netns.server_ns)
        else:
            self.socket, self.host, self.port = self.workdir / f"{tag}.sock", None, None
            listen = ["-U", str(self.socket)]
            prefix = []
        self.statsfile = self.workdir / f"{tag}.stats" if stats else None
        filters = (["stats"] if stats else []) + list(filters)
        args = dict(plugin_args)
        args.update(filter_args or {})
        if stats:
            args["statsfile"] = str(self.statsfile)
        self.argv = (prefix + ["nbdkit", "-f", "--exit-with-parent"] + listen
                     + ["-P", str(self.workdir / f"{tag}.pid")]
                     + (["-t", str(threads)] if threads else [])
                     + [f"--filter={f}" for f in filters]
                     + [plugin] + [f"{k}={v}" for k, v in args.items()])
        self.tag = tag

    @property
    def uri(self):
        if self.socket is None:
            return f"nbd://{self.host}:{self.port}/"
        return nbd_uri(self.socket)

    def start(self):
        # nbdkit refuses a socket path that exists; a pid file left by an
        # earlier run would end the wait below before it listens.
        pidfile = self.workdir / f"{self.tag}.pid"
        for p in (self.socket, pidfile):
            if p is not None:
                p.unlink(missing_ok=True)
        self._spawn(self.argv, self.workdir / f"{self.tag}.log")
        # nbdkit writes its pid file once it accepts connections.
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
