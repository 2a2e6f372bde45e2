/*
 * intellicache-ctl vm-disk: add, remove and list the VMs' overlays.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "vm_disk.hpp"

#include "apply.hpp"
#include "commands.hpp"
#include "daemon_ops.hpp"
#include "host_config.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <ostream>
#include <ranges>

namespace icctl {

namespace {

/* The vhost-user-blk export offers this many queues; the libvirt disk
 * asks for as many (docs/libvirt.rst: QEMU refuses to start with more
 * queues than the export offers). */
constexpr int kVhostQueues = 2;

/* Where overlays and sockets go: the host file's directories, or the
 * defaults of its example. */
struct Dirs {
    std::string cache_dir = "/var/lib/intellicache";
    std::string export_dir = "/run/intellicache";
};

Dirs dirs_of(const Invocation &inv) {
    Dirs d;
    if (auto host = inv.value("host")) {
        const HostConfig c = HostConfig::load(*host);
        d.cache_dir = c.cache_dir;
        d.export_dir = c.export_dir;
    }
    return d;
}

const NamedNode *find_node(const std::vector<NamedNode> &nodes,
                           const std::string &name) {
    const auto it =
        std::find_if(nodes.begin(), nodes.end(),
                     [&](const NamedNode &n) { return n.name == name; });
    return it == nodes.end() ? nullptr : &*it;
}

std::uint64_t file_size(const std::string &path, bool &exists) {
    struct stat st {};
    exists = stat(path.c_str(), &st) == 0;
    return exists ? static_cast<std::uint64_t>(st.st_size) : 0;
}

/*
 * The group id of @name (a group name, or a number): who may connect to a
 * VM's vhost-user socket besides root (libvirt's QEMU user).
 */
gid_t group_id(const std::string &name) {
    std::vector<char> buf(16384);
    struct group gr {};
    struct group *found = nullptr;
    if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) == 0 &&
        found != nullptr) {
        return found->gr_gid;
    }
    if (!name.empty() &&
        std::all_of(name.begin(), name.end(),
                    [](char c) { return c >= '0' && c <= '9'; }) &&
        name.size() < 10) {
        return static_cast<gid_t>(std::stoul(name));
    }
    throw UsageError("vm-disk add: no group '" + name + "'");
}

std::string vm_of(const Invocation &inv) {
    if (inv.args.size() < 2) {
        throw UsageError("vm-disk " + inv.args.at(0) + ": missing VM name");
    }
    const std::string &vm = inv.args[1];
    if (std::string why = check_vm_name(vm); !why.empty()) {
        throw UsageError("vm-disk: the VM name '" + vm + "' " + why);
    }
    return vm;
}

int cmd_add(const Invocation &inv, std::ostream &out) {
    const std::string vm = vm_of(inv);
    const auto base = inv.value("base");
    if (!base) {
        throw UsageError("vm-disk add: --base NAME is required");
    }
    if (inv.flag("nbd") && inv.flag("vhost-user")) {
        throw UsageError("vm-disk add: --nbd and --vhost-user exclude each "
                         "other");
    }
    std::optional<std::uint64_t> size;
    if (auto s = inv.value("size")) {
        size = parse_size(*s);
        if (!size || *size == 0) {
            throw UsageError("vm-disk add: --size must be a size such as 20G, "
                             "not '" +
                             *s + "'");
        }
    }
    const bool nbd = inv.flag("nbd");
    const auto group = inv.value("group");
    if (group && nbd) {
        throw UsageError("vm-disk add: --group gives a VM's vhost-user socket "
                         "to a group; the NBD server's socket serves every "
                         "disk, so it stays root's");
    }
    const gid_t gid = group ? group_id(*group) : 0;
    const Dirs dirs = dirs_of(inv);
    const std::string path =
        inv.value("path").value_or(dirs.cache_dir + "/vms/" + vm + ".qcow2");
    const std::string node = vm_node_name(vm);
    const std::string file_node = vm_file_node_name(vm);
    const std::string base_node = "ic-" + *base;

    QmpClient qmp(inv.qmp_socket, std::chrono::milliseconds(inv.timeout_ms));
    DaemonOps daemon(qmp, std::chrono::milliseconds(inv.timeout_ms));
    const auto nodes = daemon.nodes();
    const NamedNode *b = find_node(nodes, base_node);
    if (b == nullptr || b->driver != "intellicache") {
        throw std::runtime_error("no base '" + *base +
                                 "' in the daemon (no intellicache node " +
                                 base_node + "; apply the host file first)");
    }
    if (find_node(nodes, node) != nullptr) {
        throw std::runtime_error("VM " + vm + " has a disk already (node " +
                                 node + ")");
    }

    /* An overlay made before (the daemon restarted) is attached again with
     * its data; an empty file is formatted. */
    bool exists = false;
    const bool reuse = file_size(path, exists) != 0;
    if (!reuse) {
        create_cache_file(path); /* 0600: the VM's data */
    }
    /* What was added, undone if a later step fails, so that the VM's disk
     * is either all there or not at all. */
    std::vector<std::string> added;
    std::string socket;
    bool exported = false;
    try {
        JsonPtr f(json_args({{"driver", "file"},
                             {"node-name", file_node},
                             {"filename", path}}));
        daemon.add_node(f.get());
        added.push_back(file_node);
        if (!reuse) {
            JsonPtr create(
                json_args({{"driver", "qcow2"}, {"file", file_node}}));
            json_object_object_add(
                create.get(), "size",
                json_object_new_uint64(size.value_or(b->virtual_size)));
            daemon.create_image("ic-create-" + vm, create.get());
        }
        JsonPtr q(json_args({{"driver", "qcow2"},
                             {"node-name", node},
                             {"file", file_node},
                             {"backing", base_node}}));
        daemon.add_node(q.get());
        added.push_back(node);

        if (nbd) {
            socket = dirs.export_dir + "/nbd.sock";
            mkdir(dirs.export_dir.c_str(), 0700);
            daemon.start_nbd_server(socket);
            JsonPtr e(json_args({{"type", "nbd"},
                                 {"id", node},
                                 {"node-name", node},
                                 {"name", vm}}));
            json_object_object_add(e.get(), "writable",
                                   json_object_new_boolean(1));
            daemon.add_export(e.get());
        } else {
            socket = dirs.export_dir + "/" + vm + ".vhost";
            mkdir(dirs.export_dir.c_str(), 0700);
            JsonPtr e(json_args({{"type", "vhost-user-blk"},
                                 {"id", node},
                                 {"node-name", node}}));
            json_object_object_add(e.get(), "writable",
                                   json_object_new_boolean(1));
            json_object_object_add(e.get(), "num-queues",
                                   json_object_new_int(kVhostQueues));
            json_object *addr = json_args({{"type", "unix"}, {"path", socket}});
            json_object_object_add(e.get(), "addr", addr);
            daemon.add_export(e.get());
            exported = true;
            /* QEMU run by libvirt as its own user connects through it. */
            if (group &&
                (chown(socket.c_str(), static_cast<uid_t>(-1), gid) != 0 ||
                 chmod(socket.c_str(), 0660) != 0)) {
                throw std::runtime_error("cannot give " + socket +
                                         " to group " + *group + ": " +
                                         std::strerror(errno));
            }
        }
    } catch (const std::exception &e) {
        if (exported) {
            try {
                daemon.del_export(node);
            } catch (const std::exception &) {
                /* The first error is the one to report. */
            }
        }
        std::for_each(added.rbegin(), added.rend(), [&](const std::string &n) {
            try {
                daemon.del_node(n);
            } catch (const std::exception &) {
                /* The first error is the one to report. */
            }
        });
        if (!reuse) {
            unlink(path.c_str()); /* created empty just now: no data */
        }
        throw std::runtime_error("vm-disk add " + vm + ": " + e.what() +
                                 " (nothing of it is left)");
    }
    out << "added disk of VM " << vm << ": overlay " << path
        << (reuse ? " (kept)" : " (created)") << " over " << base_node
        << ", node " << node << ", "
        << (nbd ? "NBD export " + vm + " on " : "vhost-user-blk on ") << socket
        << (group ? " (group " + *group + ", mode 0660)" : "") << "\n"
        << libvirt_disk_xml(!nbd, socket, vm);
    return kExitOk;
}

int cmd_remove(const Invocation &inv, std::ostream &out) {
    const std::string vm = vm_of(inv);
    const std::string node = vm_node_name(vm);
    QmpClient qmp(inv.qmp_socket, std::chrono::milliseconds(inv.timeout_ms));
    DaemonOps daemon(qmp, std::chrono::milliseconds(inv.timeout_ms));
    const auto nodes = daemon.nodes();
    const NamedNode *file = find_node(nodes, vm_file_node_name(vm));
    if (find_node(nodes, node) == nullptr && file == nullptr) {
        throw std::runtime_error("VM " + vm + " has no disk in the daemon");
    }
    const std::string path = file != nullptr ? file->filename : "";
    std::string done = "removed disk of VM " + vm + ":";
    for (const ExportInfo &e : daemon.exports()) {
        if (e.id == node) {
            daemon.del_export(e.id);
            done += " export " + e.id + ",";
        }
    }
    done += " nodes";
    for (const std::string &n : {node, vm_file_node_name(vm)}) {
        if (find_node(nodes, n) != nullptr) {
            daemon.del_node(n);
            done += " " + n;
        }
    }
    if (inv.flag("delete") && !path.empty()) {
        if (unlink(path.c_str()) != 0) {
            throw std::runtime_error(done + "; cannot delete " + path + ": " +
                                     std::strerror(errno));
        }
        done += "; deleted " + path;
    } else if (!path.empty()) {
        done += "; kept " + path;
    }
    out << done << "\n";
    return kExitOk;
}

int cmd_list(const Invocation &inv, std::ostream &out) {
    QmpClient qmp(inv.qmp_socket, std::chrono::milliseconds(inv.timeout_ms));
    DaemonOps daemon(qmp, std::chrono::milliseconds(inv.timeout_ms));
    const auto nodes = daemon.nodes();
    const auto exports = daemon.exports();
    const auto backing = daemon.backing_nodes();
    std::size_t shown = 0;
    for (const NamedNode &n : nodes) {
        if (n.name.rfind("ic-vm-", 0) != 0 || n.driver != "qcow2") {
            continue;
        }
        const NamedNode *file = find_node(nodes, n.name + "-file");
        const auto e =
            std::find_if(exports.begin(), exports.end(),
                         [&](const ExportInfo &x) { return x.node == n.name; });
        const auto b = backing.find(n.name);
        out << n.name.substr(6) << ": base "
            << (b != backing.end() ? b->second : "(none)") << ", overlay "
            << (file != nullptr ? file->filename : "?") << ", "
            << n.virtual_size << " bytes, export "
            << (e != exports.end() ? e->type : "(none)") << "\n";
        shown++;
    }
    if (shown == 0) {
        out << "no VM disks\n";
    }
    return kExitOk;
}

/* The options of vm-disk are shared by its actions on the command line;
 * each action takes only its own. */
void check_options(const Invocation &inv, const std::string &sub,
                   std::initializer_list<std::string_view> allowed) {
    for (const auto &entry : inv.options) {
        if (std::find(allowed.begin(), allowed.end(), entry.first) ==
            allowed.end()) {
            throw UsageError("vm-disk " + sub + ": option --" + entry.first +
                             " does not apply");
        }
    }
}

} // namespace

std::string libvirt_disk_xml(bool vhost_user, const std::string &socket,
                             const std::string &export_name) {
    if (vhost_user) {
        /* The domain also needs shared memory: <memoryBacking> with
         * <source type='memfd'/> and <access mode='shared'/>
         * (docs/libvirt.rst). */
        return "<disk type='vhostuser' device='disk'>\n"
               "  <driver name='qemu' type='raw' queues='" +
               std::to_string(kVhostQueues) +
               "'/>\n"
               "  <source type='unix' path='" +
               socket +
               "'>\n"
               "    <reconnect enabled='yes' timeout='10'/>\n"
               "  </source>\n"
               "  <target dev='vda' bus='virtio'/>\n"
               "</disk>\n";
    }
    return "<disk type='network' device='disk'>\n"
           "  <driver name='qemu' type='raw'/>\n"
           "  <source protocol='nbd' name='" +
           export_name +
           "'>\n"
           "    <host transport='unix' socket='" +
           socket +
           "'/>\n"
           "  </source>\n"
           "  <target dev='vda' bus='virtio'/>\n"
           "</disk>\n";
}

int run_vm_disk(const Invocation &inv, std::ostream &out) {
    const std::string &sub = inv.args.at(0);
    if (sub == "add") {
        check_options(
            inv, sub,
            {"base", "nbd", "vhost-user", "size", "path", "host", "group"});
    } else if (sub == "remove") {
        check_options(inv, sub, {"delete"});
    } else {
        check_options(inv, sub, {});
    }
    if (sub == "add") {
        return cmd_add(inv, out);
    }
    if (sub == "remove") {
        return cmd_remove(inv, out);
    }
    if (sub == "list") {
        if (inv.args.size() > 1) {
            throw UsageError("vm-disk list: unexpected argument '" +
                             inv.args[1] + "'");
        }
        return cmd_list(inv, out);
    }
    throw UsageError("vm-disk: unknown action '" + sub +
                     "' (add, remove or list)");
}

} // namespace icctl
