/*
 * intellicache-ctl: the subcommands.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "commands.hpp"

#include "apply.hpp"
#include "base_reader.hpp"
#include "cache_file.hpp"
#include "metrics_export.hpp"
#include "prometheus.hpp"
#include "status_view.hpp"
#include "trace.hpp"
#include "vm_disk.hpp"
#include "warmup.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <thread>

namespace icctl {

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds timeout_of(const Invocation &inv) {
    return std::chrono::milliseconds(inv.timeout_ms);
}

void sleep_s(double seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

/* Two samples @interval apart, joined by node name. */
std::vector<NodeView> sample_views(StatsSource &src, const Invocation &inv,
                                   std::optional<double> interval) {
    const auto node = inv.value("node");
    std::vector<NodeStats> first = src.sample(node);
    std::vector<NodeView> views;
    if (!interval) {
        std::transform(first.begin(), first.end(), std::back_inserter(views),
                       [](NodeStats &n) {
                           return NodeView{std::move(n), std::nullopt};
                       });
        return views;
    }
    const auto t0 = Clock::now();
    sleep_s(*interval);
    std::vector<NodeStats> second = src.sample(node);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    for (NodeStats &n : second) {
        auto old =
            std::find_if(first.begin(), first.end(),
                         [&](const NodeStats &o) { return o.node == n.node; });
        std::optional<NodeRates> r;
        if (old != first.end()) {
            r = NodeRates::between(*old, n, dt);
        }
        views.push_back({std::move(n), std::move(r)});
    }
    return views;
}

int cmd_status(const Invocation &inv, std::ostream &out) {
    StatsSource src(inv.qmp_socket, timeout_of(inv));
    const auto views = sample_views(src, inv, inv.interval());
    out << (inv.flag("json") ? StatusRenderer::json(views)
                             : StatusRenderer::table(views));
    return kExitOk;
}

int cmd_metrics(const Invocation &inv, std::ostream &out) {
    const auto node = inv.value("node");
    const std::string socket = inv.qmp_socket;
    const auto timeout = timeout_of(inv);
    auto render = [socket, timeout, node]() {
        StatsSource src(socket, timeout);
        return PrometheusRenderer::render(src.sample(node));
    };
    if (auto listen = inv.value("listen")) {
        const ListenAddress where = ListenAddress::parse(*listen);
        /* Fail at once on a wrong socket or node, not at the first
         * scrape. */
        render();
        MetricsServer(render).serve(where);
        return kExitOk;
    }
    const std::string text = render();
    if (auto dir = inv.value("textfile-dir")) {
        out << "wrote " << TextfileWriter::write(*dir, text) << "\n";
        return kExitOk;
    }
    out << text;
    return kExitOk;
}

int cmd_top(const Invocation &inv, std::ostream &out) {
    StatsSource src(inv.qmp_socket, timeout_of(inv));
    const double interval = inv.interval().value_or(1.0);
    const auto count = inv.count();
    const auto node = inv.value("node");
    const bool tty = &out == &std::cout && isatty(STDOUT_FILENO) != 0;
    std::vector<NodeStats> prev = src.sample(node);
    auto t_prev = Clock::now();
    for (std::uint64_t frame = 0; !count || frame < *count; frame++) {
        sleep_s(interval);
        std::vector<NodeStats> now = src.sample(node);
        const auto t_now = Clock::now();
        const double dt = std::chrono::duration<double>(t_now - t_prev).count();
        std::vector<NodeView> views;
        for (const NodeStats &n : now) {
            auto old =
                std::find_if(prev.begin(), prev.end(), [&](const NodeStats &o) {
                    return o.node == n.node;
                });
            std::optional<NodeRates> r;
            if (old != prev.end()) {
                r = NodeRates::between(*old, n, dt);
            }
            views.push_back({n, std::move(r)});
        }
        if (tty) {
            out << "\x1b[H\x1b[2J";
        } else if (frame != 0) {
            out << "\n";
        }
        out << TopRenderer::frame(views, dt) << std::flush;
        prev = std::move(now);
        t_prev = t_now;
    }
    return kExitOk;
}

std::string health_word(const MetaHealth &h) {
    if (h.damaged != 0) {
        return "damaged";
    }
    return h.stale != 0 ? "stale blocks" : "ok";
}

int cmd_inspect(const Invocation &inv, std::ostream &out) {
    const CacheFile file(inv.args.at(0));
    std::uint64_t recorded = 0;
    const MetaHealth health = file.scan(recorded);
    const auto &g = file.geometry();
    const double fill =
        static_cast<double>(recorded) / static_cast<double>(g.cluster_count());
    if (inv.flag("json")) {
        JsonPtr o(json_object_new_object());
        auto add = [&](const char *k, json_object *v) {
            json_object_object_add(o.get(), k, v);
        };
        add("file", json_object_new_string(file.path().c_str()));
        add("format-version", json_object_new_uint64(file.header().version));
        add("base-size", json_object_new_uint64(g.base_size()));
        add("base-fingerprint",
            json_object_new_string(file.fingerprint_hex().c_str()));
        add("instance", json_object_new_uint64(file.header().instance));
        add("cluster-size", json_object_new_uint64(g.cluster_size()));
        add("cluster-count", json_object_new_uint64(g.cluster_count()));
        add("meta-offset", json_object_new_uint64(g.raw().meta_offset));
        add("data-offset", json_object_new_uint64(g.raw().data_offset));
        add("recorded-clusters", json_object_new_uint64(recorded));
        add("fill", json_double(fill));
        add("file-size", json_object_new_uint64(file.file_size()));
        add("allocated-bytes", json_object_new_uint64(file.allocated_bytes()));
        json_object *meta = json_object_new_object();
        json_object_object_add(meta, "blocks",
                               json_object_new_uint64(g.meta_blocks()));
        json_object_object_add(meta, "ok", json_object_new_uint64(health.ok));
        json_object_object_add(meta, "empty",
                               json_object_new_uint64(health.empty));
        json_object_object_add(meta, "stale",
                               json_object_new_uint64(health.stale));
        json_object_object_add(meta, "damaged",
                               json_object_new_uint64(health.damaged));
        json_object *bad = json_object_new_array();
        for (std::uint64_t b : health.bad_blocks) {
            json_object_array_add(bad, json_object_new_uint64(b));
        }
        json_object_object_add(meta, "bad-blocks", bad);
        json_object_object_add(
            meta, "healthy", json_object_new_boolean(health.healthy() ? 1 : 0));
        add("metadata", meta);
        out << json_dump(o.get(), true) << "\n";
        return kExitOk;
    }
    char instance[32];
    std::snprintf(instance, sizeof(instance), "%016llx",
                  static_cast<unsigned long long>(file.header().instance));
    char fill_pct[32];
    std::snprintf(fill_pct, sizeof(fill_pct), "%.1f%%", fill * 100);
    Table t({"file:", file.path()});
    t.add_row({"format version:", std::to_string(file.header().version)});
    t.add_row({"base size:",
               std::to_string(g.base_size()) + " (" +
                   human_bytes(static_cast<double>(g.base_size())) + ")"});
    t.add_row({"base fingerprint:", file.fingerprint_hex()});
    t.add_row({"instance:", instance});
    t.add_row({"cluster size:", std::to_string(g.cluster_size()) + " (" +
                                    human_bytes(g.cluster_size()) + ")"});
    t.add_row({"cluster count:", std::to_string(g.cluster_count())});
    t.add_row({"recorded clusters:",
               std::to_string(recorded) + " (" + fill_pct + ")"});
    t.add_row({"file size:",
               std::to_string(file.file_size()) + " (" +
                   human_bytes(static_cast<double>(file.allocated_bytes())) +
                   " allocated)"});
    t.add_row(
        {"metadata blocks:", std::to_string(g.meta_blocks()) + ": " +
                                 std::to_string(health.ok) + " ok, " +
                                 std::to_string(health.empty) + " empty, " +
                                 std::to_string(health.stale) + " stale, " +
                                 std::to_string(health.damaged) + " damaged"});
    std::string h = health_word(health);
    if (!health.bad_blocks.empty()) {
        h += " (blocks";
        for (std::uint64_t b : health.bad_blocks) {
            h += " " + std::to_string(b);
        }
        h += health.bad_blocks.size() < health.stale + health.damaged ? " ...)"
                                                                      : ")";
    }
    t.add_row({"metadata health:", h});
    out << t.render();
    return kExitOk;
}

/* Compares the recorded clusters of a cache file with its base. */
class Verifier {
public:
    static constexpr std::size_t kChunkBytes = std::size_t{1024} * 1024;
    static constexpr std::uint64_t kListed = 20;

    Verifier(const CacheFile &file, BaseReader &base, std::ostream &out)
        : file_(file), base_(base), out_(out) {}

    /* Returns the number of mismatching clusters. */
    std::uint64_t run() {
        const auto &g = file_.geometry();
        const std::uint64_t per_chunk =
            std::max<std::uint64_t>(1, kChunkBytes / g.cluster_size());
        cache_buf_.resize(per_chunk * g.cluster_size());
        base_buf_.resize(per_chunk * g.cluster_size());
        std::uint64_t recorded = 0;
        file_.scan(recorded, [&](std::uint64_t first, std::uint64_t count) {
            while (count != 0) {
                const std::uint64_t n = std::min(count, per_chunk);
                compare(first, n);
                first += n;
                count -= n;
            }
        });
        if (mismatched_ > kListed) {
            out_ << "... and " << (mismatched_ - kListed)
                 << " more mismatching clusters\n";
        }
        out_ << "verified " << checked_ << " clusters ("
             << human_bytes(static_cast<double>(bytes_))
             << "): " << checked_ - mismatched_ << " match, " << mismatched_
             << " mismatch\n";
        return mismatched_;
    }

private:
    void compare(std::uint64_t first, std::uint64_t count) {
        const auto &g = file_.geometry();
        const std::uint64_t start = g.cluster_start(first);
        const std::uint64_t len = g.clusters_end(first + count) - start;
        file_.read_clusters(first, count, cache_buf_.data());
        base_.read(base_buf_.data(), len, start);
        for (std::uint64_t i = 0; i < count; i++) {
            const std::uint64_t off = i * g.cluster_size();
            const std::uint64_t n =
                std::min<std::uint64_t>(g.cluster_size(), len - off);
            checked_++;
            bytes_ += n;
            if (std::memcmp(cache_buf_.data() + off, base_buf_.data() + off,
                            n) != 0) {
                mismatched_++;
                if (mismatched_ <= kListed) {
                    out_ << "mismatch: cluster " << first + i
                         << " (base offset " << start + off << ")\n";
                }
            }
        }
    }

    const CacheFile &file_;
    BaseReader &base_;
    std::ostream &out_;
    std::vector<std::uint8_t> cache_buf_;
    std::vector<std::uint8_t> base_buf_;
    std::uint64_t checked_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t mismatched_ = 0;
};

int cmd_verify(const Invocation &inv, std::ostream &out) {
    const std::string url = *inv.value("base");
    BaseReader::scheme_of(url); /* a bad URL before opening the file */
    const CacheFile file(inv.args.at(0));
    auto base = BaseReader::open(url, inv.timeout_ms);
    const std::uint64_t size = base->size();
    if (size != file.geometry().base_size()) {
        throw BaseError("the base at " + url + " has " + std::to_string(size) +
                        " bytes, the cache file's base " +
                        std::to_string(file.geometry().base_size()) +
                        ": not this cache's base");
    }
    Verifier v(file, *base, out);
    return v.run() == 0 ? kExitOk : kExitMismatch;
}

} // namespace

std::vector<NodeStats>
StatsSource::sample(const std::optional<std::string> &node) {
    JsonPtr args(json_object_new_object());
    json_object_object_add(args.get(), "query-nodes",
                           json_object_new_boolean(1));
    JsonPtr reply = qmp_.execute("query-blockstats", args.get());
    std::vector<NodeStats> all = parse_blockstats(reply.get());
    if (!all.empty()) {
        JsonPtr flat(json_object_new_object());
        json_object_object_add(flat.get(), "flat", json_object_new_boolean(1));
        JsonPtr named = qmp_.execute("query-named-block-nodes", flat.get());
        add_base_sizes(all, named.get());
    }
    if (!node) {
        return all;
    }
    const auto it =
        std::find_if(all.begin(), all.end(),
                     [&](const NodeStats &n) { return n.node == *node; });
    if (it != all.end()) {
        return {std::move(*it)};
    }
    /* Is it a node of another driver? */
    const std::size_t len = json_object_array_length(reply.get());
    for (std::size_t i = 0; i < len; i++) {
        if (json_string(json_object_array_get_idx(reply.get(), i),
                        "node-name") == *node) {
            throw NodeNotFound("node '" + *node +
                               "' is not an intellicache node");
        }
    }
    throw NodeNotFound("no node '" + *node + "' in the daemon at " +
                       qmp_.socket_path());
}

int run_command(const Invocation &inv, std::ostream &out) {
    if (inv.command == "status") {
        return cmd_status(inv, out);
    }
    if (inv.command == "metrics") {
        return cmd_metrics(inv, out);
    }
    if (inv.command == "top") {
        return cmd_top(inv, out);
    }
    if (inv.command == "inspect") {
        return cmd_inspect(inv, out);
    }
    if (inv.command == "verify") {
        return cmd_verify(inv, out);
    }
    if (inv.command == "apply") {
        return run_apply(inv, out);
    }
    if (inv.command == "vm-disk") {
        return run_vm_disk(inv, out);
    }
    if (inv.command == "profile") {
        return run_profile(inv, out);
    }
    if (inv.command == "prefetch") {
        return run_prefetch(inv, out);
    }
    if (inv.command == "jobs") {
        return run_jobs(inv, out);
    }
    if (inv.command == "trace") {
        return run_trace(inv, out);
    }
    throw UsageError("unknown command '" + inv.command + "'");
}

} // namespace icctl
