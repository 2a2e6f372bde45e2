#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs ic-cachesim with --json and the given arguments and checks what a
script reading it relies on: it parses, every policy is there with counts
that agree with its ratios, and every target passed."""

import json
import subprocess
import sys


def check_counts(where, c):
    assert 0 <= c["request_hits"] <= c["requests"], where
    assert 0 <= c["hit_bytes"] <= c["bytes"], where
    if c["bytes"]:
        assert abs(c["byte_hit_ratio"] - c["hit_bytes"] / c["bytes"]) < 1e-6, where
    if c["requests"]:
        ratio = c["request_hits"] / c["requests"]
        assert abs(c["request_hit_ratio"] - ratio) < 1e-6, where


def main():
    sim, args = sys.argv[1], sys.argv[2:]
    out = subprocess.run([sim, "--json"] + args, check=True,
                         capture_output=True, text=True).stdout
    doc = json.loads(out)
    assert doc["workloads"], "no workload"
    for w in doc["workloads"]:
        names = [p["name"] for p in w["policies"]]
        assert names == ["S3-FIFO", "LRU", "FIFO", "SIEVE", "MIN"], names
        for p in w["policies"]:
            check_counts(w["name"] + " " + p["name"], p["all"])
            check_counts(w["name"] + " " + p["name"], p["measured"])
        assert w["policy_bytes_per_cached_cluster"] > 0
        assert w["targets"], w["name"] + ": no target"
        for t in w["targets"]:
            print(("PASS " if t["pass"] else "FAIL ") + t["text"])
    failed = [t for w in doc["workloads"] for t in w["targets"]
              if not t["pass"]]
    assert doc["pass"] == (not failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
