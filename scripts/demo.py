#!/usr/bin/python3
"""intellicache demo: a golden image on NFS, read cold, then warm after a restart.

Starts nfs-ganesha on 127.0.0.1 exporting a generated base image, runs
qemu-storage-daemon with the intellicache filter on QEMU's nfs driver and
exports it over NBD.  Reads the whole image with nbdcopy on an empty cache
(cold), restarts the daemon on the same cache file and reads it again
(warm), then measures 4 KiB random reads at QD16 with fio, cold and warm.
Every figure comes from the clients' timing and the driver's statistics.

Run it with scripts/demo.sh, which puts the harness (tests/pylib) and
QEMU's QMP library (build/qemu/src/python) on PYTHONPATH.

Environment: IC_DEMO_SIZE (base size, e.g. 256M, 1G; default 256M),
IC_QEMU_BUILD (QEMU build directory, default build/qemu/build).
Exit status 0 only if every check passed.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import intellicache_harness as h

WARM_FIO_SECONDS = 5


def parse_size(text):
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    suffix = text[-1:] if text[-1:] in units else ""
    number = text[:-1] if suffix else text
    if not number.isdigit():
        raise ValueError(f"bad size {text!r} (use e.g. 256M or 1G)")
    return int(number) * units[suffix]


def hit_ratio(st):
    guest = st["hit-bytes"] + st["miss-bytes"] + st["wait-bytes"]
    return st["hit-bytes"] / guest if guest else 0.0


def origins(st):
    """Where the bytes the reader got came from, as fractions: the cache
    (data that was there before the reader came to it), data read-ahead
    had loaded just ahead of the reader, and the base while the reader
    waited (its own fetches, or fetches in flight it joined)."""
    guest = st["hit-bytes"] + st["miss-bytes"] + st["wait-bytes"]
    if not guest:
        return 0.0, 0.0, 0.0
    ahead = st.get("hit-ahead-bytes", 0)
    return ((st["hit-bytes"] - ahead) / guest, ahead / guest,
            (st["miss-bytes"] + st["wait-bytes"]) / guest)


def percentile_us(hist, q):
    """The bound (in us) under which a share @q of the histogram's
    operations took: the upper bound of the bin where the cumulative
    count reaches it; None if it counted nothing."""
    if not hist:
        return None
    total = sum(hist["bins"])
    if not total:
        return None
    seen = 0
    for i, n in enumerate(hist["bins"]):
        seen += n
        if seen >= q * total:
            if i < len(hist["boundaries"]):
                return hist["boundaries"][i] / 1000
            return float("inf")
    return float("inf")


def latency_text(st, kind):
    hist = st.get(f"{kind}-latency")
    count = sum(hist["bins"]) if hist else 0
    plural = {"hit": "hits", "miss": "misses"}[kind]
    if not count:
        return f"no {plural}"
    return (f"{count} {plural}, p50 < {duration(percentile_us(hist, 0.5))}, "
            f"p99 < {duration(percentile_us(hist, 0.99))}")


def duration(us):
    if us >= 1000:
        return f"{us / 1000:g} ms"
    return f"{us:g} us"


class Demo:
    def __init__(self, workdir, size):
        self.dir = Path(workdir)
        self.size = size
        self.failures = []

    def check(self, ok, what):
        if not ok:
            self.failures.append(what)
        return ok

    def daemon(self, cache, tag):
        return h.IcDaemon(self.dir, h.nfs_base(self.ganesha, "base.img"), cache,
                          tag=tag, cache_options=h.CACHE_DIRECT)

    def stop(self, d, what):
        status, killed = d.stop()
        self.check(status == 0 and not killed,
                   f"{what}: daemon exit status {status}{' (killed)' if killed else ''}")

    def whole_read(self, d, what):
        """Read the whole export; return a row of the result table."""
        r = h.nbd_read_all(d.uri)
        st = d.stats()
        match = r.sha256 == self.base_sha and r.nbytes == self.size
        self.check(match, f"{what}: checksum differs from the base image")
        self.check(st["fetch-errors"] == 0 and st["store-errors"] == 0,
                   f"{what}: fetch/store errors {st}")
        return {"what": what, "seconds": r.seconds, "mib_s": r.mib_per_s,
                "fetched": st["fetched-bytes"], "hit_ratio": hit_ratio(st),
                "origins": origins(st), "match": match,
                "latency": f"{latency_text(st, 'hit')}; {latency_text(st, 'miss')}"}

    def run(self):
        export = self.dir / "export"
        export.mkdir()
        t = time.monotonic()
        self.base_sha = h.make_base_image(export / "base.img", self.size, seed=1)
        print(f"generated a {self.size / h.MiB:.0f} MiB base image in "
              f"{time.monotonic() - t:.1f} s; starting nfs-ganesha", flush=True)
        self.ganesha = h.Ganesha(self.dir, export)
        with self.ganesha:
            self.ganesha.start()
            rows = self.sequential()
            fio_rows = self.random_reads()
        self.report(rows, fio_rows)

    def sequential(self):
        cache = h.create_cache_file(self.dir / "cache.img")
        with self.daemon(cache, "cold") as d:
            d.start()
            cold = self.whole_read(d, "cold (empty cache)")
            self.check(cold["fetched"] >= self.size,
                       f"cold read fetched only {cold['fetched']} bytes from the base")
            self.stop(d, "cold")
        with self.daemon(cache, "warm") as d:
            d.start()
            warm = self.whole_read(d, "warm (after restart)")
            self.check(warm["fetched"] == 0,
                       f"warm read fetched {warm['fetched']} bytes from the base")
            self.stop(d, "warm")
        return [cold, warm]

    def random_reads(self):
        """4 KiB random reads at QD16: cold on a fresh cache, then warm.

        Over loopback NFS a cold run fills the cache within a second, so the
        cold run is bounded to a quarter as many reads as there are clusters
        (most of them then miss); the share of bytes that missed is shown.
        """
        if h.missing_programs(["fio"]):
            print("fio not installed: skipping random-read IOPS")
            return []
        cache = h.create_cache_file(self.dir / "cache-random.img")
        with self.daemon(cache, "fio-cold") as d:
            d.start()
            ios = max(d.stats()["cluster-count"] // 4, 256)
            cold = h.run_fio(d.uri, self.dir, number_ios=ios, tag="fio-cold")
            st = d.stats()
            missed = 1 - hit_ratio(st)
            self.stop(d, "fio cold")
        # The cache filled by the sequential reads.
        with self.daemon(self.dir / "cache.img", "fio-warm") as d:
            d.start()
            warm = h.run_fio(d.uri, self.dir, runtime=WARM_FIO_SECONDS, tag="fio-warm")
            st_warm = d.stats()
            self.check(st_warm["fetched-bytes"] == 0,
                       f"warm random reads fetched {st_warm['fetched-bytes']} bytes")
            self.stop(d, "fio warm")
        return [("cold (empty cache)", cold, f"{cold['total_ios']} reads, "
                 f"{100 * missed:.0f}% of bytes missed"),
                ("warm (full cache)", warm, f"{WARM_FIO_SECONDS} s, "
                 f"{100 * hit_ratio(st_warm):.0f}% of bytes hit")]

    def report(self, rows, fio_rows):
        print()
        print(f"intellicache demo: {self.size / h.MiB:.0f} MiB base image on NFS "
              "(nfs-ganesha, 127.0.0.1),")
        print("read whole by nbdcopy through qemu-storage-daemon + intellicache over NBD")
        print()
        print(f"  {'':22} {'seconds':>8} {'MiB/s':>8} {'fetched from base':>18}"
              f"   {'bytes read came from:':33}  checksum")
        print(f"  {'':22} {'':>8} {'':>8} {'':>18}"
              f"   {'cache':>9} {'read-ahead':>11} {'base wait':>10}")
        for r in rows:
            cache, ahead, base = r["origins"]
            print(f"  {r['what']:22} {r['seconds']:8.2f} {r['mib_s']:8.1f} "
                  f"{r['fetched'] / h.MiB:14.1f} MiB   {100 * cache:8.1f}% "
                  f"{100 * ahead:10.1f}% {100 * base:9.1f}%  "
                  f"{'match' if r['match'] else 'MISMATCH'}")
        print()
        print("  cache: data that was in the local cache before the reader came "
              "to it;")
        print("  read-ahead: data the node fetched from the base just ahead of "
              "a sequential reader;")
        print("  base wait: data the reader waited for while it was fetched "
              "from the base.")
        print()
        print("  latency of reads, as the node saw them (its hit and miss "
              "histograms):")
        for r in rows:
            print(f"  {r['what']:22} {r['latency']}")
        if fio_rows:
            print()
            print("  4 KiB random reads, queue depth 16 (fio, nbd engine)")
            for what, f, note in fio_rows:
                print(f"  {what:22} {f['iops']:8.0f} IOPS  ({note})")
        print()
        if self.failures:
            for f in self.failures:
                print(f"  FAILED: {f}")
        else:
            print("  all checks passed: data equals the base image, the warm read "
                  "came entirely from the local cache")


def main():
    h.exit_on_sigterm()
    try:
        size = parse_size(os.environ.get("IC_DEMO_SIZE", "256M"))
    except ValueError as e:
        sys.exit(f"demo: IC_DEMO_SIZE: {e}")
    if size <= 0 or size % 512:
        sys.exit("demo: IC_DEMO_SIZE must be a positive multiple of 512 bytes")
    missing = h.missing_programs(["ganesha.nfsd", "rpcbind", "nfs-ls", "nbdcopy"])
    if missing:
        sys.exit(f"demo: missing programs: {', '.join(missing)} "
                 "(run scripts/setup-deps.sh)")
    if not h.qsd_binary().exists():
        sys.exit(f"demo: {h.qsd_binary()} not found: build first (or set IC_QEMU_BUILD)")
    with tempfile.TemporaryDirectory(prefix="ic-demo-") as workdir:
        demo = Demo(workdir, size)
        demo.run()
    return 1 if demo.failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except h.HarnessError as e:
        sys.exit(f"demo: {e}")
