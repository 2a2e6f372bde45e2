"""Memory: the daemon's RSS over a 1 TiB base (the target) and over a
1 GiB base (which separates the per-node part of the overhead from the
part that grows with the base)."""

import contextlib
import time

import intellicache_harness as h
from intellicache_harness import GiB, TiB

from .common import CLUSTER, BaseServer, log, random_reads_argv, wait_stores_done


def run(bench):
    res = memory_one(bench, "1T", TiB)
    res["small_base"] = memory_one(bench, "1G", GiB)
    # Informational: the default cluster size for 1 TiB (16 KiB).
    res["default_cluster"] = memory_one(bench, "1T", TiB, cluster_size=None)
    bench.results["memory"] = res


def memory_one(bench, size, size_bytes, cluster_size=CLUSTER):
    """RSS of a daemon over a base of @size: with only the base node
    (after reads through it, so the generic machinery is warmed up),
    after adding the intellicache node (same process, via QMP), and
    after the same reads through it."""
    log(f"memory ({size} base, cluster size {cluster_size or 'default'})")
    d = bench.rundir(f"memory-{size}-{cluster_size or 'default'}")
    nreads = bench.p["mem_reads"]
    res = {"base_size_bytes": size_bytes, "reads": nreads}

    def reads(node, tag, qd=1):
        return h.run_fio_argv(random_reads_argv(qsd.uri_for(node), "mem", nreads, qd),
                              d, tag, 300)

    def rss(field="VmRSS:"):
        return h.proc_status_kib(qsd.pid, field)

    with contextlib.ExitStack() as stack:
        base = BaseServer(bench, "plain", size=size_bytes)
        bnode = base.start(d, stack)
        qsd = h.StorageDaemon(d, [bnode], ["base0"])
        stack.callback(qsd.stop)
        qsd.start()
        time.sleep(1)
        res["rss_start_kib"] = rss()
        reads("base0", "fio-base")
        time.sleep(0.5)
        res["rss_base_only_kib"] = rss()
        res["anon_base_only_kib"] = rss("RssAnon:")
        cache = h.create_cache_file(d / "cache.img")
        qsd.qmp.cmd("blockdev-add", **h.file_node("cache0", cache))
        ic = h.intellicache_node("ic0", "base0", "cache0")
        if cluster_size:
            ic["cluster-size"] = cluster_size
        qsd.qmp.cmd("blockdev-add", **ic)
        time.sleep(1)
        res["rss_with_ic_kib"] = rss()
        res["anon_with_ic_kib"] = rss("RssAnon:")
        qsd.qmp.cmd("block-export-add", type="nbd", id="eic", **{"node-name": "ic0"})
        reads("ic0", "fio-ic")
        # Stores run behind the replies, and the metadata sync that records
        # them is what gives the freed fetch buffers back (ic_buf_trim(),
        # docs/design.rst, Memory): measure the node idle, once that sync
        # ran, not somewhere within the second before it.
        wait_stores_done(qsd, "ic0", durable=True, timeout=60)
        res["rss_after_reads_kib"] = rss()
        res["anon_after_reads_kib"] = rss("RssAnon:")
        # Then a burst of concurrent misses (QD16, the default
        # max-inflight): informational, what stays resident after it.
        reads("ic0", "fio-burst", qd=16)
        wait_stores_done(qsd, "ic0", durable=True, timeout=60)
        res["rss_after_burst_kib"] = rss()
        res["anon_after_burst_kib"] = rss("RssAnon:")
        res["overhead_after_burst_kib"] = res["rss_after_burst_kib"] - res["rss_base_only_kib"]
        res["hwm_kib"] = rss("VmHWM:")
        res["stats"] = qsd.stats("ic0")
        res["cluster_size"] = res["stats"]["cluster-size"]
        qsd.stop_checked("memory")
        base.stop()
    res["overhead_kib"] = res["rss_with_ic_kib"] - res["rss_base_only_kib"]
    res["overhead_after_reads_kib"] = res["rss_after_reads_kib"] - res["rss_base_only_kib"]
    res["overhead_mib_per_tib"] = res["overhead_kib"] / 1024 * TiB / size_bytes
    res["overhead_after_reads_mib_per_tib"] = (res["overhead_after_reads_kib"] / 1024
                                               * TiB / size_bytes)
    log(f"      RSS base only {res['rss_base_only_kib']} KiB (at start "
        f"{res['rss_start_kib']}), with intellicache {res['rss_with_ic_kib']} KiB, "
        f"after {nreads} reads {res['rss_after_reads_kib']} KiB")
    return res
