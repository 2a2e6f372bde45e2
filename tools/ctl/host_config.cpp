/*
 * intellicache-ctl: the host configuration file.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "host_config.hpp"

#include "intellicache-core.h"
#include "json.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace icctl {

namespace {

/* QEMU's node names hold at most 31 characters (BlockDriverState's
 * node_name[32]); the longest names made from a base name and a VM name
 * are "ic-NAME-base" and "ic-vm-NAME-file". */
constexpr std::size_t kNodeNameMax = 31;
constexpr std::size_t kBaseNameMax = kNodeNameMax - 8;
constexpr std::size_t kVmNameMax = kNodeNameMax - 11;

std::string check_name(std::string_view name, std::size_t max) {
    if (name.empty()) {
        return "is empty";
    }
    if (name.size() > max) {
        return "is longer than " + std::to_string(max) + " characters";
    }
    if (std::isalpha(static_cast<unsigned char>(name[0])) == 0) {
        return "must start with a letter";
    }
    const bool ok = std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' ||
               c == '_' || c == '.';
    });
    if (!ok) {
        return "may hold only letters, digits, '-', '_' and '.'";
    }
    return "";
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.substr(s.size() - suffix.size()) == suffix;
}

/* Reads one JSON object's members, checking types and that every member
 * is known; errors name the member by its path in the file. */
class FieldReader {
public:
    FieldReader(json_object *o, std::string path, std::string source)
        : o_(o), path_(std::move(path)), source_(std::move(source)) {}

    [[noreturn]] void fail(std::string_view key, const std::string &why) const {
        throw ConfigError(source_ + ": " + field(key) + ": " + why);
    }

    std::string field(std::string_view key) const {
        return path_.empty() ? std::string(key)
                             : path_ + "." + std::string(key);
    }

    void only(std::initializer_list<std::string_view> known) const {
        json_object_object_foreach(o_, key, value) {
            (void)value;
            if (std::find(known.begin(), known.end(), key) == known.end()) {
                std::string list;
                for (std::string_view k : known) {
                    list += (list.empty() ? "" : ", ") + std::string(k);
                }
                fail(key, "unknown key (known: " + list + ")");
            }
        }
    }

    json_object *get(std::string_view key) const {
        return json_member(o_, std::string(key).c_str());
    }

    std::optional<std::string> string(std::string_view key) const {
        json_object *v = get(key);
        if (v == nullptr) {
            return std::nullopt;
        }
        if (!json_is(v, json_type_string) ||
            json_object_get_string_len(v) == 0) {
            fail(key, "must be a non-empty string");
        }
        return std::string(json_object_get_string(v));
    }

    std::optional<std::uint64_t> integer(std::string_view key) const {
        json_object *v = get(key);
        if (v == nullptr) {
            return std::nullopt;
        }
        if (!json_is(v, json_type_int) || json_object_get_int64(v) < 0) {
            fail(key,
                 "must be a non-negative integer, not " + json_dump(v, false));
        }
        return json_object_get_uint64(v);
    }

    std::optional<std::uint64_t> size(std::string_view key) const {
        json_object *v = get(key);
        if (v == nullptr) {
            return std::nullopt;
        }
        if (json_is(v, json_type_string)) {
            if (auto s = parse_size(json_object_get_string(v))) {
                return s;
            }
        } else if (json_is(v, json_type_int) && json_object_get_int64(v) >= 0) {
            return json_object_get_uint64(v);
        }
        fail(key, "must be a size: bytes, or a number with K, M, G, T or P "
                  "(\"200G\"), not " +
                      json_dump(v, false));
    }

    FieldReader object(std::string_view key) const {
        json_object *v = get(key);
        if (v != nullptr && !json_is(v, json_type_object)) {
            fail(key, "must be an object");
        }
        return {v, field(key), source_};
    }

    json_object *raw() const { return o_; }
    const std::string &source() const { return source_; }

private:
    json_object *o_; /* may be nullptr: a missing object has no members */
    std::string path_;
    std::string source_;
};

NodeOptions read_options(const FieldReader &r) {
    if (r.raw() == nullptr) {
        return {};
    }
    r.only({"cluster-size", "max-inflight", "max-fetch", "read-ahead",
            "miss-timeout", "cache-size", "scan-threshold"});
    NodeOptions o;
    o.cluster_size = r.size("cluster-size");
    o.max_inflight = r.integer("max-inflight");
    o.max_fetch = r.size("max-fetch");
    o.read_ahead = r.size("read-ahead");
    o.miss_timeout = r.integer("miss-timeout");
    o.cache_size = r.size("cache-size");
    o.scan_threshold = r.size("scan-threshold");
    return o;
}

/* The core's own checks of each option (ranges, powers of two), so that a
 * bad value is reported before anything changes. */
void check_options(const NodeOptions &o, std::optional<std::uint64_t> pool,
                   const FieldReader &where) {
    const IcOptions c = o.to_core(pool.value_or(0));
    IcSettings out{};
    std::array<char, 256> why{};
    if (!ic_options_check(&c, &out, why.data(), why.size())) {
        throw ConfigError(where.source() + ": " + where.field("options") +
                          ": " + why.data());
    }
    if (o.max_fetch && o.cluster_size && *o.max_fetch % *o.cluster_size != 0) {
        throw ConfigError(where.source() + ": " + where.field("options") +
                          ": max-fetch must be a multiple of cluster-size");
    }
}

bool absolute_dir(const std::string &p) {
    return !p.empty() && p[0] == '/';
}

} // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t v = 0;
    const auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end == text.data()) {
        return std::nullopt;
    }
    std::string_view rest(end, text.data() + text.size() - end);
    if (rest.empty() || rest == "B" || rest == "b") {
        return v;
    }
    static constexpr std::string_view kSuffixes = "KMGTP";
    const char unit = static_cast<char>(
        std::toupper(static_cast<unsigned char>(rest.front())));
    const std::size_t shift = kSuffixes.find(unit);
    const std::string_view tail = rest.substr(1);
    if (shift == std::string_view::npos ||
        !(tail.empty() || tail == "B" || tail == "iB")) {
        return std::nullopt;
    }
    const unsigned bits = 10 * static_cast<unsigned>(shift + 1);
    if (v > (UINT64_MAX >> bits)) {
        return std::nullopt;
    }
    return v << bits;
}

std::string check_base_name(std::string_view name) {
    std::string why = check_name(name, kBaseNameMax);
    if (why.empty() && name.substr(0, 3) == "vm-") {
        why = "must not start with 'vm-' (the prefix of the VMs' nodes)";
    }
    if (why.empty() && (ends_with(name, "-base") || ends_with(name, "-cf"))) {
        why = "must not end with '-base' or '-cf' (suffixes of the nodes "
              "made for a base)";
    }
    return why;
}

std::string check_vm_name(std::string_view name) {
    std::string why = check_name(name, kVmNameMax);
    if (why.empty() && ends_with(name, "-file")) {
        why = "must not end with '-file' (the suffix of the overlay's "
              "file node)";
    }
    return why;
}

BaseUrl BaseUrl::parse(std::string_view url) {
    BaseUrl u;
    const std::string shown(url);
    auto split_host = [&](std::string_view rest) {
        const std::size_t slash = rest.find('/');
        if (slash == 0) {
            throw ConfigError("'" + shown + "' names no server");
        }
        if (slash == std::string_view::npos) {
            throw ConfigError("'" + shown +
                              "' names no path: want nfs://SERVER/EXPORT/PATH");
        }
        return std::pair{rest.substr(0, slash), rest.substr(slash)};
    };
    if (url.substr(0, 6) == "nfs://") {
        auto [host, path] = split_host(url.substr(6));
        if (path.size() < 2 || path.find('?') != std::string_view::npos ||
            path.back() == '/') {
            throw ConfigError("'" + shown +
                              "': want nfs://SERVER/EXPORT/PATH to a file");
        }
        u.kind = Kind::Nfs;
        u.host = host;
        u.path = path;
        return u;
    }
    if (url.substr(0, 11) == "nbd+unix://") {
        std::string_view rest = url.substr(11);
        if (!rest.empty() && rest.front() == '/') {
            rest.remove_prefix(1);
        }
        const std::size_t q = rest.find("?socket=");
        if (q == std::string_view::npos || q + 8 >= rest.size() ||
            rest[q + 8] != '/' ||
            rest.substr(q + 8).find_first_of("&?") != std::string_view::npos) {
            throw ConfigError(
                "'" + shown +
                "': want nbd+unix:///EXPORT?socket=/ABSOLUTE/PATH");
        }
        u.kind = Kind::NbdUnix;
        u.export_name = rest.substr(0, q);
        u.socket = rest.substr(q + 8);
        return u;
    }
    if (url.substr(0, 6) == "nbd://") {
        std::string_view rest = url.substr(6);
        const std::size_t slash = rest.find('/');
        std::string_view hostport = rest.substr(0, slash);
        if (slash != std::string_view::npos) {
            u.export_name = rest.substr(slash + 1);
        }
        const std::size_t colon = hostport.rfind(':');
        if (colon != std::string_view::npos) {
            u.port = hostport.substr(colon + 1);
            hostport = hostport.substr(0, colon);
            int p = 0;
            const auto [end, ec] = std::from_chars(
                u.port.data(), u.port.data() + u.port.size(), p);
            if (ec != std::errc() || end != u.port.data() + u.port.size() ||
                p <= 0 || p > 65535) {
                throw ConfigError("'" + shown + "': bad port '" + u.port + "'");
            }
        }
        if (hostport.empty() ||
            u.export_name.find_first_of("?#") != std::string::npos) {
            throw ConfigError("'" + shown + "': want nbd://HOST[:PORT]/EXPORT");
        }
        u.kind = Kind::NbdTcp;
        u.host = hostport;
        return u;
    }
    throw ConfigError("'" + shown +
                      "' is not nfs://SERVER/PATH, "
                      "nbd+unix:///EXPORT?socket=PATH or "
                      "nbd://HOST[:PORT]/EXPORT");
}

/* As QEMU's nfs and nbd drivers print their nodes' filenames. */
std::string BaseUrl::canonical() const {
    switch (kind) {
    case Kind::Nfs:
        return "nfs://" + host + path;
    case Kind::NbdUnix:
        return export_name.empty()
                   ? "nbd+unix://?socket=" + socket
                   : "nbd+unix:///" + export_name + "?socket=" + socket;
    case Kind::NbdTcp:
        return "nbd://" + host + ":" + (port.empty() ? "10809" : port) +
               (export_name.empty() ? "" : "/" + export_name);
    }
    return "";
}

json_object *BaseUrl::blockdev_options(int reconnect_delay) const {
    json_object *o = json_object_new_object();
    json_object *server = json_object_new_object();
    if (kind == Kind::Nfs) {
        json_object_object_add(o, "driver", json_object_new_string("nfs"));
        json_object_object_add(server, "type", json_object_new_string("inet"));
        json_object_object_add(server, "host",
                               json_object_new_string(host.c_str()));
        json_object_object_add(o, "server", server);
        json_object_object_add(o, "path", json_object_new_string(path.c_str()));
        return o;
    }
    json_object_object_add(o, "driver", json_object_new_string("nbd"));
    if (kind == Kind::NbdUnix) {
        json_object_object_add(server, "type", json_object_new_string("unix"));
        json_object_object_add(server, "path",
                               json_object_new_string(socket.c_str()));
    } else {
        json_object_object_add(server, "type", json_object_new_string("inet"));
        json_object_object_add(server, "host",
                               json_object_new_string(host.c_str()));
        json_object_object_add(
            server, "port",
            json_object_new_string(port.empty() ? "10809" : port.c_str()));
    }
    json_object_object_add(o, "server", server);
    if (!export_name.empty()) {
        json_object_object_add(o, "export",
                               json_object_new_string(export_name.c_str()));
    }
    /* A lost connection is retried for this long before a request fails
     * (docs/outages.rst): the intellicache node retries on top of it. */
    json_object_object_add(o, "reconnect-delay",
                           json_object_new_int(reconnect_delay));
    return o;
}

NodeOptions NodeOptions::over(const NodeOptions &d) const {
    NodeOptions o = *this;
    auto fill = [](std::optional<std::uint64_t> &v,
                   const std::optional<std::uint64_t> &from) {
        if (!v) {
            v = from;
        }
    };
    fill(o.cluster_size, d.cluster_size);
    fill(o.max_inflight, d.max_inflight);
    fill(o.max_fetch, d.max_fetch);
    fill(o.read_ahead, d.read_ahead);
    fill(o.miss_timeout, d.miss_timeout);
    fill(o.cache_size, d.cache_size);
    fill(o.scan_threshold, d.scan_threshold);
    return o;
}

IcOptions NodeOptions::to_core(std::uint64_t pool_size) const {
    IcOptions c{};
    auto set = [](bool &has, std::uint64_t &v,
                  const std::optional<std::uint64_t> &from) {
        has = from.has_value();
        v = from.value_or(0);
    };
    set(c.has_cluster_size, c.cluster_size, cluster_size);
    set(c.has_max_inflight, c.max_inflight, max_inflight);
    set(c.has_max_fetch, c.max_fetch, max_fetch);
    set(c.has_read_ahead, c.read_ahead, read_ahead);
    set(c.has_miss_timeout, c.miss_timeout, miss_timeout);
    set(c.has_cache_size, c.cache_size, cache_size);
    set(c.has_scan_threshold, c.scan_threshold, scan_threshold);
    c.pool_size = pool_size;
    return c;
}

HostConfig HostConfig::parse(const std::string &text,
                             const std::string &source) {
    std::string error;
    JsonPtr root = json_parse(text, error);
    if (!root) {
        throw ConfigError(source + ": not JSON: " + error);
    }
    if (!json_is(root.get(), json_type_object)) {
        throw ConfigError(source + ": must hold one JSON object");
    }
    const FieldReader top(root.get(), "", source);
    top.only({"cache-dir", "export-dir", "pool-size", "defaults", "bases"});
    HostConfig c;
    c.cache_dir = top.string("cache-dir").value_or("");
    if (!absolute_dir(c.cache_dir)) {
        top.fail("cache-dir", "must be an absolute path");
    }
    c.export_dir = top.string("export-dir").value_or("/run/intellicache");
    if (!absolute_dir(c.export_dir)) {
        top.fail("export-dir", "must be an absolute path");
    }
    c.pool_size = top.size("pool-size");
    if (c.pool_size && *c.pool_size == 0) {
        top.fail("pool-size", "must be more than 0 (leave it out for no "
                              "pool)");
    }
    const FieldReader defaults = top.object("defaults");
    c.defaults = read_options(defaults);
    const FieldReader bases = top.object("bases");
    if (bases.raw() == nullptr) {
        top.fail("bases", "is missing (an empty object removes every base)");
    }
    json_object_object_foreach(bases.raw(), name, value) {
        if (std::string why = check_base_name(name); !why.empty()) {
            bases.fail(name, "a base name " + why);
        }
        if (!json_is(value, json_type_object)) {
            bases.fail(name, "must be an object");
        }
        const FieldReader b(value, bases.field(name), source);
        b.only({"url", "fingerprint", "options"});
        BaseConfig base;
        const auto url = b.string("url");
        if (!url) {
            b.fail("url", "is missing");
        }
        try {
            base.url = BaseUrl::parse(*url).canonical();
        } catch (const ConfigError &e) {
            b.fail("url", e.what());
        }
        base.fingerprint = b.string("fingerprint");
        base.options = read_options(b.object("options")).over(c.defaults);
        check_options(base.options, c.pool_size, b);
        c.bases.emplace(name, std::move(base));
    }
    return c;
}

HostConfig HostConfig::load(const std::string &path) {
    std::ifstream in(path);
    if (!in) {
        throw ConfigError(path + ": cannot be read");
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), path);
}

std::string HostConfig::cache_file(std::string_view base) const {
    return cache_dir + "/" + std::string(base) + ".cache";
}

} // namespace icctl
