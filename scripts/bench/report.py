"""Render the results of scripts/bench.py: JSON, plots (matplotlib) and
benchmarks.rst (docs/benchmarks.rst with --publish).  Everything in the
report comes from the results dictionary, so the report always matches the
JSON next to it."""

import json
from pathlib import Path

MiB = 1024 * 1024

CONFIG_LABELS = {
    "direct": "base direct",
    "ic-mi1": "intellicache mi=1",
    "ic": "intellicache",
    "qcow2-cor": "qcow2+COR",
    "raw-local": "raw local",
    "ic-localbase": "intellicache, local base",
}
COLORS = {"direct": "#7f7f7f", "ic-mi1": "#ff7f0e", "ic": "#1f77b4",
          "qcow2-cor": "#d62728", "raw-local": "#2ca02c",
          "ic-localbase": "#9467bd"}


def write(results, out):
    """Write results.json, the plots and benchmarks.rst under @out;
    return the paths written."""
    out = Path(out)
    sub = out / "benchmarks"
    sub.mkdir(parents=True, exist_ok=True)
    files = []
    js = sub / "results.json"
    js.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    files.append(js)
    plots = {}
    try:
        import matplotlib
        matplotlib.use("Agg")
        plots = make_plots(results, sub)
        files += list(plots.values())
    except ImportError:
        results.setdefault("skipped", []).append("plots: matplotlib not installed")
    rst = out / "benchmarks.rst"
    rst.write_text(render_rst(results, plots, rst.parent))
    files.append(rst)
    return files


# ---------------------------------------------------------------------------
# Plots


def _bars(ax, groups, configs, values, ylabel, title, ref_line=None):
    import numpy as np
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(configs))
    for i, c in enumerate(configs):
        ys = [values.get((g, c)) or 0 for g in groups]
        bars = ax.bar(x + (i - (len(configs) - 1) / 2) * width, ys, width,
                      label=CONFIG_LABELS[c], color=COLORS[c])
        for b, y in zip(bars, ys):
            if y:
                ax.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y),
                            ha="center", va="bottom", fontsize=6, rotation=90,
                            xytext=(0, 2), textcoords="offset points")
    if ref_line:
        ax.axhline(ref_line, color="black", linewidth=0.6, linestyle="--")
    ax.set_xticks(x)
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    top = max([v for v in values.values() if v] + [ref_line or 0, 1e-9])
    ax.set_ylim(0, top * 1.18)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def make_plots(res, sub):
    import matplotlib.pyplot as plt
    plots = {}
    cold = res.get("cold", {})
    if cold:
        bases = list(cold)
        fig, axes = plt.subplots(len(bases), 1, figsize=(10, 3.2 * len(bases)), squeeze=False)
        for ax, base in zip(axes[:, 0], bases):
            wls = list(cold[base])
            configs = [c for c in ("direct", "ic-mi1", "ic", "qcow2-cor")
                       if any(c in cold[base][w] for w in wls)]
            vals = {}
            for w in wls:
                ref = cold[base][w].get("direct", {}).get("fio", {}).get("iops")
                for c in configs:
                    r = cold[base][w].get(c)
                    if r and ref:
                        vals[(w, c)] = r["fio"]["iops"] / ref
            _bars(ax, wls, configs, vals, "throughput / base direct",
                  f"cold cache, base: {base}", ref_line=1.0)
        fig.tight_layout()
        p = sub / "cold.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        plots["cold"] = p
    warm = res.get("warm", {}).get("workloads", {})
    wls = [w for w in warm if "raw-local" in warm[w]]
    if wls:
        fig, ax = plt.subplots(figsize=(10, 3.4))
        configs = [c for c in ("ic", "ic-localbase", "qcow2-cor", "raw-local")
                   if any(c in warm[w] for w in wls)]
        vals = {}
        for w in wls:
            ref = warm[w]["raw-local"]["fio"]["iops"]
            for c in configs:
                if c in warm[w]:
                    vals[(w, c)] = warm[w][c]["fio"]["iops"] / ref
        _bars(ax, wls, configs, vals, "throughput / raw local file",
              "warm cache (hits)", ref_line=1.0)
        fig.tight_layout()
        p = sub / "warm.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        plots["warm"] = p
    storm = res.get("bootstorm", {}).get("runs", {})
    if storm:
        ns = sorted(storm, key=int)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        uniq = res["bootstorm"]["unique_cluster_bytes"] / MiB
        ucs = res["bootstorm"].get("cluster_size", 64 * 1024) // 1024
        for c in ("ic", "qcow2-cor"):
            xs = [int(n) for n in ns if c in storm[n]]
            a1.plot(xs, [storm[str(n)][c]["base_read_bytes"] / MiB for n in xs], "o-",
                    label=CONFIG_LABELS[c], color=COLORS[c])
            a2.plot(xs, [storm[str(n)][c]["makespan_s"] for n in xs], "o-",
                    label=CONFIG_LABELS[c], color=COLORS[c])
        a1.axhline(uniq, color="black", linewidth=0.6, linestyle="--",
                   label=f"unique data ({ucs} KiB clusters)")
        a1.set_xlabel("clients")
        a1.set_ylabel("MiB read from the base")
        a1.set_title("boot storm: bytes from the base", fontsize=10)
        a1.legend(fontsize=7)
        a2.set_xlabel("clients")
        a2.set_ylabel("seconds until all clients finished")
        a2.set_title("boot storm: time", fontsize=10)
        a2.legend(fontsize=7)
        for a in (a1, a2):
            a.set_xticks([int(n) for n in ns])
        fig.tight_layout()
        p = sub / "bootstorm.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        plots["bootstorm"] = p
    return plots


# ---------------------------------------------------------------------------
# reStructuredText


def table(header, rows):
    """A grid table (handles any cell width)."""
    cols = [header] + rows
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    hsep = sep.replace("-", "=")

    def line(r):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    out = [sep, line(header), hsep]
    for r in rows:
        out += [line(r), sep]
    return "\n".join(out) + "\n"


def heading(text, ch):
    return f"{text}\n{ch * len(text)}\n\n"


def fmt_bytes(n):
    if n is None:
        return "-"
    if n >= 1024 * 1024 * MiB:
        return f"{n / (1024 * 1024 * MiB):.2f} TiB"
    if n >= 1024 * MiB:
        return f"{n / (1024 * MiB):.2f} GiB"
    return f"{n / MiB:.1f} MiB"


def _iops_cell(r, fixed=False):
    f = r["fio"]
    if fixed:
        return f"{f['iops']:.0f} ({f['runtime_ms'] / 1000:.1f} s)"
    if f["mib_s"] >= 50 and f["iops"] < 2000:
        return f"{f['iops']:.0f} ({f['mib_s']:.0f} MiB/s)"
    return f"{f['iops']:.0f}"


def render_rst(res, plots, rstdir):
    m = res["machine"]
    p = res["parameters"]
    # Runs before the results recorded it opened local files with native AIO.
    aio = res.get("local_file_aio", "native")
    o = []
    o.append("=" * 10 + "\nBenchmarks\n" + "=" * 10 + "\n\n")
    o.append(f"Generated by ``{res['command']}`` on {res['started']} in "
             f"{res['elapsed_s'] / 60:.1f} minutes ({res['mode']} mode).  Every figure "
             "below is in ``benchmarks/results.json``; the whole file is rewritten by "
             "each run, do not edit it by hand.\n\n")
    o.append(heading("Reproduce", "="))
    o.append("On a machine set up with ``scripts/setup-deps.sh`` and built with "
             "``scripts/build.sh``, as root (ganesha binds port 2049)::\n\n"
             f"  {res['command']}\n\n"
             "The report and its files go to ``build/bench/`` (``benchmarks.rst``, "
             "``benchmarks/results.json``, the plots); ``--publish`` writes them to "
             "``docs/`` instead, replacing this page, and ``--output DIR`` to DIR.  "
             "``--quick`` (1-3 minutes) runs a subset with short runs; ``--smoke`` (well "
             "under a minute, tiny sizes) checks that the harness works and writes to a "
             "temporary directory.  ``--report-from JSON`` renders a report again from a "
             "results file without running anything.  The code is the package "
             "``scripts/bench/`` (one module per part) over the test harness "
             "``tests/pylib/intellicache_harness/`` (``docs/e2e.rst``).\n\n")
    o.append(heading("Machine", "="))
    others = m.get("cpu_others_share", 0)
    rows = [["CPU", m["cpu_model"]], ["cores", str(m["cpus"])],
            ["memory", f"{m['memory_gib']:.1f} GiB"], ["kernel", m["kernel"]],
            ["OS", m["os"]], ["QEMU", m["qemu"]], ["nbdkit", m["nbdkit"]],
            ["fio", m["fio"]], ["nfs-ganesha", m["ganesha"]],
            ["git commit", m["git_commit"]], ["date", m["date"]],
            ["load average (start, end)",
             f"{m['loadavg_start'][0]:.2f}, {m['loadavg_end'][0]:.2f}"],
            ["CPU busy during the run", f"{100 * m['cpu_busy_share']:.0f}% of all cores, "
             f"{100 * others:.0f}% by other processes"]]
    o.append(table(["item", "value"], rows) + "\n")
    if others > 0.05:
        o.append(f"The machine was shared: other processes used about {100 * others:.0f}% "
                 "of its CPU time during the run.  Absolute figures are noisy; the "
                 "configurations of one comparison ran back to back, so compare within a "
                 "table rather than across tables.\n\n")
    o.append(heading("Targets", "="))
    o.append("Targets are checked and reported; a missed target does not fail the "
             "command.\n\n")
    rows = []
    for t in res["targets"]:
        state = {True: "PASS", False: "**FAIL**", None: "n/a"}[t["pass"]]
        rows.append([t["name"], f"{t['measured']:.3f}", f"{t['op']} {t['target']:g}", state,
                     t["detail"] + (f" ({t['note']})" if t["note"] else "")])
    o.append(table(["target", "measured", "required", "result", "figures"], rows) + "\n")
    if res.get("baseline"):
        o.append(baseline_section(res))
    if res.get("skipped"):
        o.append("Skipped: " + "; ".join(res["skipped"]) + ".\n\n")
    if res.get("errors"):
        o.append("Runs that failed (their figures are missing below)::\n\n")
        for e in res["errors"]:
            o.append("".join(f"  {line}\n" for line in e.splitlines()) + "\n")

    o.append(heading("Setup", "="))
    o.append("Every configuration is a ``qemu-storage-daemon`` NBD export read by fio's "
             "``nbd`` engine (``--ioengine=nbd --uri=nbd+unix:///NODE?socket=S``), all on "
             "loopback.  Cache files and qcow2 overlays are local files opened with "
             f"``cache.direct=on,aio={aio}``; so is the raw local file.\n\n")
    o.append(table(["configuration", "what"],
                   [[f"``{k}``", v] for k, v in p["config_descriptions"].items()]) + "\n")
    o.append(table(["base", "what"],
                   [[f"``{k}``", v] for k, v in p["base_descriptions"].items()]) + "\n")
    o.append(f"Bases are {p['base_size']} (nbdkit ``pattern``; the NFS base is a sparse "
             f"file of {fmt_bytes(p['nfs_size'])} with random data in its first "
             f"{fmt_bytes(p['boot_region'])}), opened read-only by QEMU's ``nbd`` or ``nfs`` "
             "client.  nbdkit runs with 64 threads and the ``stats`` filter, which counts "
             "the bytes each run read from the base.  QEMU's nbd client keeps at most 16 "
             "requests in flight per connection, which bounds every configuration over an "
             "nbdkit base alike.  The rate filter's 1 Gbit/s is about 119 MiB/s.\n\n")
    o.append(table(["workload", "fio job"],
                   [[f"``{k}``", v] for k, v in p["workload_descriptions"].items()]) + "\n")
    o.append(f"fio runs {p['runtime']:g} s per run (time based), seed {p['seed']}, the "
             "same job for every configuration of a comparison, back to back.  Random and "
             "sequential jobs cover the whole base (so reads stay cold); the boot mix reads "
             f"the first {fmt_bytes(p['boot_region'])}: one job of small random reads "
             "(4-64 KiB, zipf 1.2, QD8, so hot blocks are read again) and one 256 KiB "
             "sequential reader (QD2) of the region's second half.\n\n")
    o.append("**Cold** runs start a fresh base server, daemon and empty cache (or empty "
             "overlay) for every run.  The *cold* column is the share of bytes read that "
             "came from the base during the run (missed, joined a fetch in flight, or "
             f"fetched ahead during the run); a run counts as cold at >= "
             f"{100 * p['min_cold_share']:.0f}%.  **Warm** runs use one node per "
             f"configuration, first filled by a sequential pass over the first "
             f"{fmt_bytes(p['warm_region'])} (intellicache: until every cluster is stored), "
             "then every workload over that region.\n\n")

    cold = res.get("cold", {})
    if cold:
        o.append(heading("Cold cache", "="))
        o.append("IOPS (MiB/s for large reads) per configuration; ``ic/direct`` and "
                 "``ic/COR`` are intellicache's ratios to the base read directly and to "
                 "qcow2+copy-on-read.  *cold* and *fetched/read* are intellicache's (from "
                 "its statistics); *base MiB* is what nbdkit served to intellicache.  "
                 "The table shows each configuration's first run; 4 KiB random reads at "
                 "QD16 and 1 MiB sequential reads then run "
                 f"{p.get('cold_rounds', 1) - 1} more round(s) of the base read directly "
                 "and intellicache in alternating order, and their targets take the "
                 "median of the rounds' ratios (listed with each target).\n\n")
        if "cold" in plots:
            o.append(f".. image:: {plots['cold'].relative_to(rstdir)}\n\n")
        for base, wls in cold.items():
            o.append(heading(f"Base ``{base}``", "-"))
            rows = []
            for wl, cfgs in wls.items():
                def it(c):
                    return cfgs[c]["fio"]["iops"] if c in cfgs else None
                ic = cfgs.get("ic", {})
                row = [wl] + [_iops_cell(cfgs[c], wl == "boot") if c in cfgs else "-"
                              for c in ("direct", "ic-mi1", "ic", "qcow2-cor")]
                row.append(f"{it('ic') / it('direct'):.2f}" if it("ic") and it("direct")
                           else "-")
                row.append(f"{it('ic') / it('qcow2-cor'):.2f}" if it("ic") and it("qcow2-cor")
                           else "-")
                row.append(f"{100 * ic['cold_share']:.0f}%" if "cold_share" in ic else "-")
                row.append(f"{ic['fetched_per_read']:.1f}" if "fetched_per_read" in ic
                           else "-")
                row.append(f"{ic['base_read_bytes'] / MiB:.0f}"
                           if ic.get("base_read_bytes") is not None else "-")
                rows.append(row)
            o.append(table(["workload", "direct", "ic mi=1", "ic", "qcow2+COR", "ic/direct",
                            "ic/COR", "cold", "fetched/read", "base MiB"], rows) + "\n")
            rows = []
            for wl, cfgs in wls.items():
                rows.append([wl] + [f"{cfgs[c].get('daemon_cpu_us_per_io', 0):.0f}"
                                    if c in cfgs else "-"
                                    for c in ("direct", "ic-mi1", "ic", "qcow2-cor")])
            o.append("CPU time of ``qemu-storage-daemon`` per read, microseconds:\n\n")
            o.append(table(["workload", "direct", "ic mi=1", "ic", "qcow2+COR"], rows) + "\n")

    warmres = res.get("warm", {})
    warm = warmres.get("workloads", {})
    wls = [w for w in warm if "raw-local" in warm[w]]
    if wls:
        o.append(heading("Warm cache", "="))
        o.append(f"Region {fmt_bytes(warmres['region_bytes'])}, base ``{warmres['base']}`` "
                 "(only read while filling).  *hits* is intellicache's share of bytes served "
                 "from its cache.  ``ic, local base`` is intellicache over the raw local file "
                 "as its base (a file node instead of QEMU's nbd client): its hits are read "
                 "from the cache file all the same, so any difference from ``intellicache`` "
                 "comes from the kind of base node.  Each workload ran on every "
                 f"configuration back to back, {warmres.get('rounds', 1)} round(s) in "
                 "alternating order; figures are means, and the targets take the median "
                 "of the rounds' ratios.\n\n")
        if "warm" in plots:
            o.append(f".. image:: {plots['warm'].relative_to(rstdir)}\n\n")
        rows = []
        for w in wls:
            c = warm[w]
            ic = c.get("ic", {})
            rows.append([w] + [_iops_cell(c[k]) if k in c else "-"
                               for k in ("ic", "qcow2-cor", "raw-local", "ic-localbase")]
                        + [f"{c['ic']['fio']['iops'] / c['raw-local']['fio']['iops']:.2f}"
                           if "ic" in c else "-",
                           f"{100 * ic['hit_share']:.1f}%" if "hit_share" in ic else "-",
                           " / ".join(f"{c[k].get('daemon_cpu_us_per_io', 0):.0f}"
                                      if k in c else "-"
                                      for k in ("ic", "qcow2-cor", "raw-local", "ic-localbase"))])
        o.append(table(["workload", "intellicache", "qcow2+COR", "raw local",
                        "ic, local base", "ic/raw", "hits",
                        "qsd CPU us/read (ic / COR / raw / ic local base)"], rows) + "\n")
        fills = warmres.get("fill", {})
        if fills:
            o.append("Filling the region: " + "; ".join(
                f"{CONFIG_LABELS[k]} {v['fill_s']:.1f} s"
                + (f" + {v['settle_s']:.1f} s until stored" if "settle_s" in v else "")
                for k, v in fills.items() if "fill_s" in v) + ".\n\n")

    bs = res.get("bootstorm", {})
    if bs.get("runs"):
        o.append(heading("Boot storm", "="))
        o.append(f"N clients run the boot mix at once, each a fixed amount of work (small "
                 f"random reads: {fmt_bytes(bs['small_io_bytes_per_client'])}, sequential: "
                 f"{fmt_bytes(bs['region_bytes'] // 2)}) over the same "
                 f"{fmt_bytes(bs['region_bytes'])} with the same seed.  Base "
                 f"``{bs['base']}``, nbdkit's stats filter counts what the daemon read.  "
                 "intellicache: one daemon, one intellicache node, N qcow2 overlays whose "
                 "backing is that node, N exports.  qcow2+COR: one daemon, N qcow2 overlays "
                 "over the one base node, each under copy-on-read.  Unique data: the union "
                 f"of the byte ranges one client read ({fmt_bytes(bs['unique_bytes'])}); "
                 f"in the cache's {bs.get('cluster_size', 64 * 1024) // 1024} KiB clusters, "
                 "which any cache with that unit must fetch, "
                 f"{fmt_bytes(bs['unique_cluster_bytes'])}.\n\n")
        if "bootstorm" in plots:
            o.append(f".. image:: {plots['bootstorm'].relative_to(rstdir)}\n\n")
        rows = []
        for n in sorted(bs["runs"], key=int):
            for c, r in bs["runs"][n].items():
                rows.append([n, CONFIG_LABELS[c], f"{r['makespan_s']:.2f}",
                             fmt_bytes(r["client_bytes"]), fmt_bytes(r["base_read_bytes"]),
                             f"{r['base_per_unique_clusters']:.2f}",
                             f"{r['base_per_unique']:.2f}"])
        o.append(table(["N", "configuration", "seconds", "read by clients",
                        "read from base", "base / unique (clusters)", "base / unique (exact)"],
                       rows) + "\n")

    mc = res.get("misscost")
    if mc and "ratio" in mc:
        o.append(heading("CPU per cold miss", "="))
        o.append(f"CPU time of ``qemu-storage-daemon`` (user + system, all threads) for "
                 f"{mc['reads']} cold 4 KiB random reads at QD16 over the ``{mc['base']}`` "
                 "base, divided by the reads; for intellicache counted until every fetch "
                 "is stored and recorded, so the cost of the stores behind the replies is "
                 f"included.  {mc['rounds']} round(s), the two configurations back to back in "
                 "alternating order.\n\n")
        rows = []
        for config in ("direct", "ic"):
            r = mc[config]
            runs = mc["runs"][config]
            stored = (", ".join(f"{x['stored_fetches']}/{x['fetches']}" for x in runs)
                      if config == "ic" else "-")
            rows.append([config, f"{r['cpu_us_per_read']:.1f}",
                         f"{r['min']:.1f} - {r['max']:.1f}", stored])
        o.append(table(["configuration", "us per read (mean)", "range", "fetches stored"],
                       rows) + "\n")
        o.append(f"Ratio: {mc['ratio']:.2f}.\n\n")

    w = res.get("warmup")
    if w:
        o.append(heading("Warm-up: the prefetch job and boot profiles", "="))
        o.append(f"Over the ``{w['base']}`` base of {fmt_bytes(w['size'])} "
                 "(``docs/warmup.rst``).  Rate: the job fetching the whole base "
                 "unthrottled, against fio reading the base directly with 1 MiB reads, 16 "
                 "in flight.  Speed: the job with ``speed`` set to half the unthrottled rate.  "
                 "Miss latency: 4 KiB random reads at QD1 of the last eighth of a base 4x "
                 "larger, on an empty cache, without and with the job fetching the base "
                 "unthrottled (it reaches that eighth last), while the job runs.  Profile: recorded on the boot mix (fixed work and seed) on an empty "
                 "cache, replayed on an empty cache of another daemon, then the same boot "
                 "mix.\n\n")
        lat, p = w["latency"], w["profile"]
        rows = [["base read directly (QD16)", f"{w['direct']['mib_s']:.1f} MiB/s"],
                ["prefetch job, unthrottled", f"{w['job']['mib_s']:.1f} MiB/s"],
                [f"prefetch job, speed {w['speed_set'] / MiB:.1f} MiB/s",
                 f"{w['job_speed']['mib_s']:.1f} MiB/s"],
                ["miss latency (median) alone", f"{lat['alone_us']:.0f} us"],
                ["miss latency (median) with the job", f"{lat['with_job_us']:.0f} us"]]
        ls = w.get("latency_speed")
        if ls:
            rows += [["miss latency (median) alone (second run)", f"{ls['alone_us']:.0f} us"],
                     [f"miss latency (median) with the job at {ls['speed'] / MiB:.0f} MiB/s",
                      f"{ls['with_job_us']:.0f} us"]]
        rows += [["boot after replay: bytes that hit", f"{100 * p['hit_share']:.1f}%"],
                 ["boot after replay: base bytes / unique bytes",
                  f"{fmt_bytes(p['base_bytes'])} / {fmt_bytes(p['unique_bytes'])}"]]
        o.append(table(["measure", "figure"], rows) + "\n")

    if res.get("bounded"):
        o.append(bounded_section(res["bounded"]))

    mem = res.get("memory")
    if mem:
        o.append(heading("Memory", "="))
        o.append("``qemu-storage-daemon`` over a 1 TiB nbdkit ``pattern`` base, VmRSS from "
                 "``/proc/PID/status``: with only the base node (exported), then after "
                 "``blockdev-add`` of the cache file node and the intellicache node (64 KiB "
                 f"clusters, empty cache formatted on open) in the same process, then after "
                 f"{mem['reads']} random 4 KiB reads at QD1 through its export (the same "
                 "reads went through the base's export first, so the baseline includes "
                 "what serving reads costs), then after as many at QD16.  Each figure is "
                 "taken once the stores behind the replies are done.  The overhead "
                 "includes loading the module.\n\n")
        o.append("*private* is the part of the overhead in RssAnon (the process's own "
                 "memory); the rest is mapped files, mostly the module and the C++ "
                 "runtime's code, which every daemon on the host shares.\n\n")

        def row(state, rss, over, anon):
            priv = (f"{mem[anon] - mem['anon_base_only_kib']} KiB"
                    if anon in mem and "anon_base_only_kib" in mem else "-")
            return [state, f"{mem[rss]} KiB", f"{mem[over]} KiB", priv]
        o.append(table(["state", "VmRSS", "over base only", "of which private"], [
            ["base node only", f"{mem['rss_base_only_kib']} KiB", "-", "-"],
            row("intellicache opened", "rss_with_ic_kib", "overhead_kib", "anon_with_ic_kib"),
            row(f"after {mem['reads']} reads at QD1", "rss_after_reads_kib",
                "overhead_after_reads_kib", "anon_after_reads_kib"),
            row(f"after {mem['reads']} more reads at QD16", "rss_after_burst_kib",
                "overhead_after_burst_kib", "anon_after_burst_kib")]) + "\n")
        sm = mem.get("small_base")
        if sm:
            o.append(f"The same over a 1 GiB base: {sm['overhead_kib']} KiB after open, "
                     f"{sm['overhead_after_reads_kib']} KiB after the reads.  Peak RSS (VmHWM) "
                     f"of the 1 TiB daemon: {mem['hwm_kib']} KiB.  The presence bitmap is "
                     "2048 KiB per TiB at 64 KiB clusters.\n\n")
        dc = mem.get("default_cluster")
        if dc:
            o.append(f"With the default cluster size for a 1 TiB base "
                     f"({dc['cluster_size'] // 1024} KiB, chosen so that the bitmap stays "
                     f"within 8 MiB), the overhead is {dc['overhead_kib']} KiB after open "
                     f"and {dc['overhead_after_reads_kib']} KiB after the reads.\n\n")

    cpu = res.get("cpu")
    if cpu:
        o.append(heading("CPU per warm read", "="))
        o.append(f"Instructions counted by valgrind's callgrind (repeatable, unlike times) "
                 f"for ``qemu-io -r --image-opts`` running {cpu['reads']} 4 KiB reads at "
                 f"random offsets within a {fmt_bytes(cpu['region_bytes'])} image, minus "
                 "the same command with no reads, divided by the number of reads.  "
                 "intellicache's cache was filled beforehand "
                 f"({cpu['cached_clusters']} of {cpu['cluster_count']} clusters cached); "
                 "the reference is a ``file`` node on a copy of the image, the node type "
                 f"intellicache reads its hits from (both O_DIRECT, aio={aio}).\n\n")
        o.append(table(["node", "instructions, no reads", f"instructions, {cpu['reads']} reads",
                        "per read"], [
            ["intellicache", str(cpu["ic"]["instructions_0"]), str(cpu["ic"]["instructions_n"]),
             f"{cpu['ic']['per_read']:.0f}"],
            ["file", str(cpu["file"]["instructions_0"]), str(cpu["file"]["instructions_n"]),
             f"{cpu['file']['per_read']:.0f}"]]
            + ([["intellicache, cache-size", str(cpu["ic-bounded"]["instructions_0"]),
                 str(cpu["ic-bounded"]["instructions_n"]),
                 f"{cpu['ic-bounded']['per_read']:.0f}"]] if "ic-bounded" in cpu else []))
            + "\n")
        o.append(f"Ratio: {cpu['ratio']:.2f}"
                 + (f"; bounded: {cpu['bounded_ratio']:.2f}" if "bounded_ratio" in cpu else "")
                 + ".\n\n")
        if "histogram_overhead" in cpu:
            o.append(f"Of the intellicache node's instructions per read, "
                     f"{cpu['histogram_per_read']:.0f} are the latency histograms' "
                     f"(``ic_latency_record()`` and the clock reads of the read path): "
                     f"{100 * cpu['histogram_overhead']:.2f}% more than the read without "
                     f"them.\n\n")

    obs = observations(res)
    if obs:
        o.append(heading("Observations", "="))
        o.append("Derived from the figures above by the benchmark itself.\n\n")
        for x in obs:
            o.append(f"- {x}\n")
        o.append("\n")
    return "".join(o)


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def bounded_section(b):
    """The bounded cache (scripts/bench/bounded.py): scan resistance, Zipf
    hit ratios, speed with eviction in place, the policy's memory."""
    sim_policies = ("S3-FIFO", "LRU", "FIFO", "SIEVE", "MIN")
    o = [heading("Bounded cache", "=")]
    o.append("intellicache nodes with ``cache-size`` (``docs/design.rst``, Bounded cache and "
             "Eviction), the cache file node opened with ``discard=unmap``.  Hit shares are "
             "from the node's counters over each pass: ``hit-bytes`` over the bytes read "
             "(hit, missed, or joined a fetch in flight).  The simulator "
             "(``build/tools/ic-cachesim``, ``docs/cachesim.rst``) replays reads through "
             "the core's own eviction policy (S3-FIFO) and through LRU, FIFO, SIEVE and "
             "MIN; S3-FIFO goes through the policy's admission when full, LRU, FIFO and "
             "SIEVE cache every miss, MIN may refuse one; no scan-threshold, no lack of "
             "room, no concurrency.\n\n")
    sc = b.get("scan")
    if sc:
        o.append(heading("Scan resistance", "-"))
        o.append(f"Base: nbdkit ``pattern`` of {fmt_bytes(sc['base_size'])}, no delay; "
                 f"cache-size {fmt_bytes(sc['cache_size'])}, "
                 f"{sc['cluster_size'] // 1024} KiB clusters.  A boot set of "
                 f"{fmt_bytes(sc['boot_size'])} (at offset {fmt_bytes(sc['boot_offset'])}) is "
                 "read twice in 64 KiB reads in random order (each block once per pass, "
                 "another order each pass, QD8: a boot reads files scattered over the "
                 "disk), then the whole base sequentially in 1 MiB reads at QD4 (a backup, "
                 "a virus scan), then the boot set again.  Each pass starts once the "
                 "stores of the one before are done.  ``default``: the default "
                 "scan-threshold (cache-size / 8); ``default-qd1``: the same with the "
                 "sequential read at QD1, its reads reaching the node in order; "
                 "``threshold-0``: scan-threshold=0, scans stored like any read, so only the "
                 "eviction policy keeps the boot set.  *scan MiB* is what the node passed "
                 "through unstored as part of a scan.\n\n")
        rows = []
        for run, r in sc["runs"].items():
            for tag in ("boot1", "boot2", "scan", "boot3"):
                p = r["passes"][tag]
                dl = p["delta"]
                rows.append([run, tag + (f" (QD{r['scan_qd']})" if tag == "scan" else ""),
                             _pct(p["hit_share"]), f"{p['fio']['mib_s']:.0f}",
                             f"{dl['stored-bytes'] / MiB:.0f}",
                             f"{dl['evicted-bytes'] / MiB:.0f}",
                             f"{dl['scan-bytes'] / MiB:.0f}",
                             f"{dl['no-room-bytes'] / MiB:.0f}",
                             fmt_bytes(p.get("used_bytes"))])
        o.append(table(["run", "pass", "hits", "MiB/s", "stored MiB", "evicted MiB",
                        "scan MiB (not stored)", "no room MiB", "used after"], rows) + "\n")
        if "sim_trace" in sc:
            o.append("The simulator, share of the last pass's bytes that hit: on the reads "
                     "of the ``default`` run (fio's I/O logs of its four passes, the last "
                     "pass's hits being those of all four passes less those of the first "
                     "three; not given for MIN, whose choices depend on the reads to come), "
                     "and on its own scan workload of the same sizes (its boot set in 64 KiB "
                     "extents scattered over the first quarter of the base).\n\n")
            o.append(table(["policy", "same reads", "simulator's scan workload"],
                           [[p, _pct(sc["sim_trace"].get(p)),
                             _pct(sc["sim_workload"]["last_pass"].get(p))]
                            for p in sim_policies]) + "\n")
    z = b.get("zipf")
    if z:
        o.append(heading("Zipf", "-"))
        o.append(f"4 KiB random reads at QD16, fio's ``random_distribution=zipf:{z['alpha']:g}"
                 f":0.5`` (the centre fixed, so that both phases have the same hot blocks), "
                 f"over a {fmt_bytes(z['base_size'])} nbdkit ``pattern`` base (no delay), "
                 f"cache-size {fmt_bytes(z['cache_size'])}, {z['cluster_size'] // 1024} KiB "
                 f"clusters: {z['reads']['warmup']} reads from an empty cache (three times "
                 f"the clusters it holds, which fills it), then {z['reads']['measured']} "
                 "measured reads with another seed.  Figures are the share of the bytes read "
                 "that hit, over the measured reads and over all reads.  The simulator ran on "
                 "the same reads (fio's I/O logs, in the order fio issued them) and on its "
                 "own Zipf reads with the same parameters and counts; its figures for the "
                 "measured reads are its hits over all reads less those over the first "
                 "phase, which is exact for the online policies and not for MIN (whose "
                 "choices depend on the reads to come).  The generators differ: fio draws "
                 "ranks with its own approximation and scatters them over the blocks by a "
                 "hash; the simulator computes the distribution exactly and scatters ranks "
                 "by a seeded permutation.\n\n")
        rows = [["daemon (intellicache)", "measured", _pct(z["measured"]["hit_share"]),
                 "-", "-", "-", "-"],
                ["daemon (intellicache)", "all", _pct(z["all"]["hit_share"]),
                 "-", "-", "-", "-"]]
        for key, label in (("sim_trace", "simulator, fio's reads"),
                           ("sim_zipf", "simulator, its own Zipf")):
            for which, name in (("last", "measured"), ("all", "all")):
                if key in z:
                    rows.append([label, name] + [_pct(z[key][which].get(p))
                                                 for p in sim_policies])
        o.append(table(["source", "reads", "S3-FIFO", "LRU", "FIFO", "SIEVE", "MIN"], rows)
                 + "\n")
        m = z["measured"]
        dl = m["delta"]
        o.append(f"The daemon, measured reads: {z['fio']['measured']['iops']:.0f} IOPS; with "
                 f"reads that joined a fetch in flight, {_pct(m['hit_or_wait_share'])} "
                 f"of the bytes; {fmt_bytes(dl['evicted-bytes'])} evicted, "
                 f"{fmt_bytes(dl['no-room-bytes'])} not stored for lack of room.\n\n")
    w, c = b.get("warm"), b.get("cold")
    if w or c:
        o.append(heading("Speed with eviction in place", "-"))
        rows = []
        if w:
            o.append(f"Warm: a bounded node (cache-size {fmt_bytes(w['cache_size'])}) over "
                     f"the ``{w['base']}`` base, its first {fmt_bytes(w['region_bytes'])} "
                     "read once in random 64 KiB reads (a sequential fill would be a scan), "
                     "then 4 KiB random reads at QD16 of that region; the same on an "
                     "unbounded node and on the raw local file.  ")
            for cfg in ("bounded", "ic", "raw-local"):
                r = w[cfg]
                hits = [x["hit_share"] for x in r["runs"] if "hit_share" in x]
                rows.append(["warm", cfg, f"{r['iops']:.0f}",
                             f"{w['ratio_raw']:.3f} (raw local)" if cfg == "bounded" else
                             f"{r['iops'] / w['raw-local']['iops']:.3f} (raw local, means)",
                             _pct(sum(hits) / len(hits)) if hits else "-", "-", "-"])
        if c:
            o.append(f"Cold: a bounded node (cache-size {fmt_bytes(c['cache_size'])}) over "
                     f"the ``{c['base']}`` base of {fmt_bytes(c['base_size'])}, filled, then "
                     "read until what filled it was evicted, then 4 KiB random reads at "
                     "QD16 over the whole base: every miss needs room.  The same on an "
                     "unbounded node and on the base read directly.  *evicted* and *no room* "
                     "are shares of the bytes fetched.  ")
            for cfg in ("direct", "bounded", "ic"):
                r = c[cfg]
                rows.append(["cold", cfg, f"{r['iops']:.0f}",
                             f"{c['ratio_direct']:.3f} (direct)" if cfg == "bounded" else
                             f"{r['iops'] / c['direct']['iops']:.3f} (direct, means)",
                             _pct(sum(x["hit_share"] for x in r["runs"]) / len(r["runs"]))
                             if cfg != "direct" else "-",
                             _pct(c["evicted_per_fetched"]) if cfg == "bounded" else "-",
                             _pct(c["no_room_per_fetched"]) if cfg == "bounded" else "-"])
        rounds = (w or c)["rounds"]
        o.append(f"{rounds} round(s) in alternating order; IOPS are means, and the ratio "
                 "is the median over the rounds of the ratio of two runs back to back "
                 "(bounded next to the reference in both orders), which a burst of other "
                 "work on a shared machine skews less.\n\n")
        o.append(table(["", "configuration", "IOPS", "ratio", "hits", "evicted", "no room"],
                       rows) + "\n")
    m = b.get("memory")
    if m and "heap_per_cluster" in m:
        o.append(heading("Memory of a bounded cache", "-"))
        o.append(f"Two daemons over a {fmt_bytes(m['base_size'])} nbdkit ``pattern`` base, "
                 f"{m['cluster_size'] // 1024} KiB clusters: the growth of VmRSS, RssAnon and "
                 "VmData (``/proc/PID/status``) from the base node alone (read through) to "
                 "the intellicache node opened on an empty cache, without cache-size and "
                 f"with cache-size {fmt_bytes(m['cache_size'])} "
                 f"({m['capacity_clusters']} clusters).  The cache file node sits under a "
                 "``raw`` node: on a ``file`` node, cache-size beyond the file system's free "
                 "space is refused, and nothing but the cache's metadata is written here.  "
                 "The policy's states are written when it is created and so are resident "
                 "at once; its rings of cluster indices are allocated then but become "
                 "resident only as clusters enter them, so what is allocated is what a "
                 "full cache holds.  *allocated* sums the private anonymous writable "
                 "mappings (``/proc/PID/maps``: the brk heap and malloc's mmap'd blocks) "
                 "less stacks, which VmData counts too: a thread's or a coroutine's stack, "
                 "created as concurrency needs it, is 8 MiB or 1 MiB at a time.  Expected: "
                 "4 bits per base cluster, and rings for small and main (the capacity each) "
                 "and the ghosts (90% of it), 4 bytes per entry: the eviction policy "
                 "alone; the difference measured is everything cache-size adds.\n\n")
        rows = []
        for key, label in (("rss", "VmRSS"), ("anon", "RssAnon"), ("data", "VmData"),
                           ("heap", "allocated")):
            rows.append([label, f"{m['unbounded'][key + '_kib']} KiB",
                         f"{m['bounded'][key + '_kib']} KiB", f"{m[key + '_diff_kib']} KiB",
                         f"{m[key + '_per_cluster']:.1f}"])
        rows.append(["expected (policy)", "-", "-", f"{m['expected_bytes'] // 1024} KiB",
                     f"{m['expected_per_cluster']:.1f}"])
        o.append(table(["growth on open", "no cache-size", "cache-size", "difference",
                        "bytes per cached cluster"], rows) + "\n")
    return "".join(o)


def baseline_section(res):
    """Each target measured now against the same target in an earlier run
    (by name); targets only one of the runs has are listed as such."""
    b = res["baseline"]
    o = [heading("Before and after", "-")]
    o.append(f"The same targets in the run of commit {b['git_commit']} "
             f"({b['started']}, ``{b['command']}``), and now.  Ratios are measured "
             "side by side within each run, so they compare across runs better than "
             "absolute figures do.  Targets that moved between two runs are measured "
             "again with both builds interleaved in ``docs/benchmark-history.rst``."
             "\n\n")
    before = {t["name"]: t for t in b["targets"]}
    rows = []
    for t in res["targets"]:
        old = before.pop(t["name"], None)
        rows.append([t["name"],
                     f"{old['measured']:.3f}" if old else "(not measured)",
                     f"{t['measured']:.3f}", f"{t['op']} {t['target']:g}"])
    for name, old in before.items():
        rows.append([name, f"{old['measured']:.3f}", "(not measured)",
                     f"{old['op']} {old['target']:g}"])
    o.append(table(["target", "before", "after", "required"], rows) + "\n")
    return "".join(o)


def observations(res):
    """Where intellicache wins and loses, with the numbers."""
    out = []
    cold = res.get("cold", {})
    for base, wls in cold.items():
        r = wls.get("rand4k-qd16", {})
        if "ic" in r and "direct" in r:
            ic, d = r["ic"], r["direct"]
            ratio = ic["fio"]["iops"] / d["fio"]["iops"]
            cs = ic.get("stats", {}).get("cluster-size", 64 * 1024) // 1024
            s = (f"``{base}``, cold 4 KiB random QD16: intellicache {ratio:.2f}x the base "
                 f"read directly, fetching {ic.get('fetched_per_read', 0):.1f} bytes per byte "
                 f"read (one {cs} KiB cluster for each 4 KiB read)")
            if "daemon_cpu_us_per_io" in ic and "daemon_cpu_us_per_io" in d:
                s += (f"; the daemon spends {ic['daemon_cpu_us_per_io']:.0f} us of CPU per "
                      f"read against {d['daemon_cpu_us_per_io']:.0f} us uncached")
            if "qcow2-cor" in r:
                s += (f"; qcow2+copy-on-read reaches "
                      f"{r['qcow2-cor']['fio']['iops'] / d['fio']['iops']:.2f}x")
            out.append(s + ".")
    rate = cold.get("nbd-rate", {}).get("rand4k-qd16", {})
    if "ic" in rate and "direct" in rate:
        cs = rate["ic"].get("stats", {}).get("cluster-size", 64 * 1024)
        if cs > 4096:
            out.append(f"On the bandwidth-bound base the {cs // 1024} KiB fetch per 4 KiB miss "
                       f"is the limit: only {4096 / cs:.2f} of what the base delivers is data "
                       f"the reader asked for ({rate['ic']['fio']['iops']:.0f} against "
                       f"{rate['direct']['fio']['iops']:.0f} IOPS).")
        else:
            out.append("On the bandwidth-bound base each 4 KiB miss fetches only what was "
                       "asked for; what is left is CPU (the base read, the cache write and "
                       f"its metadata): {rate['ic']['fio']['iops']:.0f} against "
                       f"{rate['direct']['fio']['iops']:.0f} IOPS, with fio, nbdkit and the "
                       "daemon sharing this machine's cores.")
    warm = res.get("warm", {}).get("workloads", {})
    for wl in ("rand4k-qd16", "rand4k-qd1", "seq1m-qd4"):
        c = warm.get(wl)
        if c and "ic" in c and "raw-local" in c:
            ic, raw = c["ic"], c["raw-local"]
            s = (f"Warm {wl}: intellicache {ic['fio']['iops'] / raw['fio']['iops']:.2f}x "
                 f"the raw local file, daemon CPU {ic.get('daemon_cpu_us_per_io', 0):.0f}"
                 f" us per read against {raw.get('daemon_cpu_us_per_io', 0):.0f} us")
            lb = c.get("ic-localbase")
            if lb:
                s += (f"; over a local file base instead of the nbd base, intellicache "
                      f"reaches {lb['fio']['iops'] / raw['fio']['iops']:.2f}x "
                      f"({lb.get('daemon_cpu_us_per_io', 0):.0f} us per read)")
            out.append(s + ".")
    bs = res.get("bootstorm", {}).get("runs", {})
    if bs:
        nmax = max(bs, key=int)
        n1 = min(bs, key=int)
        if "qcow2-cor" in bs[nmax] and "ic" in bs[nmax]:
            out.append(f"Boot storm N={nmax}: qcow2+copy-on-read read "
                       f"{bs[nmax]['qcow2-cor']['base_read_bytes'] / MiB:.0f} MiB from the base "
                       f"({bs[nmax]['qcow2-cor']['base_read_bytes'] / max(1, bs[n1]['qcow2-cor']['base_read_bytes']):.1f}x "
                       f"its N={n1} figure), intellicache "
                       f"{bs[nmax]['ic']['base_read_bytes'] / MiB:.0f} MiB "
                       f"({bs[nmax]['ic']['base_read_bytes'] / max(1, bs[n1]['ic']['base_read_bytes']):.2f}x); "
                       f"all clients finished in {bs[nmax]['ic']['makespan_s']:.1f} s against "
                       f"{bs[nmax]['qcow2-cor']['makespan_s']:.1f} s.")
    mem = res.get("memory")
    if mem and "small_base" in mem:
        sm = mem["small_base"]
        out.append(f"Memory: opening the node costs {mem['overhead_kib'] / 1024:.1f} MiB over a "
                   f"1 TiB base and {sm['overhead_kib'] / 1024:.1f} MiB over a 1 GiB base (the "
                   "difference is the 2 MiB presence bitmap).  After "
                   f"{mem['reads']} random reads the overhead is "
                   f"{mem['overhead_after_reads_kib'] / 1024:.1f} MiB (1 TiB) and "
                   f"{sm['overhead_after_reads_kib'] / 1024:.1f} MiB (1 GiB).  After a burst "
                   f"of misses at QD16 it is {mem['overhead_after_burst_kib'] / 1024:.1f} MiB "
                   f"(1 TiB) and {sm['overhead_after_burst_kib'] / 1024:.1f} MiB (1 GiB)"
                   + ((": memory of concurrent fetches and stores (fetch buffers of max-fetch, "
                       "1 MiB, per slot, stores queued behind the replies) stays resident "
                       "after they finish, whatever the base size.")
                      if mem["overhead_after_burst_kib"] - mem["overhead_after_reads_kib"]
                      > 2048 else "."))
    sc = (res.get("bounded") or {}).get("scan")
    if sc:
        parts = []
        for run, r in sc["runs"].items():
            p = r["passes"]["scan"]
            missed = p["delta"]["miss-bytes"] + p["delta"]["wait-bytes"]
            if run.startswith("default") and missed:
                parts.append(f"{100 * p['delta']['scan-bytes'] / missed:.0f}% at "
                             f"QD{r['scan_qd']}")
        if parts:
            out.append("Bounded cache: of the sequential read's bytes not found in the cache, "
                       "the node passed through unstored as a scan " + ", ".join(parts) + ".")
    zb = (res.get("bounded") or {}).get("zipf")
    if zb and "sim_trace" in zb:
        st = zb["sim_trace"]["last"]
        out.append(f"Bounded cache, Zipf({zb['alpha']:g}) 4 KiB reads, once the cache is full: "
                   f"the daemon hit {100 * zb['measured']['hit_share']:.1f}% of the bytes; the "
                   f"simulator on the same reads {100 * st['S3-FIFO']:.1f}% with S3-FIFO and "
                   f"{100 * st['LRU']:.1f}% with LRU; "
                   f"{zb['measured']['delta']['no-room-bytes'] / MiB:.0f} MiB were not stored "
                   "for lack of room.")
    for t in res.get("targets", []):
        if t["pass"] is False:
            out.append(f"Missed: {t['name']} ({t['measured']:.3f}, required "
                       f"{t['op']} {t['target']:g})"
                       + (f": {t['note']}." if t.get("note") else "."))
    return out
