"""fio with its nbd engine: start, wait with a time limit, read the figures."""

import json
import subprocess
from pathlib import Path

from .common import HarnessError, MiB
from .process import die_with_parent


def fio_start(argv, out):
    """Start fio with the job arguments @argv, JSON output to @out; returns
    the Popen (its own session, SIGTERM if we die).  See fio_finish()."""
    return subprocess.Popen(["fio", "--output-format=json", f"--output={out}"] + list(argv),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=die_with_parent)


def fio_finish(proc, out, timeout):
    """Wait for the fio @proc (killed after @timeout s or when interrupted)
    and return the read figures of its first job (group_reporting sums
    the jobs): iops, mib_s, io_bytes, total_ios, runtime_ms, lat_mean_us,
    lat_p99_us, clat_mean_us."""
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise HarnessError(f"fio timed out after {timeout} s")
    except BaseException:
        # Interrupted (SIGINT/SIGTERM): stop our fio by its pid.
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        raise
    text = Path(out).read_text() if Path(out).exists() else ""
    if proc.returncode != 0 or "{" not in text:
        raise HarnessError(f"fio failed with status {proc.returncode}: "
                           f"{stdout.decode(errors='replace')}{text}")
    # The nbd engine prints a "connected" line before the JSON document.
    job = json.loads(text[text.index("{"):])["jobs"][0]
    if job["error"]:
        raise HarnessError(f"fio job error {job['error']}")
    r = job["read"]
    pct = r["clat_ns"].get("percentile", {})
    return {"iops": r["iops"], "mib_s": r["bw_bytes"] / MiB, "io_bytes": r["io_bytes"],
            "total_ios": r["total_ios"], "runtime_ms": r["runtime"],
            "lat_mean_us": r["lat_ns"]["mean"] / 1000,
            "lat_p99_us": pct.get("99.000000", 0) / 1000,
            "clat_mean_us": r["clat_ns"]["mean"] / 1000}


def run_fio_argv(argv, workdir, tag, timeout):
    """fio with the job arguments @argv; output in @workdir/@tag.json."""
    out = Path(workdir) / f"{tag}.json"
    return fio_finish(fio_start(argv, out), out, timeout)


def run_fio(uri, workdir, rw="randread", bs="4k", iodepth=16, runtime=None,
            number_ios=None, seed=1, tag="fio", timeout=300):
    """One fio job with the nbd engine against @uri; returns its figures.

    Either @runtime (seconds, time based) or @number_ios bounds the job.
    """
    argv = [f"--name={tag}", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}",
            f"--bs={bs}", f"--iodepth={iodepth}", f"--randseed={seed}"]
    if runtime is not None:
        argv += [f"--runtime={runtime}", "--time_based"]
    if number_ios is not None:
        argv += [f"--number_ios={number_ios}"]
    return run_fio_argv(argv, workdir, tag, timeout)
