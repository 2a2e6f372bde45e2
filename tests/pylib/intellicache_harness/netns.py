"""A private network between two network namespaces, with a blackhole.

Outage tests need a network path that can silently drop packets: a stopped
server refuses connections at once, a cut cable does not.  NetPair creates
two network namespaces of its own, a client side and a server side, joined
by a veth pair with the addresses CLIENT_ADDR and SERVER_ADDR (a /30 that
exists only inside those namespaces; nothing is added to the host's own
namespace).  Programs are started in either namespace by prefixing their
argv with argv_in() (``ip netns exec NS``, which replaces itself with the
program, so the pid is the program's).  Unix sockets are files: a daemon in
the client namespace is still reached through its QMP and NBD sockets.

blackhole() adds an nftables table in the server namespace that drops every
packet from and to the client; restore() deletes it.  Nothing is refused or
reset: TCP retransmits until the table is gone.

NetPair.skip_reason() says why the machine cannot do this (not root, no
``ip`` or ``nft``, namespaces or veth not permitted), for unittest skips.
"""

import os
import subprocess

from .common import HarnessError, missing_programs

CLIENT_ADDR = "10.200.0.1"
SERVER_ADDR = "10.200.0.2"
PREFIX = 30
TABLE = "ic_blackhole"


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=30, check=check)


RTO_MAX_SYSCTL = "/proc/sys/net/ipv4/tcp_rto_max_ms"


class NetPair:
    """Two network namespaces joined by a veth pair; a context manager
    (leaving the block deletes both namespaces).

    With @rto_max_ms, TCP in both namespaces waits at most that long between
    retransmissions (net.ipv4.tcp_rto_max_ms, Linux 6.15 and later; ignored
    before): .rto_max_ms says whether it was set."""

    def __init__(self, tag="ic", rto_max_ms=None):
        suffix = f"{os.getpid()}"
        self.client_ns = f"{tag}-c{suffix}"
        self.server_ns = f"{tag}-s{suffix}"
        # Interface names have at most 15 characters.
        self.client_if = f"icc{suffix}"[:15]
        self.server_if = f"ics{suffix}"[:15]
        self.created = []
        self.blackholed = False
        self.rto_max_ms = rto_max_ms if os.path.exists(RTO_MAX_SYSCTL) else None

    @staticmethod
    def skip_reason():
        """None if namespaces, veth and nftables work here, else why not."""
        if os.geteuid() != 0:
            return "network namespaces need root"
        missing = missing_programs(["ip", "nft"])
        if missing:
            return f"missing programs: {', '.join(missing)}"
        probe = NetPair(tag="icprobe")
        try:
            probe.start()
            probe.run_in(probe.server_ns, ["nft", "list", "ruleset"])
        except HarnessError as e:
            return f"cannot create network namespaces with a veth pair here: {e}"
        finally:
            probe.stop()
        return None

    def start(self):
        try:
            for ns in (self.client_ns, self.server_ns):
                self._run(["ip", "netns", "add", ns])
                self.created.append(ns)
                self.run_in(ns, ["ip", "link", "set", "lo", "up"])
                if self.rto_max_ms:
                    self.run_in(ns, ["sysctl", "-qw",
                                     f"net.ipv4.tcp_rto_max_ms={self.rto_max_ms}"])
            self._run(["ip", "-n", self.client_ns, "link", "add", self.client_if,
                       "type", "veth", "peer", "name", self.server_if,
                       "netns", self.server_ns])
            for ns, dev, addr in ((self.client_ns, self.client_if, CLIENT_ADDR),
                                  (self.server_ns, self.server_if, SERVER_ADDR)):
                self.run_in(ns, ["ip", "addr", "add", f"{addr}/{PREFIX}", "dev", dev])
                self.run_in(ns, ["ip", "link", "set", dev, "up"])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Delete the namespaces (and with them the veth pair and rules).
        Stop the programs running in them first."""
        while self.created:
            ns = self.created.pop()
            _ip("netns", "del", ns, check=False)

    def argv_in(self, ns):
        """The argv prefix that runs a program in the namespace @ns."""
        return ["ip", "netns", "exec", ns]

    def run_in(self, ns, argv, input=None):
        return self._run(self.argv_in(ns) + list(argv), input)

    @staticmethod
    def _run(argv, input=None):
        r = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        if r.returncode != 0:
            raise HarnessError(f"{' '.join(argv)}: status {r.returncode}: "
                               f"{r.stderr.strip()}")
        return r.stdout

    def blackhole(self):
        """Drop every packet between the client and the server, silently."""
        rules = (f"table inet {TABLE} {{\n"
                 f"  chain input {{ type filter hook input priority 0; policy accept;\n"
                 f"    ip saddr {CLIENT_ADDR} drop; }}\n"
                 f"  chain output {{ type filter hook output priority 0; policy accept;\n"
                 f"    ip daddr {CLIENT_ADDR} drop; }}\n"
                 f"}}\n")
        self.run_in(self.server_ns, ["nft", "-f", "-"], input=rules)
        self.blackholed = True

    def restore(self):
        """Let packets through again."""
        if self.blackholed:
            self.run_in(self.server_ns, ["nft", "delete", "table", "inet", TABLE])
            self.blackholed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
