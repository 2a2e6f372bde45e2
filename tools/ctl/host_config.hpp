/*
 * intellicache-ctl: the host configuration file (docs/ctl.rst, "The host
 * file"): the cache directory, the export directory, the host's budget,
 * and the base images by name with their location and options.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_HOST_CONFIG_HPP
#define ICCTL_HOST_CONFIG_HPP

#include "intellicache-core.h"

#include <json-c/json.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace icctl {

/* The host file is wrong; what() is one line naming the field. */
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/* "200G", "64K", "1048576": bytes, binary suffixes K M G T P as QEMU
 * reads sizes.  nullopt if @text is no such size. */
std::optional<std::uint64_t> parse_size(std::string_view text);

/* Whether @name may name a base or a VM: the node names made from it
 * (ic-NAME-base, ic-vm-NAME-file) must be valid QEMU node names.  Returns
 * why not, or "" when it is fine. */
std::string check_base_name(std::string_view name);
std::string check_vm_name(std::string_view name);

/*
 * Where a base image lives: nfs://SERVER/PATH (QEMU's nfs driver),
 * nbd+unix:///EXPORT?socket=PATH or nbd://HOST[:PORT]/EXPORT (QEMU's nbd
 * driver).  canonical() is the URL as QEMU prints the node's filename, so
 * that a running node's filename compares with the file's URL.
 */
struct BaseUrl {
    enum class Kind { Nfs, NbdUnix, NbdTcp };
    Kind kind = Kind::Nfs;
    std::string host;   /* Nfs, NbdTcp */
    std::string port;   /* NbdTcp; empty: 10809 */
    std::string path;   /* Nfs: the path on the server, from '/' */
    std::string socket; /* NbdUnix */
    std::string export_name;

    /* Throws ConfigError (without the field name) if @url is not one. */
    static BaseUrl parse(std::string_view url);
    std::string canonical() const;
    /* The --blockdev options of the base node, without node-name. */
    json_object *blockdev_options(int reconnect_delay) const;
};

/* The options of one intellicache node as the file gives them. */
struct NodeOptions {
    std::optional<std::uint64_t> cluster_size;
    std::optional<std::uint64_t> max_inflight;
    std::optional<std::uint64_t> max_fetch;
    std::optional<std::uint64_t> read_ahead;
    std::optional<std::uint64_t> miss_timeout;
    std::optional<std::uint64_t> cache_size;
    std::optional<std::uint64_t> scan_threshold;

    /* These options, each one missing taken from @defaults. */
    NodeOptions over(const NodeOptions &defaults) const;
    /* As the core's option checks take them, in a pool of @pool_size
     * bytes (0: none). */
    IcOptions to_core(std::uint64_t pool_size) const;
    bool operator==(const NodeOptions &) const = default;
};

struct BaseConfig {
    std::string url; /* canonical */
    std::optional<std::string> fingerprint;
    NodeOptions options; /* the host's defaults applied */
};

struct HostConfig {
    std::string cache_dir;
    std::string export_dir;
    std::optional<std::uint64_t> pool_size;
    NodeOptions defaults;
    std::map<std::string, BaseConfig, std::less<>> bases;

    /* Throws ConfigError "@source: FIELD: what is wrong". */
    static HostConfig parse(const std::string &text, const std::string &source);
    static HostConfig load(const std::string &path);

    std::string cache_file(std::string_view base) const;
    std::string nbd_socket() const { return export_dir + "/nbd.sock"; }
};

} // namespace icctl

#endif
