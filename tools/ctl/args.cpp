/*
 * intellicache-ctl: the command line.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "args.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace icctl {

namespace {

struct OptionSpec {
    std::string_view name; /* without the dashes */
    // cppcheck-suppress unusedStructMember
    bool takes_value;
};

struct CommandSpec {
    std::string_view name;
    std::vector<OptionSpec> options;
    std::size_t min_args;
    std::size_t max_args;
    std::string_view usage;
};

const std::vector<CommandSpec> &specs() {
    static const std::vector<CommandSpec> all = {
        {"status",
         {{"json", false}, {"interval", true}, {"node", true}},
         0,
         0,
         "usage: intellicache-ctl [--qmp SOCKET] status [--json] "
         "[--interval SECONDS] [--node NODE]\n"
         "\n"
         "One row per intellicache node of the daemon: its base node, state,\n"
         "base state, cluster size, fill (cached clusters of all), bytes used\n"
         "of cache-size (bounded caches), and the hit ratio of user reads.\n"
         "\n"
         "  --json              machine-readable JSON, every counter included\n"
         "  --interval SECONDS  sample twice, SECONDS apart, and add rates\n"
         "  --node NODE         only this node\n"},
        {"metrics",
         {{"textfile-dir", true}, {"listen", true}, {"node", true}},
         0,
         0,
         "usage: intellicache-ctl [--qmp SOCKET] metrics [--textfile-dir DIR "
         "|\n"
         "                        --listen ADDR:PORT] [--node NODE]\n"
         "\n"
         "The nodes' statistics in the Prometheus text exposition format,\n"
         "printed once on standard output by default.\n"
         "\n"
         "  --textfile-dir DIR  write DIR/intellicache.prom atomically, for\n"
         "                      node_exporter's textfile collector\n"
         "  --listen ADDR:PORT  serve /metrics over HTTP until SIGTERM or\n"
         "                      SIGINT (port 0: any free port, printed)\n"
         "  --node NODE         only this node\n"},
        {"inspect",
         {{"json", false}},
         1,
         1,
         "usage: intellicache-ctl inspect CACHEFILE [--json]\n"
         "\n"
         "What a cache file records, read directly (no daemon needed): its\n"
         "header, format version, base size and fingerprint, cluster size and\n"
         "count, the clusters recorded as cached, and whether each metadata\n"
         "block is intact.\n"
         "\n"
         "  --json  machine-readable JSON\n"},
        {"top",
         {{"interval", true}, {"count", true}, {"node", true}},
         0,
         0,
         "usage: intellicache-ctl [--qmp SOCKET] top [--interval SECONDS] "
         "[--count N] [--node NODE]\n"
         "\n"
         "Live rates and latency percentiles of every node, redrawn every\n"
         "SECONDS (default 1), until interrupted or N frames are shown.\n"
         "Percentiles come from the nodes' latency histograms, when the\n"
         "daemon reports them, over the requests of the last interval.\n"},
        {"verify",
         {{"base", true}},
         1,
         1,
         "usage: intellicache-ctl verify CACHEFILE --base URL\n"
         "\n"
         "Compares every cluster the cache file records as cached with the\n"
         "base, read from URL: nfs://SERVER/EXPORT/PATH (libnfs),\n"
         "nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH "
         "(libnbd).\n"
         "Exit status: 0 all match, 1 mismatches found, 2 error.\n"},
        {"apply",
         {{"dry-run", false}, {"json", false}},
         1,
         1,
         "usage: intellicache-ctl [--qmp SOCKET] apply HOSTFILE [--dry-run] "
         "[--json]\n"
         "\n"
         "Makes the daemon match the host file (docs/ctl.rst): adds, reopens,\n"
         "replaces and removes the bases it manages (nodes ic-NAME*, NBD\n"
         "exports NAME, pool ic-pool), and prints one line per change.\n"
         "Cache files are created with mode 0600 and never deleted.\n"
         "\n"
         "  --dry-run  print what would change, change nothing\n"
         "  --json     machine-readable JSON\n"},
        {"vm-disk",
         {{"base", true},
          {"nbd", false},
          {"vhost-user", false},
          {"size", true},
          {"path", true},
          {"host", true},
          {"group", true},
          {"delete", false}},
         1,
         2,
         "usage: intellicache-ctl [--qmp SOCKET] vm-disk add VM --base NAME\n"
         "           [--vhost-user [--group GROUP] | --nbd] [--size SIZE] "
         "[--path FILE]\n"
         "           [--host HOSTFILE]\n"
         "       intellicache-ctl [--qmp SOCKET] vm-disk remove VM "
         "[--delete]\n"
         "       intellicache-ctl [--qmp SOCKET] vm-disk list\n"
         "\n"
         "A VM's writable disk: a qcow2 overlay (CACHE-DIR/vms/VM.qcow2, or\n"
         "FILE) over the base's node ic-NAME, node ic-vm-VM, exported over\n"
         "vhost-user-blk at EXPORT-DIR/VM.vhost (default) or as NBD export VM\n"
         "on EXPORT-DIR/nbd.sock; prints the libvirt <disk> to use.  The\n"
         "directories are the host file's (--host), else "
         "/var/lib/intellicache\n"
         "and /run/intellicache.  --group GROUP gives the vhost-user socket\n"
         "to GROUP, mode 0660, for a QEMU that libvirt runs as its own user\n"
         "(libvirt-qemu).  remove keeps the overlay unless --delete.\n"},
        {"profile",
         {},
         2,
         3,
         "usage: intellicache-ctl [--qmp SOCKET] profile start NODE FILE\n"
         "       intellicache-ctl [--qmp SOCKET] profile stop NODE\n"
         "\n"
         "Records the order in which the node's users first read each\n"
         "cluster (a boot profile, docs/warmup.rst), written to FILE when\n"
         "the recording stops.\n"},
        {"prefetch",
         {{"profile", true}, {"speed", true}, {"job", true}, {"wait", false}},
         1,
         1,
         "usage: intellicache-ctl [--qmp SOCKET] prefetch NODE [--profile "
         "FILE]\n"
         "           [--speed BYTES] [--job ID] [--wait]\n"
         "\n"
         "Starts an intellicache-prefetch job that warms the node's cache:\n"
         "the clusters of a boot profile in its order, else the whole base.\n"
         "\n"
         "  --profile FILE  the profile to replay\n"
         "  --speed BYTES   most bytes per second fetched (e.g. 200M)\n"
         "  --job ID        the job's id (default prefetch-NODE)\n"
         "  --wait          wait for the job to end; exit 2 if it failed\n"},
        {"jobs",
         {},
         0,
         0,
         "usage: intellicache-ctl [--qmp SOCKET] jobs\n"
         "\n"
         "The daemon's jobs (prefetches among them): id, type, status and\n"
         "progress.\n"},
        {"trace",
         {{"on", false}, {"off", false}},
         0,
         1,
         "usage: intellicache-ctl [--qmp SOCKET] trace [PATTERN] [--on | "
         "--off]\n"
         "\n"
         "The daemon's trace events matching PATTERN (default "
         "intellicache_*,\n"
         "docs/design.rst lists them) and whether each is enabled.  With "
         "--on\n"
         "or --off, enables or disables them at run time; enabled events "
         "print\n"
         "one line each to the daemon's stderr, or to its --trace file=.\n"},
    };
    return all;
}

const CommandSpec *find_spec(std::string_view name) {
    const auto &all = specs();
    const auto it =
        std::find_if(all.begin(), all.end(),
                     [&](const CommandSpec &c) { return c.name == name; });
    return it == all.end() ? nullptr : &*it;
}

int parse_timeout(const std::string &text) {
    int v = 0;
    const auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v <= 0 ||
        v > 3600000) {
        throw UsageError("--timeout must be milliseconds from 1 to 3600000, "
                         "not '" +
                         text + "'");
    }
    return v;
}

} // namespace

const std::vector<std::string_view> &ArgParser::commands() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> n(specs().size());
        std::transform(specs().begin(), specs().end(), n.begin(),
                       [](const CommandSpec &c) { return c.name; });
        return n;
    }();
    return names;
}

std::string ArgParser::usage(std::string_view command) {
    if (const CommandSpec *c = find_spec(command)) {
        return std::string(c->usage);
    }
    return std::string(
               "usage: intellicache-ctl [--qmp SOCKET] [--timeout MS] "
               "COMMAND [OPTIONS]\n"
               "\n"
               "Looks into intellicache nodes of a running qemu-storage-daemon "
               "(over\n"
               "QMP) and into cache files.\n"
               "\n"
               "Commands:\n"
               "  status   a table of the nodes: base, state, fill, hit ratio, "
               "rates\n"
               "  metrics  Prometheus metrics: stdout, textfile or HTTP\n"
               "  top      live rates and latency percentiles\n"
               "  inspect  what a cache file records, without a daemon\n"
               "  verify   compare a cache file's clusters with the base\n"
               "  apply    make the daemon match a host file\n"
               "  vm-disk  add, remove, list VMs' overlays and exports\n"
               "  profile  record a boot profile (start, stop)\n"
               "  prefetch warm a cache: a profile, or the whole base\n"
               "  jobs     the daemon's jobs and their progress\n"
               "  trace    list, enable, disable trace events at run time\n"
               "\n"
               "Options:\n"
               "  --qmp SOCKET  the daemon's QMP monitor socket (default: "
               "$INTELLICACHE_QMP,\n"
               "                else ") +
           kDefaultQmpSocket +
           ")\n"
           "  --timeout MS  longest wait for the daemon or the base "
           "(default 5000)\n"
           "  --help        this text; COMMAND --help for a command's\n"
           "  --version     the version\n";
}

ListenAddress ListenAddress::parse(std::string_view text) {
    const std::string shown(text);
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        throw UsageError("--listen wants ADDR:PORT, not '" + shown + "'");
    }
    ListenAddress a;
    std::string_view host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        throw UsageError("--listen: write an IPv6 address in brackets, "
                         "[::1]:PORT, not '" +
                         shown + "'");
    }
    a.host = std::string(host);
    const std::string_view port = text.substr(colon + 1);
    const auto [end, ec] =
        std::from_chars(port.data(), port.data() + port.size(), a.port);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() ||
        a.port < 0 || a.port > 65535 || a.host.empty()) {
        throw UsageError("--listen wants ADDR:PORT with a port from 0 to "
                         "65535, not '" +
                         shown + "'");
    }
    return a;
}

bool Invocation::flag(std::string_view name) const {
    return options.find(name) != options.end();
}

std::optional<std::string> Invocation::value(std::string_view name) const {
    auto it = options.find(name);
    if (it == options.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::optional<double> Invocation::interval() const {
    const auto v = value("interval");
    if (!v) {
        return std::nullopt;
    }
    double d = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), d);
    if (ec != std::errc() || end != v->data() + v->size() ||
        !std::isfinite(d) || d <= 0 || d > 3600) {
        throw UsageError("--interval must be seconds in (0, 3600], not '" + *v +
                         "'");
    }
    return d;
}

std::optional<std::uint64_t> Invocation::count() const {
    const auto v = value("count");
    if (!v) {
        return std::nullopt;
    }
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || n == 0) {
        throw UsageError("--count must be a positive number, not '" + *v + "'");
    }
    return n;
}

Invocation ArgParser::parse(const std::vector<std::string> &argv,
                            const char *env_qmp) {
    Invocation inv;
    inv.qmp_socket =
        env_qmp != nullptr && *env_qmp != '\0' ? env_qmp : kDefaultQmpSocket;
    const CommandSpec *spec = nullptr;

    for (std::size_t i = 0; i < argv.size(); i++) {
        const std::string &arg = argv[i];
        if (arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
            std::string name = arg.substr(2);
            std::optional<std::string> inline_value;
            const std::size_t eq = name.find('=');
            if (eq != std::string::npos) {
                inline_value = name.substr(eq + 1);
                name.resize(eq);
            }
            auto take_value = [&]() {
                if (inline_value) {
                    return *inline_value;
                }
                if (i + 1 >= argv.size()) {
                    throw UsageError("option --" + name + " needs a value");
                }
                return argv[++i];
            };
            if (name == "help" && !inline_value) {
                inv.help = true;
                continue;
            }
            /* The global options are accepted after the command too. */
            if (name == "qmp") {
                inv.qmp_socket = take_value();
                if (inv.qmp_socket.empty()) {
                    throw UsageError("--qmp needs a socket path");
                }
                continue;
            }
            if (name == "timeout") {
                inv.timeout_ms = parse_timeout(take_value());
                continue;
            }
            if (spec == nullptr) {
                if (name == "version" && !inline_value) {
                    inv.version = true;
                } else {
                    throw UsageError("unknown option '--" + name +
                                     "' (try 'intellicache-ctl --help')");
                }
                continue;
            }
            const auto opt = std::find_if(
                spec->options.begin(), spec->options.end(),
                [&](const OptionSpec &o) { return o.name == name; });
            if (opt == spec->options.end()) {
                throw UsageError("unknown option '--" + name + "' for " +
                                 std::string(spec->name) +
                                 " (try 'intellicache-ctl " +
                                 std::string(spec->name) + " --help')");
            }
            if (!opt->takes_value && inline_value) {
                throw UsageError("option --" + name + " takes no value");
            }
            inv.options[name] = opt->takes_value ? take_value() : "";
            continue;
        }
        if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
            if (arg == "-h") {
                inv.help = true;
                continue;
            }
            throw UsageError("unknown option '" + arg +
                             "' (try 'intellicache-ctl --help')");
        }
        if (spec == nullptr) {
            if (arg == "help") {
                inv.help = true;
                continue;
            }
            spec = find_spec(arg);
            if (spec == nullptr) {
                throw UsageError("unknown command '" + arg +
                                 "' (commands: status, metrics, top, "
                                 "inspect, verify, apply, vm-disk, "
                                 "profile, prefetch, jobs, trace)");
            }
            inv.command = arg;
            continue;
        }
        inv.args.push_back(arg);
    }

    if (inv.help || inv.version) {
        return inv;
    }
    if (spec == nullptr) {
        throw UsageError("no command given (try 'intellicache-ctl --help')");
    }
    if (inv.args.size() < spec->min_args) {
        throw UsageError(std::string(spec->name) +
                         ": missing argument (try "
                         "'intellicache-ctl " +
                         std::string(spec->name) + " --help')");
    }
    if (inv.args.size() > spec->max_args) {
        throw UsageError(std::string(spec->name) + ": unexpected argument '" +
                         inv.args[spec->max_args] + "'");
    }
    if (spec->name == "verify" && !inv.flag("base")) {
        throw UsageError("verify: --base URL is required");
    }
    if (inv.flag("textfile-dir") && inv.flag("listen")) {
        throw UsageError("metrics: --textfile-dir and --listen exclude each "
                         "other");
    }
    /* Check the values now, so that a bad one is reported before any I/O. */
    inv.interval();
    inv.count();
    if (auto listen = inv.value("listen")) {
        ListenAddress::parse(*listen);
    }
    if (auto node = inv.value("node"); node && node->empty()) {
        throw UsageError("--node needs a node name");
    }
    return inv;
}

} // namespace icctl
