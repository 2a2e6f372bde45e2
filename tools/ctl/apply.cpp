/*
 * intellicache-ctl apply: make the daemon match the host file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "apply.hpp"

#include "commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <ostream>

namespace icctl {

namespace {

/* Seconds QEMU's nbd client waits for a lost connection to come back
 * before a request fails: 2 s, well within the node's miss-timeout, as
 * docs/outages.rst recommends. */
constexpr int kReconnectDelay = 2;

bool starts_with(const std::string &s, std::string_view p) {
    return s.compare(0, p.size(), p) == 0;
}

bool ends_with(const std::string &s, std::string_view p) {
    return s.size() >= p.size() &&
           s.compare(s.size() - p.size(), p.size(), p) == 0;
}

/* The managed base a node or export name belongs to, or "". */
std::string managed_base(const std::string &name, std::string_view suffix) {
    if (!starts_with(name, "ic-") || starts_with(name, "ic-vm-") ||
        !ends_with(name, suffix) || name.size() <= 3 + suffix.size()) {
        return "";
    }
    return name.substr(3, name.size() - 3 - suffix.size());
}

void add_u64(json_object *o, const char *key,
             const std::optional<std::uint64_t> &v) {
    if (v) {
        json_object_object_add(o, key, json_object_new_uint64(*v));
    }
}

std::string errno_text(int e) {
    return std::strerror(e);
}

void make_dir(const std::string &dir) {
    /* Parents first; an existing directory is left as it is. */
    for (std::size_t i = 1; i <= dir.size(); i++) {
        if (i == dir.size() || dir[i] == '/') {
            const std::string part = dir.substr(0, i);
            if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
                throw std::runtime_error("cannot create " + part + ": " +
                                         errno_text(errno));
            }
        }
    }
}

const char *action_word(Action::Kind k) {
    switch (k) {
    case Action::Kind::RemoveBase:
        return "remove-base";
    case Action::Kind::DeletePool:
        return "delete-pool";
    case Action::Kind::CreatePool:
        return "create-pool";
    case Action::Kind::AddBase:
        return "add-base";
    case Action::Kind::ReopenBase:
        return "reopen-base";
    }
    return "?";
}

} // namespace

bool create_cache_file(const std::string &path) {
    make_dir(path.substr(0, path.rfind('/')));
    /* O_EXCL: an existing cache is reused, never truncated. */
    const int fd =
        open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return true;
    }
    if (errno == EEXIST) {
        return false;
    }
    throw std::runtime_error("cannot create " + path + ": " +
                             errno_text(errno));
}

CurrentState read_current_state(DaemonOps &daemon) {
    std::map<std::string, CurrentBase> bases;
    auto base = [&](const std::string &name) -> CurrentBase & {
        CurrentBase &b = bases[name];
        b.name = name;
        return b;
    };
    for (const NamedNode &n : daemon.nodes()) {
        if (auto name = managed_base(n.name, "-base"); !name.empty()) {
            base(name).has_base_node = true;
            base(name).url = n.filename;
        } else if (name = managed_base(n.name, "-cf"); !name.empty()) {
            base(name).has_cache_node = true;
        } else if (name = managed_base(n.name, "");
                   !name.empty() && n.driver == "intellicache") {
            CurrentBase &b = base(name);
            b.has_ic_node = true;
            /* The strong options given at open are in the json: filename. */
            if (starts_with(n.filename, "json:")) {
                std::string error;
                JsonPtr j = json_parse(n.filename.substr(5), error);
                b.fingerprint = json_string(j.get(), "base-fingerprint");
                b.given_cluster_size = json_u64(j.get(), "cluster-size");
            }
        }
    }
    JsonPtr stats = daemon.blockstats();
    const std::size_t n = json_object_array_length(stats.get());
    for (std::size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(stats.get(), i);
        const auto node = json_string(e, "node-name");
        json_object *ds = json_member(e, "driver-specific");
        json_object *set = json_member(ds, "settings");
        if (!node || set == nullptr) {
            continue;
        }
        const auto it = bases.find(managed_base(*node, ""));
        if (it == bases.end() || !it->second.has_ic_node) {
            continue;
        }
        CurrentBase &b = it->second;
        b.cluster_size = json_u64(ds, "cluster-size").value_or(0);
        LiveSettings s;
        s.max_inflight = json_u64(set, "max-inflight").value_or(0);
        s.max_fetch = json_u64(set, "max-fetch").value_or(0);
        s.read_ahead = json_u64(set, "read-ahead").value_or(0);
        s.miss_timeout = json_u64(set, "miss-timeout").value_or(0);
        s.scan_threshold = json_u64(set, "scan-threshold").value_or(0);
        s.cache_size = json_u64(ds, "cache-size").value_or(0);
        b.settings = s;
        b.pool = json_string(set, "pool");
    }
    for (const auto &[parent, child] : daemon.backing_nodes()) {
        const auto it = bases.find(managed_base(child, ""));
        if (parent.rfind("ic-vm-", 0) == 0 && it != bases.end()) {
            it->second.vm_users.push_back(parent.substr(6));
        }
    }
    for (const ExportInfo &e : daemon.exports()) {
        if (auto name = managed_base(e.id, ""); bases.contains(name)) {
            bases[name].has_export = true;
        }
    }

    CurrentState st;
    for (auto &entry : bases) {
        st.bases.push_back(entry.second);
    }
    for (const std::string &id : daemon.objects("intellicache-pool")) {
        if (is_managed_pool(id)) {
            JsonPtr size = daemon.object_property(id, "size");
            JsonPtr members = daemon.object_property(id, "members");
            st.pools.push_back({id, json_object_get_uint64(size.get()),
                                json_object_get_uint64(members.get())});
        }
    }
    return st;
}

json_object *ApplyRunner::ic_node_options(const std::string &name) const {
    const BaseConfig &b = host_.bases.at(name);
    json_object *o = json_args({{"driver", "intellicache"},
                                {"node-name", ic_node_name(name)},
                                {"file", base_node_name(name)},
                                {"cache-file", cache_node_name(name)}});
    if (b.fingerprint) {
        json_object_object_add(o, "base-fingerprint",
                               json_object_new_string(b.fingerprint->c_str()));
    }
    if (host_.pool_size) {
        json_object_object_add(
            o, "pool",
            json_object_new_string(pool_id_for(*host_.pool_size).c_str()));
    }
    const NodeOptions &op = b.options;
    add_u64(o, "cluster-size", op.cluster_size);
    add_u64(o, "max-inflight", op.max_inflight);
    add_u64(o, "max-fetch", op.max_fetch);
    add_u64(o, "read-ahead", op.read_ahead);
    add_u64(o, "miss-timeout", op.miss_timeout);
    add_u64(o, "cache-size", op.cache_size);
    add_u64(o, "scan-threshold", op.scan_threshold);
    return o;
}

void ApplyRunner::add_base(const std::string &name, ActionReport &r) {
    const BaseConfig &b = host_.bases.at(name);
    const std::string path = host_.cache_file(name);
    const bool created = create_cache_file(path);
    r.text +=
        b.url + ", cache file " + path + (created ? " (created)" : " (kept)");

    JsonPtr base(BaseUrl::parse(b.url).blockdev_options(kReconnectDelay));
    json_object_object_add(
        base.get(), "node-name",
        json_object_new_string(base_node_name(name).c_str()));
    json_object_object_add(base.get(), "read-only", json_object_new_boolean(1));
    daemon_.add_node(base.get());

    JsonPtr cf(json_args({{"driver", "file"},
                          {"node-name", cache_node_name(name)},
                          {"filename", path},
                          {"aio", "io_uring"}}));
    json_object *cache = json_object_new_object();
    json_object_object_add(cache, "direct", json_object_new_boolean(1));
    json_object_object_add(cf.get(), "cache", cache);
    /*
     * O_DIRECT with io_uring: a store that must allocate blocks in the
     * file completes in the kernel's workers, not in the thread that
     * serves the guests (docs/design.rst, Deferred stores).  Where
     * io_uring cannot be set up, QEMU falls back to its thread pool.
     *
     * A bounded cache frees evicted clusters by discarding them; any
     * cache may become bounded by a later reopen (cache-size, a pool).
     */
    json_object_object_add(cf.get(), "discard",
                           json_object_new_string("unmap"));
    daemon_.add_node(cf.get());

    JsonPtr ic(ic_node_options(name));
    daemon_.add_node(ic.get());
    r.text += ", nodes " + base_node_name(name) + " " + cache_node_name(name) +
              " " + ic_node_name(name);

    if (!nbd_server_checked_) {
        make_dir(host_.export_dir);
        if (daemon_.start_nbd_server(host_.nbd_socket())) {
            r.text += ", started the NBD server on " + host_.nbd_socket();
        }
        nbd_server_checked_ = true;
    }
    JsonPtr exp(json_args({{"type", "nbd"},
                           {"id", ic_node_name(name)},
                           {"node-name", ic_node_name(name)},
                           {"name", name}}));
    daemon_.add_export(exp.get());
    r.text += ", NBD export " + name;
}

void ApplyRunner::remove_base(const std::string &name, ActionReport &r) {
    const auto exports = daemon_.exports();
    for (const ExportInfo &e : exports) {
        if (e.id == ic_node_name(name)) {
            daemon_.del_export(e.id);
            r.text += " export " + e.id + ",";
        }
    }
    const auto nodes = daemon_.nodes();
    r.text += " nodes";
    for (const std::string &node :
         {ic_node_name(name), cache_node_name(name), base_node_name(name)}) {
        if (std::any_of(nodes.begin(), nodes.end(),
                        [&](const NamedNode &n) { return n.name == node; })) {
            daemon_.del_node(node);
            r.text += " " + node;
        }
    }
    r.text += "; left its cache file " + host_.cache_file(name);
}

void ApplyRunner::reopen_base(const std::string &name) {
    JsonPtr args(json_object_new_object());
    json_object *list = json_object_new_array();
    json_object_array_add(list, ic_node_options(name));
    json_object_object_add(args.get(), "options", list);
    daemon_.qmp().execute("blockdev-reopen", args.get());
}

std::vector<ActionReport> ApplyRunner::run(const std::vector<Action> &plan) {
    std::vector<ActionReport> done;
    for (const Action &a : plan) {
        ActionReport r{action_word(a.kind), a.name, "", true};
        try {
            switch (a.kind) {
            case Action::Kind::RemoveBase:
                r.text = "removed base " + a.name + " (" +
                         (a.replace ? "to add it again: " : "") + a.reason +
                         "):";
                remove_base(a.name, r);
                break;
            case Action::Kind::DeletePool: {
                JsonPtr args(json_args({{"id", a.name}}));
                daemon_.qmp().execute("object-del", args.get());
                r.text = "deleted pool " + a.name + " (" + a.reason + ")";
                break;
            }
            case Action::Kind::CreatePool: {
                JsonPtr args(json_args(
                    {{"qom-type", "intellicache-pool"}, {"id", a.name}}));
                json_object_object_add(
                    args.get(), "size",
                    json_object_new_uint64(*host_.pool_size));
                daemon_.qmp().execute("object-add", args.get());
                r.text = "created pool " + a.name + " (size " + a.reason + ")";
                break;
            }
            case Action::Kind::AddBase:
                r.text = "added base " + a.name +
                         (a.replace ? " again (" + a.reason + ")" : "") + ": ";
                add_base(a.name, r);
                break;
            case Action::Kind::ReopenBase:
                reopen_base(a.name);
                r.text = "reopened " + ic_node_name(a.name) + ": " + a.reason;
                break;
            }
        } catch (const std::exception &e) {
            r.ok = false;
            /* What the action did before it failed is in r.text. */
            r.text = describe_action(a) + " failed: " + e.what() +
                     (r.text.empty() ? "" : " (done: " + r.text + ")");
            done.push_back(std::move(r));
            break;
        }
        done.push_back(std::move(r));
    }
    return done;
}

std::string describe_action(const Action &a) {
    switch (a.kind) {
    case Action::Kind::RemoveBase:
        return "remove base " + a.name + " (" +
               (a.replace ? "to add it again: " : "") + a.reason + ")";
    case Action::Kind::DeletePool:
        return "delete pool " + a.name + " (" + a.reason + ")";
    case Action::Kind::CreatePool:
        return "create pool " + a.name + " (size " + a.reason + ")";
    case Action::Kind::AddBase:
        return "add base " + a.name + " (" + a.reason + ")";
    case Action::Kind::ReopenBase:
        return "reopen " + ic_node_name(a.name) + ": " + a.reason;
    }
    return "";
}

int run_apply(const Invocation &inv, std::ostream &out) {
    const HostConfig host = HostConfig::load(inv.args.at(0));
    QmpClient qmp(inv.qmp_socket, std::chrono::milliseconds(inv.timeout_ms));
    DaemonOps daemon(qmp, std::chrono::milliseconds(inv.timeout_ms));
    const std::vector<Action> plan =
        plan_apply(host, read_current_state(daemon));
    const bool json = inv.flag("json");
    const bool dry = inv.flag("dry-run");

    std::vector<ActionReport> reports;
    if (dry) {
        std::transform(plan.begin(), plan.end(), std::back_inserter(reports),
                       [](const Action &a) {
                           return ActionReport{action_word(a.kind), a.name,
                                               "would " + describe_action(a)};
                       });
    } else {
        reports = ApplyRunner(daemon, host).run(plan);
    }
    const bool failed = !reports.empty() && !reports.back().ok;
    if (json) {
        JsonPtr o(json_object_new_object());
        json_object *list = json_object_new_array();
        for (const ActionReport &r : reports) {
            json_object *e = json_args(
                {{"action", r.action}, {"name", r.name}, {"text", r.text}});
            json_object_object_add(e, "ok",
                                   json_object_new_boolean(r.ok ? 1 : 0));
            json_object_array_add(list, e);
        }
        json_object_object_add(o.get(), "dry-run",
                               json_object_new_boolean(dry ? 1 : 0));
        json_object_object_add(
            o.get(), "changed",
            json_object_new_boolean(!dry && !reports.empty() ? 1 : 0));
        json_object_object_add(o.get(), "actions", list);
        out << json_dump(o.get(), true) << "\n";
        return failed ? kExitError : kExitOk;
    }
    if (reports.empty()) {
        out << "nothing to change\n";
    }
    for (const ActionReport &r : reports) {
        if (r.ok) {
            out << r.text << "\n";
        }
    }
    if (failed) {
        throw std::runtime_error(reports.back().text);
    }
    return kExitOk;
}

} // namespace icctl
