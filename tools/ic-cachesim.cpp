/*
 * ic-cachesim: replays block read traces through intellicache's eviction
 * policy (the core's EvictionPolicy, S3-FIFO) and, for comparison, LRU,
 * FIFO, SIEVE and Belady's MIN, and reports their hit ratios.
 *
 * Every policy sees the same sequence of cluster reads and admits every
 * miss (evicting first when full), as the core does.  A request that spans
 * several clusters counts per cluster for the byte hit ratio, and as a hit
 * for the request hit ratio only if all its clusters were cached.  See
 * docs/cachesim.rst.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "cachesim_replay.hpp"
#include "cachesim_workload.hpp"

#include "intellicache-core.h"

#include "ic_eviction.hpp"
#include "ic_message.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace cachesim;

/* The driver's cluster sizes. */
constexpr std::uint64_t kMinClusterSize = IC_MIN_CLUSTER_SIZE;
// NOLINTNEXTLINE(bugprone-implicit-widening-of-multiplication-result)
constexpr std::uint64_t kMaxClusterSize = IC_MAX_CLUSTER_SIZE;

struct Target {
    std::string name;
    bool pass;
    std::string text;
};

struct WorkloadResult {
    const Workload *workload;
    std::uint64_t cluster_size;
    std::uint64_t cache_size;
    std::uint64_t capacity;
    std::size_t reads;
    std::size_t distinct;
    std::vector<PolicyResult> policies;
    std::uint64_t policy_memory;
    double policy_bytes_per_cluster;
    bool repeat_touch; /* S3-FIFO touches a hit continuing in a cluster */
    std::vector<Target> targets;
};

const PolicyResult &find(const WorkloadResult &w, const char *name) {
    const auto it =
        std::find_if(w.policies.begin(), w.policies.end(),
                     [&](const PolicyResult &p) { return p.name == name; });
    if (it == w.policies.end()) {
        std::fprintf(stderr, "ic-cachesim: no policy %s\n", name);
        std::abort();
    }
    return *it;
}

std::string percent(double ratio) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%.2f%%", ratio * 100);
    return buf;
}

/* A difference of ratios, in percentage points. */
std::string points(double ratio) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%.2f", ratio * 100);
    return buf;
}

/* The targets of the built-in workloads. */
void evaluate(WorkloadResult &w) {
    const PolicyResult &s3 = find(w, "S3-FIFO");
    const PolicyResult &lru = find(w, "LRU");
    const PolicyResult &min = find(w, "MIN");
    if (w.workload->name == "zipf") {
        const double s = s3.all.byte_ratio();
        const double l = lru.all.byte_ratio();
        const double m = min.all.byte_ratio();
        w.targets.push_back({"zipf: S3-FIFO >= LRU", s >= l,
                             "S3-FIFO hit ratio " + percent(s) +
                                 (s >= l ? " >= " : " < ") + "LRU's " +
                                 percent(l) + "; MIN " + percent(m) + ", " +
                                 points(m - s) + " points above S3-FIFO"});
    } else if (w.workload->name == "scan") {
        const double s = s3.measured.byte_ratio();
        w.targets.push_back({"scan: S3-FIFO last pass >= 90%", s >= 0.9,
                             "S3-FIFO hit ratio of the last pass " +
                                 percent(s) + " of bytes" +
                                 (s >= 0.9 ? " >= " : " < ") + "90% (LRU " +
                                 percent(lru.measured.byte_ratio()) + ", MIN " +
                                 percent(min.measured.byte_ratio()) + ")"});
    }
}

std::optional<WorkloadResult> simulate(const Workload &w,
                                       std::uint64_t cluster_size,
                                       std::uint64_t cache_size,
                                       bool repeat_touch, std::string &error) {
    const Replay r = flatten(w, cluster_size);
    if (r.cluster_count > IC_MAX_CLUSTER_COUNT) {
        error = "a base of " + std::to_string(r.cluster_count) +
                " clusters: more than the cache supports, choose a larger "
                "--cluster-size";
        return std::nullopt;
    }
    const std::uint64_t capacity = cache_size / cluster_size;
    if (capacity == 0) {
        error = "the cache holds no cluster: --cache-size below "
                "--cluster-size";
        return std::nullopt;
    }
    char why[200];
    intellicache::MessageBuffer msg(why, sizeof(why));
    auto policy =
        intellicache::EvictionPolicy::create(r.cluster_count, capacity, msg);
    if (!policy) {
        error = why;
        return std::nullopt;
    }
    WorkloadResult res{&w,
                       cluster_size,
                       cache_size,
                       capacity,
                       r.cluster.size(),
                       r.distinct,
                       {},
                       policy->memory_bytes(),
                       0.0,
                       repeat_touch,
                       {}};
    res.policy_bytes_per_cluster =
        static_cast<double>(res.policy_memory) /
        static_cast<double>(std::min(capacity, r.cluster_count));

    /* One at a time, each freed before the next is built. */
    const std::size_t from = w.measured_from;
    res.policies.push_back(replay(
        "S3-FIFO", *make_s3fifo(r, std::move(policy), repeat_touch), r, from));
    res.policies.push_back(replay("LRU", *make_lru(r, capacity), r, from));
    res.policies.push_back(replay("FIFO", *make_fifo(r, capacity), r, from));
    res.policies.push_back(replay("SIEVE", *make_sieve(r, capacity), r, from));
    res.policies.push_back(replay("MIN", *make_min(r, capacity), r, from));
    evaluate(res);
    return res;
}

void print_table(const WorkloadResult &w) {
    const Workload &wl = *w.workload;
    std::printf("%s: %s\n", wl.name.c_str(), wl.description.c_str());
    std::printf("  cache %s: %" PRIu64 " clusters of %s; %zu cluster reads "
                "of %zu distinct clusters\n",
                describe_size(w.cache_size).c_str(), w.capacity,
                describe_size(w.cluster_size).c_str(), w.reads, w.distinct);
    const bool measured = wl.measured_from < wl.requests.size();
    std::printf("\n  %-8s  %12s  %12s", "policy", "requests hit", "bytes hit");
    if (measured) {
        std::printf("  %24s", (wl.measured_name + ": bytes hit").c_str());
    }
    std::printf("\n");
    for (const PolicyResult &p : w.policies) {
        std::printf("  %-8s  %12s  %12s", p.name.c_str(),
                    percent(p.all.request_ratio()).c_str(),
                    percent(p.all.byte_ratio()).c_str());
        if (measured) {
            std::printf("  %24s", percent(p.measured.byte_ratio()).c_str());
        }
        std::printf("\n");
    }
    std::printf("\n  S3-FIFO is the core's EvictionPolicy; MIN is the offline "
                "optimum.\n");
    if (!w.repeat_touch) {
        std::printf("  S3-FIFO: hits continuing in the cluster of the read "
                    "before were not touch()ed.\n");
    }
    std::printf("  EvictionPolicy memory: %" PRIu64 " bytes, %.1f per cached "
                "cluster (presence bitmap not included)\n",
                w.policy_memory, w.policy_bytes_per_cluster);
    for (const Target &t : w.targets) {
        std::printf("  %s %s: %s\n", t.pass ? "PASS" : "FAIL", t.name.c_str(),
                    t.text.c_str());
    }
}

std::string json_string(const std::string &s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

void print_json(const std::vector<WorkloadResult> &results, bool pass) {
    auto counts = [](const Counts &c) {
        char buf[200];
        std::snprintf(buf, sizeof(buf),
                      "{\"requests\": %" PRIu64 ", \"request_hits\": %" PRIu64
                      ", \"bytes\": %" PRIu64 ", \"hit_bytes\": %" PRIu64
                      ", \"request_hit_ratio\": %.6f, "
                      "\"byte_hit_ratio\": %.6f}",
                      c.requests, c.request_hits, c.bytes, c.hit_bytes,
                      c.request_ratio(), c.byte_ratio());
        return std::string(buf);
    };
    std::printf("{\"workloads\": [");
    for (std::size_t i = 0; i < results.size(); i++) {
        const WorkloadResult &w = results[i];
        const Workload &wl = *w.workload;
        std::printf("%s\n  {\"name\": %s, \"description\": %s,\n",
                    i != 0 ? "," : "", json_string(wl.name).c_str(),
                    json_string(wl.description).c_str());
        std::printf("   \"base_size\": %" PRIu64 ", \"cache_size\": %" PRIu64
                    ", \"cluster_size\": %" PRIu64
                    ", \"capacity_clusters\": %" PRIu64
                    ", \"requests\": %zu, \"cluster_reads\": %zu, "
                    "\"distinct_clusters\": %zu,\n",
                    wl.base_size, w.cache_size, w.cluster_size, w.capacity,
                    wl.requests.size(), w.reads, w.distinct);
        std::printf("   \"policy_memory_bytes\": %" PRIu64
                    ", \"policy_bytes_per_cached_cluster\": %.3f, "
                    "\"repeat_touch\": %s,\n",
                    w.policy_memory, w.policy_bytes_per_cluster,
                    w.repeat_touch ? "true" : "false");
        std::printf("   \"measured\": %s,\n",
                    wl.measured_from < wl.requests.size()
                        ? json_string(wl.measured_name).c_str()
                        : "null");
        std::printf("   \"policies\": [");
        for (std::size_t p = 0; p < w.policies.size(); p++) {
            const PolicyResult &r = w.policies[p];
            std::printf("%s\n    {\"name\": %s, \"all\": %s,\n     "
                        "\"measured\": %s}",
                        p != 0 ? "," : "", json_string(r.name).c_str(),
                        counts(r.all).c_str(), counts(r.measured).c_str());
        }
        std::printf("],\n   \"targets\": [");
        for (std::size_t t = 0; t < w.targets.size(); t++) {
            const Target &tg = w.targets[t];
            std::printf("%s\n    {\"name\": %s, \"pass\": %s, \"text\": %s}",
                        t != 0 ? "," : "", json_string(tg.name).c_str(),
                        tg.pass ? "true" : "false",
                        json_string(tg.text).c_str());
        }
        std::printf("]}");
    }
    std::printf("],\n \"pass\": %s}\n", pass ? "true" : "false");
}

/* ---- Command line ---- */

const char kUsage[] =
    "usage: ic-cachesim [workloads] [options]\n"
    "\n"
    "Replays read traces through intellicache's eviction policy (S3-FIFO, the\n"
    "core's own code) and LRU, FIFO, SIEVE and Belady's MIN, and prints their\n"
    "hit ratios.  Without a workload, runs --zipf 0.9 and --scan-workload.\n"
    "\n"
    "workloads (any number):\n"
    "  --zipf ALPHA        random 4 KiB reads, Zipf(ALPHA) over the clusters\n"
    "  --scan-workload     boot set read twice, the base read sequentially,\n"
    "                      the boot set again (its hit ratio reported apart)\n"
    "  --trace FILE        a fio iolog (--write_iolog, version 2 or 3) or\n"
    "                      \"offset length\" lines; reads only\n"
    "options:\n"
    "  --format F          of --trace: auto (default), fio or plain\n"
    "  --base-size SIZE    built-in workloads' base (default 4G); for a\n"
    "                      trace, the default is the end of its last read\n"
    "  --cache-size SIZE   default 512M\n"
    "  --cluster-size SIZE default 4K (a power of two, 4K to 2M)\n"
    "  --requests N        reads of --zipf (default 2000000)\n"
    "  --boot-size SIZE    boot set of --scan-workload (default 256M, at most\n"
    "                      a quarter of the base)\n"
    "  --scan-read SIZE    reads of the scan of --scan-workload (default 1M)\n"
    "  --scan-hot SIZE     a working set of SIZE read during the scan, 4 "
    "random\n"
    "                      4 KiB reads of it after each scan read (default 0)\n"
    "  --seed N            of the built-in workloads (default 1)\n"
    "  --no-repeat-touch   S3-FIFO: no touch() for a hit in the cluster that\n"
    "                      the read before it was in (a read continuing "
    "inside\n"
    "                      a cluster); the core touches every hit\n"
    "  --json              print JSON instead of the table\n"
    "  --check             exit 1 if a target of a built-in workload fails\n"
    "SIZE: bytes, or with K, M, G, T (powers of 1024).\n";

struct Options {
    std::vector<double> zipf;
    bool scan = false;
    std::vector<std::string> traces;
    std::string format = "auto";
    std::optional<std::uint64_t> base_size;
    std::uint64_t cache_size = 512 * kMiB;
    std::uint64_t cluster_size = 4 * kKiB;
    std::uint64_t requests = 2000000;
    std::uint64_t boot_size = 256 * kMiB;
    std::uint64_t scan_hot = 0;
    std::uint64_t scan_read = 1 * kMiB;
    std::uint64_t seed = 1;
    bool repeat_touch = true;
    bool json = false;
    bool check = false;
};

[[noreturn]] void usage_error(const std::string &message) {
    std::fprintf(stderr, "ic-cachesim: %s\n\n%s", message.c_str(), kUsage);
    std::exit(2);
}

Options parse_options(int argc, char **argv) {
    Options o;
    auto value = [&](int &i) -> std::string {
        if (i + 1 >= argc) {
            usage_error(std::string(argv[i]) + " needs a value");
        }
        return argv[++i];
    };
    auto size = [&](int &i) {
        const std::string name = argv[i];
        const std::string v = value(i);
        const auto s = parse_size(v);
        if (!s || *s == 0) {
            usage_error(name + ": not a size: " + v);
        }
        return *s;
    };
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else if (a == "--zipf") {
            const std::string v = value(i);
            char *end = nullptr;
            const double alpha = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !(alpha > 0) ||
                alpha > 10) {
                usage_error("--zipf: not an exponent in (0, 10]: " + v);
            }
            o.zipf.push_back(alpha);
        } else if (a == "--scan-workload") {
            o.scan = true;
        } else if (a == "--trace") {
            o.traces.push_back(value(i));
        } else if (a == "--format") {
            o.format = value(i);
            if (o.format != "auto" && o.format != "fio" &&
                o.format != "plain") {
                usage_error("--format: auto, fio or plain");
            }
        } else if (a == "--base-size") {
            o.base_size = size(i);
        } else if (a == "--cache-size") {
            o.cache_size = size(i);
        } else if (a == "--cluster-size") {
            o.cluster_size = size(i);
        } else if (a == "--scan-read") {
            o.scan_read = size(i);
        } else if (a == "--scan-hot") {
            o.scan_hot = size(i);
        } else if (a == "--boot-size") {
            o.boot_size = size(i);
        } else if (a == "--requests") {
            o.requests = size(i);
        } else if (a == "--seed") {
            const std::string v = value(i);
            const auto s = parse_size(v);
            if (!s) {
                usage_error("--seed: not a number: " + v);
            }
            o.seed = *s;
        } else if (a == "--no-repeat-touch") {
            o.repeat_touch = false;
        } else if (a == "--json") {
            o.json = true;
        } else if (a == "--check") {
            o.check = true;
        } else {
            usage_error("unknown argument " + a);
        }
    }
    if ((o.cluster_size & (o.cluster_size - 1)) != 0 ||
        o.cluster_size < kMinClusterSize || o.cluster_size > kMaxClusterSize) {
        usage_error("--cluster-size: a power of two from 4K to 2M");
    }
    if (o.zipf.empty() && !o.scan && o.traces.empty()) {
        o.zipf.push_back(0.9);
        o.scan = true;
    }
    return o;
}

} // namespace

int main(int argc, char **argv) {
    const Options o = parse_options(argc, argv);
    const std::uint64_t base = o.base_size.value_or(4 * kGiB);

    std::vector<Workload> workloads;
    for (const double alpha : o.zipf) {
        if (base / o.cluster_size > (std::uint64_t{1} << 28)) {
            usage_error("--zipf: at most 2^28 clusters in the base");
        }
        workloads.push_back(
            zipf_workload(alpha, base, o.cluster_size, o.requests, o.seed));
    }
    if (o.scan) {
        if (o.boot_size > base / 4 || o.boot_size % kBootExtent != 0) {
            usage_error("--scan-workload: the boot set must be a multiple of "
                        "64K within a quarter of the base");
        }
        if (o.scan_hot > base) {
            usage_error("--scan-hot: larger than the base");
        }
        workloads.push_back(scan_workload(
            {base, o.boot_size, o.scan_read, o.scan_hot, o.seed}));
    }
    for (const std::string &path : o.traces) {
        Workload w;
        std::string error;
        if (!load_trace(path, o.format, w, error)) {
            std::fprintf(stderr, "ic-cachesim: %s\n", error.c_str());
            return 2;
        }
        if (o.base_size) {
            if (w.base_size > *o.base_size) {
                std::fprintf(stderr,
                             "ic-cachesim: %s reads beyond "
                             "--base-size\n",
                             path.c_str());
                return 2;
            }
            w.base_size = *o.base_size;
        }
        workloads.push_back(std::move(w));
    }

    std::vector<WorkloadResult> results;
    bool pass = true;
    for (const Workload &w : workloads) {
        std::string error;
        auto res =
            simulate(w, o.cluster_size, o.cache_size, o.repeat_touch, error);
        if (!res) {
            std::fprintf(stderr, "ic-cachesim: %s: %s\n", w.name.c_str(),
                         error.c_str());
            return 2;
        }
        for (const Target &t : res->targets) {
            pass = pass && t.pass;
        }
        results.push_back(std::move(*res));
    }
    if (o.json) {
        print_json(results, pass);
    } else {
        for (std::size_t i = 0; i < results.size(); i++) {
            if (i != 0) {
                std::printf("\n");
            }
            print_table(results[i]);
        }
    }
    return o.check && !pass ? 1 : 0;
}
