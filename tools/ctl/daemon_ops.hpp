/*
 * intellicache-ctl: the QMP operations apply and vm-disk build on: nodes,
 * exports, the NBD server, jobs.  Each waits for its effect, within the
 * session's timeout.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_DAEMON_OPS_HPP
#define ICCTL_DAEMON_OPS_HPP

#include "json.hpp"
#include "qmp_client.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace icctl {

/* One node of query-named-block-nodes. */
struct NamedNode {
    std::string name;
    std::string driver;
    std::string filename;
    std::uint64_t virtual_size = 0;
};

/* One export of query-block-exports. */
struct ExportInfo {
    std::string id;
    std::string type;
    std::string node;
};

class DaemonOps {
public:
    DaemonOps(QmpClient &qmp, std::chrono::milliseconds timeout)
        : qmp_(qmp), timeout_(timeout) {}

    std::vector<NamedNode> nodes();
    std::vector<ExportInfo> exports();
    /* node -> its backing node, from the daemon's block graph. */
    std::map<std::string, std::string> backing_nodes();
    /* The query-blockstats entries by node (query-nodes). */
    JsonPtr blockstats();

    /* Takes @options (a new reference is not kept). */
    void add_node(json_object *options);
    void del_node(const std::string &node);
    /* block-export-del, then waits until the export is gone (a client
     * still connected keeps it: the daemon's error is thrown). */
    void del_export(const std::string &id);
    void add_export(json_object *options);
    /* Starts the NBD server on the unix socket @path; false if one was
     * running already (it keeps its address). */
    bool start_nbd_server(const std::string &path);

    /* Runs blockdev-create with @options as job @job_id and waits for its
     * end; throws QmpError with the job's error. */
    void create_image(const std::string &job_id, json_object *options);

    /* The ids of the user-created objects of QOM type @type. */
    std::vector<std::string> objects(const std::string &type);
    /* qom-get of an object's property. */
    JsonPtr object_property(const std::string &id, const std::string &prop);

    QmpClient &qmp() { return qmp_; }

private:
    QmpClient &qmp_;
    std::chrono::milliseconds timeout_;
};

/* An object with string members, for QMP arguments. */
json_object *
json_args(std::initializer_list<std::pair<const char *, std::string>> members);

} // namespace icctl

#endif
