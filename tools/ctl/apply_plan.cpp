/*
 * intellicache-ctl apply: the plan.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "apply_plan.hpp"

#include "intellicache-core.h"

#include <algorithm>
#include <array>

namespace icctl {

namespace {

/* Why the base must be removed and added again, or "" if a reopen (or
 * nothing) does. */
std::string replace_reason(const CurrentBase &c, const BaseConfig &w) {
    std::string missing;
    auto need = [&](bool has, const std::string &what) {
        if (!has) {
            missing += (missing.empty() ? "" : ", ") + what;
        }
    };
    need(c.has_base_node, base_node_name(c.name));
    need(c.has_cache_node, cache_node_name(c.name));
    need(c.has_ic_node, ic_node_name(c.name));
    need(c.has_export, "export " + ic_node_name(c.name));
    if (!missing.empty()) {
        return "incomplete, missing " + missing;
    }
    if (c.url != w.url) {
        return "url " + c.url + " -> " + w.url;
    }
    if (c.fingerprint != w.fingerprint) {
        return "fingerprint " + c.fingerprint.value_or("(none)") + " -> " +
               w.fingerprint.value_or("(none)");
    }
    if (w.options.cluster_size && *w.options.cluster_size != c.cluster_size) {
        return "cluster-size " + std::to_string(c.cluster_size) + " -> " +
               std::to_string(*w.options.cluster_size);
    }
    return "";
}

/* "max-inflight 16 -> 32, read-ahead ..." or "" when they match. */
std::string settings_diff(const LiveSettings &have, const LiveSettings &want) {
    std::string d;
    auto cmp = [&](const char *name, std::uint64_t h, std::uint64_t w) {
        if (h != w) {
            d += (d.empty() ? "" : ", ") + std::string(name) + " " +
                 std::to_string(h) + " -> " + std::to_string(w);
        }
    };
    cmp("max-inflight", have.max_inflight, want.max_inflight);
    cmp("max-fetch", have.max_fetch, want.max_fetch);
    cmp("read-ahead", have.read_ahead, want.read_ahead);
    cmp("miss-timeout", have.miss_timeout, want.miss_timeout);
    cmp("cache-size", have.cache_size, want.cache_size);
    cmp("scan-threshold", have.scan_threshold, want.scan_threshold);
    return d;
}

std::string pool_text(const std::optional<std::string> &id) {
    return id.value_or("(none)");
}

} // namespace

std::string pool_id_for(std::uint64_t size) {
    constexpr std::uint64_t kKiB = 1024;
    for (const auto &[unit, suffix] :
         {std::pair{kKiB * kKiB * kKiB * kKiB, 'T'},
          std::pair{kKiB * kKiB * kKiB, 'G'}, std::pair{kKiB * kKiB, 'M'},
          std::pair{kKiB, 'K'}}) {
        if (size >= unit && size % unit == 0) {
            return "ic-pool-" + std::to_string(size / unit) + suffix;
        }
    }
    return "ic-pool-" + std::to_string(size);
}

bool is_managed_pool(const std::string &id) {
    return id == "ic-pool" || id.starts_with("ic-pool-");
}

LiveSettings expected_settings(const NodeOptions &o, std::uint64_t cluster_size,
                               std::uint64_t pool_size) {
    const IcOptions opts = o.to_core(pool_size);
    IcSettings set{};
    std::array<char, 256> why{};
    if (!ic_settings_resolve(&opts, &set, static_cast<uint32_t>(cluster_size),
                             why.data(), why.size())) {
        throw PlanError(why.data());
    }
    const bool bounded = set.cache_size != 0 || pool_size != 0;
    LiveSettings s;
    s.max_inflight = set.max_inflight;
    s.max_fetch = set.max_fetch;
    s.read_ahead = set.read_ahead;
    s.miss_timeout = set.miss_timeout_ms / 1000;
    s.scan_threshold = bounded ? set.scan_threshold : 0;
    /* The node reports its bound in whole clusters. */
    s.cache_size = set.cache_size / cluster_size * cluster_size;
    return s;
}

std::vector<Action> plan_apply(const HostConfig &want,
                               const CurrentState &have) {
    using K = Action::Kind;
    const std::optional<std::string> want_pool =
        want.pool_size ? std::optional(pool_id_for(*want.pool_size))
                       : std::nullopt;
    std::vector<Action> removals;
    std::vector<Action> additions;
    std::vector<Action> reopens;

    for (const CurrentBase &c : have.bases) {
        const auto w = want.bases.find(c.name);
        std::string why;
        if (w == want.bases.end()) {
            removals.push_back({K::RemoveBase, c.name, "no longer listed"});
        } else if (why = replace_reason(c, w->second); !why.empty()) {
            removals.push_back({K::RemoveBase, c.name, why, true});
            additions.push_back({K::AddBase, c.name, why, true});
        } else if (c.settings) {
            const LiveSettings expect = expected_settings(
                w->second.options, c.cluster_size, want.pool_size.value_or(0));
            /* A pool member without a cache-size of its own reports none
             * (0), as expected_settings() gives. */
            std::string d = settings_diff(*c.settings, expect);
            if (c.pool != want_pool) {
                d += (d.empty() ? "" : ", ") + std::string("pool ") +
                     pool_text(c.pool) + " -> " + pool_text(want_pool);
            }
            if (!d.empty()) {
                reopens.push_back({K::ReopenBase, c.name, d});
            }
            continue;
        }
        if (!c.vm_users.empty() && !removals.empty() &&
            removals.back().name == c.name) {
            std::string vms;
            for (const std::string &vm : c.vm_users) {
                vms += (vms.empty() ? "" : ", ") + vm;
            }
            throw PlanError("bases." + c.name + ": cannot remove it (" +
                            removals.back().reason + "): the disks of VM(s) " +
                            vms +
                            " are overlays over it (vm-disk remove them "
                            "first)");
        }
    }
    for (const auto &entry : want.bases) {
        const std::string &name = entry.first;
        const bool present =
            std::any_of(have.bases.begin(), have.bases.end(),
                        [&](const CurrentBase &c) { return c.name == name; });
        if (!present) {
            additions.push_back({K::AddBase, name, "new"});
        }
    }

    /*
     * The wanted pool is made before the bases that join it; the others
     * go last, once every managed base has left them (a removal, or a
     * reopen into the wanted pool or none).  Only members apply does not
     * manage would stay, and those it does not take out.
     */
    std::vector<Action> create;
    std::vector<Action> deletes;
    bool have_wanted = false;
    for (const CurrentPool &p : have.pools) {
        if (p.id == want_pool) {
            if (p.size != *want.pool_size) {
                throw PlanError("pool-size: the pool " + p.id + " has " +
                                std::to_string(p.size) + " bytes, not " +
                                std::to_string(*want.pool_size) +
                                " (made by hand? object-del it, or restart "
                                "the daemon and apply again)");
            }
            have_wanted = true;
            continue;
        }
        const auto managed = static_cast<std::uint64_t>(std::count_if(
            have.bases.begin(), have.bases.end(),
            [&](const CurrentBase &c) { return c.pool == p.id; }));
        if (p.members > managed) {
            throw PlanError("the pool " + p.id + " has " +
                            std::to_string(p.members) + " member node(s), " +
                            std::to_string(managed) +
                            " of them apply's: cannot delete it while other "
                            "nodes use it (blockdev-reopen or remove them "
                            "first)");
        }
        deletes.push_back({K::DeletePool, p.id,
                           want_pool ? "replaced by " + *want_pool
                                     : "pool-size no longer set"});
    }
    if (want_pool && !have_wanted) {
        create.push_back(
            {K::CreatePool, *want_pool, std::to_string(*want.pool_size)});
    }

    std::vector<Action> all = std::move(removals);
    all.insert(all.end(), create.begin(), create.end());
    all.insert(all.end(), additions.begin(), additions.end());
    all.insert(all.end(), reopens.begin(), reopens.end());
    all.insert(all.end(), deletes.begin(), deletes.end());
    return all;
}

} // namespace icctl
