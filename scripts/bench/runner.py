"""Runs the chosen parts in one work directory and records what the
results need besides the parts' figures: the machine, its load, the
parameters and the command."""

import os
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import intellicache_harness as h

from . import bootstorm, bounded, cold, cpu, memory, misscost, warm, warmup
from .common import (BASES, COLD_CONFIGS, CONFIGS, IC_OPTIONS, MIN_COLD_SHARE, SEED,
                     WARM_CONFIGS, WORKLOADS, log)
from .targets import evaluate_targets

# The parts, in the order they run.
PARTS = {
    "cold": cold.run,
    "warm": warm.run,
    "bootstorm": bootstorm.run,
    "misscost": misscost.run,
    "warmup": warmup.run,
    "bounded": bounded.run,
    "memory": memory.run,
    "cpu": cpu.run,
}


def run(bench, parts, command):
    """Run @parts (names in PARTS) with the context @bench; @command is the
    command line recorded in the results.  Returns the results dict."""
    results = bench.results
    t0 = time.monotonic()
    usage0 = own_cpu_s()
    stat0 = cpu_jiffies()
    results["machine"] = machine()
    results["machine"]["loadavg_start"] = os.getloadavg()
    results["started"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    results["mode"] = bench.mode
    results["command"] = command
    results["parameters"] = params_json(bench.p)
    results["ic_options"] = dict(IC_OPTIONS)
    results["local_file_aio"] = h.CACHE_DIRECT["aio"]
    with tempfile.TemporaryDirectory(prefix="ic-bench-", dir=bench.args.work_dir) as w:
        bench.work = Path(w)
        for part in parts:
            try:
                PARTS[part](bench)
            except Exception as e:  # noqa: BLE001 -- keep the other parts
                # A part that breaks must not lose what the others
                # measured: record it, report it, fail --smoke.
                log(f"bench: part {part} failed: {e!r}")
                results["errors"].append(f"part {part}: {e!r}")
                results["failed_runs"].append(f"part {part}")
    elapsed = time.monotonic() - t0
    results["elapsed_s"] = elapsed
    results["machine"]["loadavg_end"] = os.getloadavg()
    stat1 = cpu_jiffies()
    busy = (stat1[0] - stat0[0]) / os.sysconf("SC_CLK_TCK")
    ours = own_cpu_s() - usage0
    ncpu = os.cpu_count()
    results["machine"]["cpu_busy_share"] = busy / (elapsed * ncpu)
    results["machine"]["cpu_others_share"] = max(0.0, busy - ours) / (elapsed * ncpu)
    results["targets"] = evaluate_targets(results)
    return results


def own_cpu_s():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def cpu_jiffies():
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f[:8]) - idle, idle


def params_json(p):
    q = dict(p)
    q["cold_configs"] = COLD_CONFIGS
    q["warm_configs"] = WARM_CONFIGS
    q["seed"] = SEED
    q["min_cold_share"] = MIN_COLD_SHARE
    q["base_descriptions"] = {b: BASES[b] for b in p["bases"]}
    q["workload_descriptions"] = WORKLOADS
    q["config_descriptions"] = CONFIGS
    return q


def run_text(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              env=h.qemu_env()).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine():
    cpu_model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    qemu = run_text([str(h.qsd_binary()), "--version"]).splitlines()
    commit = run_text(["git", "-C", str(h.REPO), "rev-parse", "--short", "HEAD"])
    return {"cpu_model": cpu_model, "cpus": os.cpu_count(),
            "memory_gib": mem_kib / (1024 * 1024),
            "kernel": platform.release(), "os": run_text(["sh", "-c",
                                                          ". /etc/os-release; echo $PRETTY_NAME"]),
            "qemu": qemu[0] if qemu else "?", "nbdkit": run_text(["nbdkit", "--version"]),
            "fio": run_text(["fio", "--version"]),
            "ganesha": run_text(["sh", "-c", "dpkg-query -W -f '${Version}' nfs-ganesha"]),
            "git_commit": commit, "date": time.strftime("%Y-%m-%d")}
