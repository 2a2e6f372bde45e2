/*
 * intellicache-ctl: the QMP operations of apply and vm-disk.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "daemon_ops.hpp"

#include <algorithm>
#include <thread>

namespace icctl {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(20);

std::string string_of(json_object *o, const char *key) {
    return json_string(o, key).value_or("");
}

} // namespace

json_object *
json_args(std::initializer_list<std::pair<const char *, std::string>> members) {
    json_object *o = json_object_new_object();
    for (const auto &[k, v] : members) {
        json_object_object_add(o, k, json_object_new_string(v.c_str()));
    }
    return o;
}

std::vector<NamedNode> DaemonOps::nodes() {
    JsonPtr args(json_object_new_object());
    json_object_object_add(args.get(), "flat", json_object_new_boolean(1));
    JsonPtr reply = qmp_.execute("query-named-block-nodes", args.get());
    std::vector<NamedNode> all;
    const std::size_t n = json_object_array_length(reply.get());
    for (std::size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(reply.get(), i);
        NamedNode node;
        node.name = string_of(o, "node-name");
        node.driver = string_of(o, "drv");
        node.filename = string_of(o, "file");
        node.virtual_size =
            json_u64(json_member(o, "image"), "virtual-size").value_or(0);
        all.push_back(std::move(node));
    }
    return all;
}

std::vector<ExportInfo> DaemonOps::exports() {
    JsonPtr reply = qmp_.execute("query-block-exports");
    std::vector<ExportInfo> all;
    const std::size_t n = json_object_array_length(reply.get());
    for (std::size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(reply.get(), i);
        all.push_back({string_of(o, "id"), string_of(o, "type"),
                       string_of(o, "node-name")});
    }
    return all;
}

std::map<std::string, std::string> DaemonOps::backing_nodes() {
    std::map<std::string, std::string> backing;
    JsonPtr g = qmp_.execute("x-debug-query-block-graph");
    std::map<std::uint64_t, std::string> names;
    json_object *list = json_member(g.get(), "nodes");
    for (std::size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *n = json_object_array_get_idx(list, i);
        names[json_u64(n, "id").value_or(0)] =
            json_string(n, "name").value_or("");
    }
    json_object *edges = json_member(g.get(), "edges");
    for (std::size_t i = 0; i < json_object_array_length(edges); i++) {
        json_object *e = json_object_array_get_idx(edges, i);
        if (json_string(e, "name") == "backing") {
            backing[names[json_u64(e, "parent").value_or(0)]] =
                names[json_u64(e, "child").value_or(0)];
        }
    }
    return backing;
}

JsonPtr DaemonOps::blockstats() {
    JsonPtr args(json_object_new_object());
    json_object_object_add(args.get(), "query-nodes",
                           json_object_new_boolean(1));
    return qmp_.execute("query-blockstats", args.get());
}

void DaemonOps::add_node(json_object *options) {
    qmp_.execute("blockdev-add", options);
}

void DaemonOps::del_node(const std::string &node) {
    JsonPtr args(json_args({{"node-name", node}}));
    qmp_.execute("blockdev-del", args.get());
}

void DaemonOps::add_export(json_object *options) {
    qmp_.execute("block-export-add", options);
}

void DaemonOps::del_export(const std::string &id) {
    JsonPtr args(json_args({{"id", id}}));
    qmp_.execute("block-export-del", args.get());
    /* The export goes once its last request is done (BLOCK_EXPORT_DELETED);
     * its node stays in use until then. */
    const auto deadline = Clock::now() + timeout_;
    for (;;) {
        const auto all = exports();
        if (std::none_of(all.begin(), all.end(),
                         [&](const ExportInfo &e) { return e.id == id; })) {
            return;
        }
        if (Clock::now() >= deadline) {
            throw QmpError("export " + id + " still there " +
                           std::to_string(timeout_.count()) +
                           " ms after block-export-del");
        }
        std::this_thread::sleep_for(kPoll);
    }
}

bool DaemonOps::start_nbd_server(const std::string &path) {
    JsonPtr args(json_object_new_object());
    json_object *addr = json_object_new_object();
    json_object_object_add(addr, "type", json_object_new_string("unix"));
    json_object_object_add(addr, "data", json_args({{"path", path}}));
    json_object_object_add(args.get(), "addr", addr);
    try {
        qmp_.execute("nbd-server-start", args.get());
        return true;
    } catch (const QmpError &e) {
        /* QEMU has no query of its NBD server: starting it again is how
         * to find out whether it runs. */
        if (std::string(e.what()).find("already running") !=
            std::string::npos) {
            return false;
        }
        throw;
    }
}

void DaemonOps::create_image(const std::string &job_id, json_object *options) {
    JsonPtr args(json_object_new_object());
    json_object_object_add(args.get(), "job-id",
                           json_object_new_string(job_id.c_str()));
    json_object_object_add(args.get(), "options", json_object_get(options));
    qmp_.execute("blockdev-create", args.get());
    const auto deadline = Clock::now() + timeout_;
    for (;;) {
        JsonPtr jobs = qmp_.execute("query-jobs");
        json_object *job = nullptr;
        const std::size_t n = json_object_array_length(jobs.get());
        for (std::size_t i = 0; i < n; i++) {
            json_object *j = json_object_array_get_idx(jobs.get(), i);
            if (string_of(j, "id") == job_id) {
                job = j;
            }
        }
        if (job == nullptr) {
            throw QmpError("job " + job_id + " vanished");
        }
        if (string_of(job, "status") == "concluded") {
            const auto error = json_string(job, "error");
            JsonPtr dismiss(json_args({{"id", job_id}}));
            qmp_.execute("job-dismiss", dismiss.get());
            if (error) {
                throw QmpError(*error);
            }
            return;
        }
        if (Clock::now() >= deadline) {
            throw QmpError("job " + job_id + " not done after " +
                           std::to_string(timeout_.count()) + " ms");
        }
        std::this_thread::sleep_for(kPoll);
    }
}

std::vector<std::string> DaemonOps::objects(const std::string &type) {
    JsonPtr args(json_args({{"path", "/objects"}}));
    JsonPtr reply = qmp_.execute("qom-list", args.get());
    std::vector<std::string> ids;
    const std::size_t n = json_object_array_length(reply.get());
    for (std::size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(reply.get(), i);
        if (string_of(o, "type") == "child<" + type + ">") {
            ids.push_back(string_of(o, "name"));
        }
    }
    return ids;
}

JsonPtr DaemonOps::object_property(const std::string &id,
                                   const std::string &prop) {
    JsonPtr args(json_args({{"path", "/objects/" + id}, {"property", prop}}));
    return qmp_.execute("qom-get", args.get());
}

} // namespace icctl
