/*
 * intellicache-ctl vm-disk: a VM's writable disk, a qcow2 overlay over a
 * base's intellicache node, exported over vhost-user-blk or NBD.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_VM_DISK_HPP
#define ICCTL_VM_DISK_HPP

#include "args.hpp"

#include <iosfwd>
#include <string>

namespace icctl {

/* The nodes and export of VM @vm: ic-vm-VM (qcow2) on ic-vm-VM-file. */
inline std::string vm_node_name(const std::string &vm) {
    return "ic-vm-" + vm;
}
inline std::string vm_file_node_name(const std::string &vm) {
    return "ic-vm-" + vm + "-file";
}

/* The libvirt <disk> element for a disk served at @socket: vhostuser, or
 * an NBD network disk with export @export_name. */
std::string libvirt_disk_xml(bool vhost_user, const std::string &socket,
                             const std::string &export_name);

/* intellicache-ctl vm-disk add|remove|list ... */
int run_vm_disk(const Invocation &inv, std::ostream &out);

} // namespace icctl

#endif
