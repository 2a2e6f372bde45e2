/*
 * intellicache-ctl: the command line: global options, a subcommand, its
 * options and arguments.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_ARGS_HPP
#define ICCTL_ARGS_HPP

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace icctl {

/* The default monitor socket when neither --qmp nor INTELLICACHE_QMP says. */
inline constexpr const char *kDefaultQmpSocket = "/run/intellicache/qmp.sock";
inline constexpr int kDefaultTimeoutMs = 5000;

/* The command line is wrong; what() is one line naming what. */
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/* A network address to listen on: "127.0.0.1:9200", "[::1]:0". */
struct ListenAddress {
    std::string host;
    int port = 0;

    static ListenAddress parse(std::string_view text);
};

struct Invocation {
    std::string command; /* empty with --help or --version alone */
    bool help = false;   /* print the usage of command (or all) */
    bool version = false;
    std::string qmp_socket; /* --qmp, $INTELLICACHE_QMP, or the default */
    int timeout_ms = kDefaultTimeoutMs;
    std::map<std::string, std::string, std::less<>> options; /* by long name */
    std::vector<std::string> args;

    bool flag(std::string_view name) const;
    std::optional<std::string> value(std::string_view name) const;
    /* --interval as seconds, within (0, 3600]; @fallback if absent. */
    std::optional<double> interval() const;
    /* --count as a positive number, or nullopt. */
    std::optional<std::uint64_t> count() const;
};

class ArgParser {
public:
    /* @env_qmp: the value of INTELLICACHE_QMP, or nullptr.  Throws
     * UsageError. */
    static Invocation parse(const std::vector<std::string> &argv,
                            const char *env_qmp);
    /* The usage of @command, or of the tool for "". */
    static std::string usage(std::string_view command);
    static const std::vector<std::string_view> &commands();
};

} // namespace icctl

#endif
