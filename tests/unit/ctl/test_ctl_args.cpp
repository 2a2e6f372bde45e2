/*
 * Unit tests of intellicache-ctl: the command line, and the one-line
 * errors of bad input.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "args.hpp"

#include <gtest/gtest.h>

namespace {

using icctl::ArgParser;
using icctl::Invocation;
using icctl::ListenAddress;
using icctl::UsageError;

Invocation parse(std::vector<std::string> argv, const char *env = nullptr) {
    return ArgParser::parse(argv, env);
}

std::string error_of(std::vector<std::string> argv) {
    try {
        parse(std::move(argv));
    } catch (const UsageError &e) {
        return e.what();
    }
    return "(no error)";
}

TEST(CtlArgs, DefaultsAndEnvironment) {
    EXPECT_EQ(parse({"status"}).qmp_socket, "/run/intellicache/qmp.sock");
    EXPECT_EQ(parse({"status"}, "/tmp/q.sock").qmp_socket, "/tmp/q.sock");
    EXPECT_EQ(parse({"--qmp", "/a", "status"}, "/tmp/q.sock").qmp_socket, "/a");
    /* Global options after the command, and --opt=value. */
    const Invocation inv =
        parse({"status", "--qmp=/b", "--timeout", "250", "--json"});
    EXPECT_EQ(inv.qmp_socket, "/b");
    EXPECT_EQ(inv.timeout_ms, 250);
    EXPECT_TRUE(inv.flag("json"));
    EXPECT_FALSE(inv.interval().has_value());
}

TEST(CtlArgs, CommandsAndTheirOptions) {
    const Invocation v = parse({"verify", "/c", "--base", "nbd://127.0.0.1/x"});
    EXPECT_EQ(v.command, "verify");
    EXPECT_EQ(v.args, std::vector<std::string>{"/c"});
    EXPECT_EQ(v.value("base"), "nbd://127.0.0.1/x");
    const Invocation t = parse({"top", "--count", "3", "--interval", "0.5"});
    EXPECT_EQ(t.count(), 3U);
    EXPECT_DOUBLE_EQ(*t.interval(), 0.5);
    EXPECT_TRUE(parse({"status", "--help"}).help);
    EXPECT_TRUE(parse({"--help"}).help);
    EXPECT_TRUE(parse({"help"}).help);
    EXPECT_TRUE(parse({"--version"}).version);
    EXPECT_EQ(parse({"metrics", "--listen", "[::1]:0"}).value("listen"),
              "[::1]:0");
}

TEST(CtlArgs, BadInputIsOneClearLine) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases =
        {
            {{}, "no command given (try 'intellicache-ctl --help')"},
            {{"frobnicate"},
             "unknown command 'frobnicate' (commands: status, "
             "metrics, top, inspect, verify, apply, vm-disk, profile, "
             "prefetch, jobs, trace)"},
            {{"prefetch"},
             "prefetch: missing argument (try 'intellicache-ctl prefetch "
             "--help')"},
            {{"profile", "start"},
             "profile: missing argument (try 'intellicache-ctl profile "
             "--help')"},
            {{"status", "--frob"},
             "unknown option '--frob' for status (try "
             "'intellicache-ctl status --help')"},
            {{"--frob", "status"},
             "unknown option '--frob' (try "
             "'intellicache-ctl --help')"},
            {{"status", "--interval"}, "option --interval needs a value"},
            {{"status", "--interval", "0"},
             "--interval must be seconds in (0, 3600], not '0'"},
            {{"status", "--interval", "1x"},
             "--interval must be seconds in (0, 3600], not '1x'"},
            {{"top", "--count", "-1"},
             "--count must be a positive number, not '-1'"},
            {{"status", "--json=yes"}, "option --json takes no value"},
            {{"status", "extra"}, "status: unexpected argument 'extra'"},
            {{"inspect"},
             "inspect: missing argument (try 'intellicache-ctl "
             "inspect --help')"},
            {{"verify", "/c"}, "verify: --base URL is required"},
            {{"--timeout", "0", "status"},
             "--timeout must be milliseconds from 1 to 3600000, not '0'"},
            {{"metrics", "--listen", "9100"},
             "--listen wants ADDR:PORT, not '9100'"},
            {{"metrics", "--listen", "127.0.0.1:70000"},
             "--listen wants ADDR:PORT with a port from 0 to 65535, not "
             "'127.0.0.1:70000'"},
            {{"metrics", "--listen", "127.0.0.1:1", "--textfile-dir", "/t"},
             "metrics: --textfile-dir and --listen exclude each other"},
            {{"status", "-x"},
             "unknown option '-x' (try 'intellicache-ctl --help')"},
        };
    for (const auto &[argv, message] : cases) {
        const std::string got = error_of(argv);
        EXPECT_EQ(got, message);
        EXPECT_EQ(got.find('\n'), std::string::npos) << got;
    }
}

TEST(CtlArgs, ListenAddresses) {
    const ListenAddress a = ListenAddress::parse("127.0.0.1:9200");
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 9200);
    const ListenAddress b = ListenAddress::parse("[::1]:0");
    EXPECT_EQ(b.host, "::1");
    EXPECT_EQ(b.port, 0);
    EXPECT_THROW(ListenAddress::parse("::1:80"), UsageError);
    EXPECT_THROW(ListenAddress::parse(":80"), UsageError);
    EXPECT_THROW(ListenAddress::parse("host:"), UsageError);
}

TEST(CtlArgs, EveryCommandHasAUsage) {
    for (std::string_view c : ArgParser::commands()) {
        const std::string u = ArgParser::usage(c);
        EXPECT_EQ(u.rfind("usage: intellicache-ctl", 0), 0U) << c;
        EXPECT_NE(u.find(std::string(c)), std::string::npos) << c;
    }
    EXPECT_NE(ArgParser::usage("").find("Commands:"), std::string::npos);
}

} // namespace
