/*
 * Unit tests of intellicache-ctl's host file: the example, sizes, URLs,
 * names, and one clear line for each kind of mistake.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "host_config.hpp"

#include <gtest/gtest.h>

namespace {

using icctl::BaseUrl;
using icctl::ConfigError;
using icctl::HostConfig;

const char *const kExample = R"({
  "cache-dir": "/var/lib/intellicache",
  "export-dir": "/run/intellicache",
  "pool-size": "200G",
  "defaults": { "cluster-size": 65536, "max-inflight": 16, "miss-timeout": 20 },
  "bases": {
    "win11":  { "url": "nfs://nfs1/golden/win11.img", "fingerprint": "2026-11",
                "options": { "max-inflight": 32 } },
    "debian": { "url": "nbd+unix:///golden?socket=/run/nbd/golden.sock" }
  }
})";

std::string error_of(const std::string &text) {
    try {
        HostConfig::parse(text, "host.json");
    } catch (const ConfigError &e) {
        return e.what();
    }
    return "(no error)";
}

/* A file with one base whose entry is @base. */
std::string with_base(const std::string &base) {
    return R"({"cache-dir": "/c", "bases": {"b": )" + base + "}}";
}

TEST(HostConfig, ParsesTheExample) {
    const HostConfig c = HostConfig::parse(kExample, "host.json");
    EXPECT_EQ(c.cache_dir, "/var/lib/intellicache");
    EXPECT_EQ(c.export_dir, "/run/intellicache");
    EXPECT_EQ(c.pool_size, std::uint64_t{200} << 30);
    ASSERT_EQ(c.bases.size(), 2U);
    const auto &w = c.bases.at("win11");
    EXPECT_EQ(w.url, "nfs://nfs1/golden/win11.img");
    EXPECT_EQ(w.fingerprint, "2026-11");
    EXPECT_EQ(w.options.max_inflight, 32U);    /* its own */
    EXPECT_EQ(w.options.cluster_size, 65536U); /* the host's default */
    EXPECT_EQ(w.options.miss_timeout, 20U);
    const auto &d = c.bases.at("debian");
    EXPECT_EQ(d.url, "nbd+unix:///golden?socket=/run/nbd/golden.sock");
    EXPECT_FALSE(d.fingerprint);
    EXPECT_EQ(d.options.max_inflight, 16U);
    EXPECT_EQ(c.cache_file("debian"), "/var/lib/intellicache/debian.cache");
    EXPECT_EQ(c.nbd_socket(), "/run/intellicache/nbd.sock");
}

TEST(HostConfig, DefaultsAndEmptyBases) {
    const HostConfig c =
        HostConfig::parse(R"({"cache-dir": "/c", "bases": {}})", "h");
    EXPECT_EQ(c.export_dir, "/run/intellicache");
    EXPECT_FALSE(c.pool_size);
    EXPECT_TRUE(c.bases.empty());
}

TEST(HostConfig, Sizes) {
    using icctl::parse_size;
    EXPECT_EQ(parse_size("4096"), 4096U);
    EXPECT_EQ(parse_size("64K"), 65536U);
    EXPECT_EQ(parse_size("64k"), 65536U);
    EXPECT_EQ(parse_size("1M"), 1048576U);
    EXPECT_EQ(parse_size("1MiB"), 1048576U);
    EXPECT_EQ(parse_size("200G"), std::uint64_t{200} << 30);
    EXPECT_EQ(parse_size("2T"), std::uint64_t{2} << 40);
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("G"));
    EXPECT_FALSE(parse_size("1.5G"));
    EXPECT_FALSE(parse_size("10X"));
    EXPECT_FALSE(parse_size("-1"));
    EXPECT_FALSE(parse_size("99999999999P"));
}

TEST(HostConfig, Urls) {
    EXPECT_EQ(BaseUrl::parse("nfs://srv/exp/a.img").canonical(),
              "nfs://srv/exp/a.img");
    const BaseUrl u = BaseUrl::parse("nbd+unix:///gold?socket=/run/g.sock");
    EXPECT_EQ(u.kind, BaseUrl::Kind::NbdUnix);
    EXPECT_EQ(u.export_name, "gold");
    EXPECT_EQ(u.socket, "/run/g.sock");
    EXPECT_EQ(BaseUrl::parse("nbd://h:10810/e").canonical(), "nbd://h:10810/e");
    /* As QEMU prints the nodes' filenames. */
    EXPECT_EQ(BaseUrl::parse("nbd://h").canonical(), "nbd://h:10809");
    EXPECT_EQ(BaseUrl::parse("nbd+unix:///?socket=/s").canonical(),
              "nbd+unix://?socket=/s");
    EXPECT_EQ(BaseUrl::parse("nbd+unix://?socket=/s").canonical(),
              "nbd+unix://?socket=/s");
    for (const char *bad :
         {"http://x/y", "nfs://", "nfs://srv", "nfs://srv/", "nfs:///p",
          "nbd+unix:///e", "nbd+unix:///e?socket=rel.sock", "nbd://h:0/e",
          "nbd://h:x/e", "nbd:///e", "/srv/a.img"}) {
        EXPECT_THROW(BaseUrl::parse(bad), ConfigError) << bad;
    }
}

TEST(HostConfig, BlockdevOptionsOfAnNbdBase) {
    json_object *o =
        BaseUrl::parse("nbd+unix:///g?socket=/s").blockdev_options(2);
    EXPECT_STREQ(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                 R"({"driver":"nbd","server":{"type":"unix","path":"\/s"},)"
                 R"("export":"g","reconnect-delay":2})");
    json_object_put(o);
}

TEST(HostConfig, Names) {
    EXPECT_EQ(icctl::check_base_name("win11"), "");
    EXPECT_EQ(icctl::check_base_name("debian-12.4_x"), "");
    EXPECT_NE(icctl::check_base_name(""), "");
    EXPECT_NE(icctl::check_base_name("1abc"), "");
    EXPECT_NE(icctl::check_base_name("a b"), "");
    EXPECT_NE(icctl::check_base_name("a/b"), "");
    EXPECT_NE(icctl::check_base_name(std::string(24, 'a')), "");
    EXPECT_EQ(icctl::check_base_name(std::string(23, 'a')), "");
    EXPECT_NE(icctl::check_base_name("vm-x"), "");
    EXPECT_NE(icctl::check_base_name("x-base"), "");
    EXPECT_NE(icctl::check_base_name("x-cf"), "");
    EXPECT_EQ(icctl::check_vm_name("web01"), "");
    EXPECT_NE(icctl::check_vm_name(std::string(21, 'v')), "");
    EXPECT_NE(icctl::check_vm_name("x-file"), "");
}

TEST(HostConfig, OneLineErrorsNameTheField) {
    EXPECT_EQ(error_of("{"), error_of("{")); /* stable */
    EXPECT_NE(error_of("{").find("host.json: not JSON"), std::string::npos);
    EXPECT_EQ(error_of("[]"), "host.json: must hold one JSON object");
    EXPECT_EQ(error_of(R"({"bases": {}})"),
              "host.json: cache-dir: must be an absolute path");
    EXPECT_EQ(error_of(R"({"cache-dir": "rel", "bases": {}})"),
              "host.json: cache-dir: must be an absolute path");
    EXPECT_EQ(error_of(R"({"cache-dir": "/c"})"),
              "host.json: bases: is missing (an empty object removes every "
              "base)");
    EXPECT_EQ(error_of(R"({"cache-dir": "/c", "bases": {}, "pool": 1})"),
              "host.json: pool: unknown key (known: cache-dir, export-dir, "
              "pool-size, defaults, bases)");
    EXPECT_EQ(
        error_of(R"({"cache-dir": "/c", "bases": {}, "pool-size": "9Q"})"),
        "host.json: pool-size: must be a size: bytes, or a number with "
        "K, M, G, T or P (\"200G\"), not \"9Q\"");
    EXPECT_EQ(error_of(R"({"cache-dir": "/c", "bases": {"a b": {}}})"),
              "host.json: bases.a b: a base name may hold only letters, "
              "digits, '-', '_' and '.'");
    EXPECT_EQ(error_of(with_base(R"({"url": "ftp://x/y"})")),
              "host.json: bases.b.url: 'ftp://x/y' is not nfs://SERVER/PATH, "
              "nbd+unix:///EXPORT?socket=PATH or nbd://HOST[:PORT]/EXPORT");
    EXPECT_EQ(error_of(with_base("{}")), "host.json: bases.b.url: is missing");
    EXPECT_EQ(error_of(with_base(R"({"url": "nfs://nfs1"})")),
              "host.json: bases.b.url: 'nfs://nfs1' names no path: want "
              "nfs://SERVER/EXPORT/PATH");
    EXPECT_EQ(error_of(with_base(R"({"url": "nfs:///e/f"})")),
              "host.json: bases.b.url: 'nfs:///e/f' names no server");
    EXPECT_EQ(error_of(with_base(R"({"url": "nfs://s/e/f", "fp": "x"})")),
              "host.json: bases.b.fp: unknown key (known: url, fingerprint, "
              "options)");
    EXPECT_EQ(error_of(with_base(
                  R"({"url": "nfs://s/e/f", "options": {"pool": "p"}})")),
              "host.json: bases.b.options.pool: unknown key (known: "
              "cluster-size, max-inflight, max-fetch, read-ahead, "
              "miss-timeout, cache-size, scan-threshold)");
    EXPECT_EQ(error_of(with_base(
                  R"({"url": "nfs://s/e/f", "options": {"max-inflight": 0}})")),
              "host.json: bases.b.options: max-inflight must be from 1 to "
              "1024, not 0");
    EXPECT_EQ(error_of(with_base(R"({"url": "nfs://s/e/f", "options": )"
                                 R"({"max-inflight": "8"}})")),
              "host.json: bases.b.options.max-inflight: must be a "
              "non-negative integer, not \"8\"");
    EXPECT_EQ(error_of(with_base(R"({"url": "nfs://s/e/f", "options": )"
                                 R"({"cluster-size": "3K"}})")),
              "host.json: bases.b.options: cluster-size must be a power of two "
              "from 4096 to 2097152, not 3072");
    EXPECT_EQ(error_of(with_base(R"({"url": "nfs://s/e/f", "options": )"
                                 R"({"scan-threshold": "1M"}})")),
              "host.json: bases.b.options: scan-threshold applies to a "
              "bounded cache only: set cache-size or pool too");
    EXPECT_EQ(error_of(R"({"cache-dir": "/c", "defaults": {"max-fetch": 0},)"
                       R"( "bases": {"b": {"url": "nfs://s/e/f"}}})"),
              "host.json: bases.b.options: max-fetch must be a multiple of "
              "the cluster size from one cluster to 67108864, not 0");
}

} // namespace
