/*
 * Unit tests of intellicache-ctl apply's planner: the host file and the
 * daemon's state in, the actions out.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "apply_plan.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

namespace {

using icctl::Action;
using icctl::CurrentBase;
using icctl::CurrentPool;
using icctl::CurrentState;
using icctl::HostConfig;
using icctl::PlanError;
using K = Action::Kind;

constexpr std::uint64_t kCluster = 65536;

HostConfig host(const std::string &bases, const std::string &extra = "") {
    return HostConfig::parse(R"({"cache-dir": "/c", )" + extra +
                                 R"("bases": {)" + bases + "}}",
                             "host.json");
}

const char *const kTwo =
    R"("a": {"url": "nfs://s/e/a.img", "fingerprint": "v1"},)"
    R"("b": {"url": "nbd+unix:///g?socket=/s.sock",)"
    R"( "options": {"max-inflight": 32}})";

/* A base as the daemon would have it once added from @want. */
CurrentBase live(const HostConfig &want, const std::string &name,
                 const std::optional<std::string> &pool = std::nullopt) {
    const auto &w = want.bases.at(name);
    CurrentBase c;
    c.name = name;
    c.has_base_node = c.has_cache_node = c.has_ic_node = c.has_export = true;
    c.url = w.url;
    c.fingerprint = w.fingerprint;
    c.given_cluster_size = w.options.cluster_size;
    c.cluster_size = w.options.cluster_size.value_or(kCluster);
    c.settings = icctl::expected_settings(w.options, c.cluster_size,
                                          want.pool_size.value_or(0));
    c.pool = pool;
    return c;
}

std::string describe(const std::vector<Action> &plan) {
    std::string s;
    for (const Action &a : plan) {
        static const char *const kNames[] = {"remove", "delete-pool",
                                             "create-pool", "add", "reopen"};
        s += std::string(kNames[static_cast<int>(a.kind)]) + " " + a.name +
             (a.replace ? " (replace)" : "") + ": " + a.reason + "\n";
    }
    return s;
}

TEST(ApplyPlan, EmptyDaemonGetsEveryBase) {
    const HostConfig want = host(kTwo);
    EXPECT_EQ(describe(icctl::plan_apply(want, {})),
              "add a: new\nadd b: new\n");
}

TEST(ApplyPlan, MatchingDaemonNeedsNothing) {
    const HostConfig want = host(kTwo);
    CurrentState have;
    have.bases = {live(want, "a"), live(want, "b")};
    EXPECT_TRUE(icctl::plan_apply(want, have).empty());
}

TEST(ApplyPlan, ATunableIsReopened) {
    const HostConfig before = host(kTwo);
    CurrentState have;
    have.bases = {live(before, "a"), live(before, "b")};
    const HostConfig want =
        host(R"("a": {"url": "nfs://s/e/a.img", "fingerprint": "v1",)"
             R"( "options": {"miss-timeout": 5, "max-fetch": "2M"}},)"
             R"("b": {"url": "nbd+unix:///g?socket=/s.sock"})");
    /* b's max-inflight goes back to the default; a's read-ahead follows
     * its max-fetch, as the driver's default does. */
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "reopen a: max-fetch 1048576 -> 2097152, read-ahead 2097152 -> "
              "4194304, miss-timeout 20 -> 5\n"
              "reopen b: max-inflight 32 -> 16\n");
}

TEST(ApplyPlan, AnUnlistedBaseIsRemoved) {
    const HostConfig before = host(kTwo);
    CurrentState have;
    have.bases = {live(before, "a"), live(before, "b")};
    const HostConfig want = host(R"("a": {"url": "nfs://s/e/a.img",)"
                                 R"( "fingerprint": "v1"})");
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "remove b: no longer listed\n");
}

TEST(ApplyPlan, StrongOptionsAndUrlReplace) {
    const HostConfig before = host(kTwo);
    CurrentState have;
    have.bases = {live(before, "a"), live(before, "b")};
    const HostConfig want =
        host(R"("a": {"url": "nfs://s/e/a.img", "fingerprint": "v2"},)"
             R"("b": {"url": "nbd+unix:///g2?socket=/s.sock",)"
             R"( "options": {"max-inflight": 32, "cluster-size": "128K"}})");
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "remove a (replace): fingerprint v1 -> v2\n"
              "remove b (replace): url nbd+unix:///g?socket=/s.sock -> "
              "nbd+unix:///g2?socket=/s.sock\n"
              "add a (replace): fingerprint v1 -> v2\n"
              "add b (replace): url nbd+unix:///g?socket=/s.sock -> "
              "nbd+unix:///g2?socket=/s.sock\n");
    have.bases[1].url = want.bases.at("b").url;
    const std::string plan = describe(icctl::plan_apply(want, have));
    EXPECT_EQ(plan.substr(plan.find('\n') + 1),
              "remove b (replace): cluster-size 65536 -> 131072\n"
              "add a (replace): fingerprint v1 -> v2\n"
              "add b (replace): cluster-size 65536 -> 131072\n");
}

TEST(ApplyPlan, AHalfMadeBaseIsMadeAgain) {
    const HostConfig want = host(kTwo);
    CurrentState have;
    have.bases = {live(want, "a"), live(want, "b")};
    have.bases[0].has_export = false;
    have.bases[0].has_ic_node = false;
    have.bases[0].settings.reset();
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "remove a (replace): incomplete, missing ic-a, export ic-a\n"
              "add a (replace): incomplete, missing ic-a, export ic-a\n");
}

TEST(ApplyPlan, PoolIdsNameTheirSize) {
    EXPECT_EQ(icctl::pool_id_for(std::uint64_t{1} << 30), "ic-pool-1G");
    EXPECT_EQ(icctl::pool_id_for(std::uint64_t{3} << 40), "ic-pool-3T");
    EXPECT_EQ(icctl::pool_id_for(std::uint64_t{1536} << 20), "ic-pool-1536M");
    EXPECT_EQ(icctl::pool_id_for(1000), "ic-pool-1000");
    EXPECT_TRUE(icctl::is_managed_pool("ic-pool"));
    EXPECT_TRUE(icctl::is_managed_pool("ic-pool-2G"));
    EXPECT_FALSE(icctl::is_managed_pool("ic-poolside"));
    EXPECT_FALSE(icctl::is_managed_pool("pool0"));
}

const std::uint64_t kGiB = std::uint64_t{1} << 30;

TEST(ApplyPlan, PoolIsCreatedAndBasesJoinItLive) {
    const HostConfig before = host(kTwo);
    CurrentState have;
    have.bases = {live(before, "a")};
    const HostConfig want = host(kTwo, R"("pool-size": "1G", )");
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "create-pool ic-pool-1G: 1073741824\n"
              "add b: new\n"
              "reopen a: scan-threshold 0 -> 134217728, pool (none) -> "
              "ic-pool-1G\n");
}

TEST(ApplyPlan, PoolMembersMatching) {
    const HostConfig want = host(kTwo, R"("pool-size": "1G", )");
    CurrentState have;
    have.bases = {live(want, "a", "ic-pool-1G"), live(want, "b", "ic-pool-1G")};
    have.pools = {CurrentPool{"ic-pool-1G", kGiB, 2}};
    EXPECT_TRUE(icctl::plan_apply(want, have).empty());
}

TEST(ApplyPlan, AnOwnBoundLeftOutInThePoolIsReopened) {
    const HostConfig before =
        host(R"("a": {"url": "nfs://s/e/a.img", "options": )"
             R"({"cache-size": "4M", "scan-threshold": "1M"}})",
             R"("pool-size": "1G", )");
    CurrentState have;
    have.bases = {live(before, "a", "ic-pool-1G")};
    have.pools = {CurrentPool{"ic-pool-1G", kGiB, 1}};
    const HostConfig want =
        host(R"("a": {"url": "nfs://s/e/a.img", "options": )"
             R"({"scan-threshold": "1M"}})",
             R"("pool-size": "1G", )");
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "reopen a: cache-size 4194304 -> 0\n");
}

/* A new size is a new pool: the members move to it live, the old goes. */
TEST(ApplyPlan, ANewPoolSizeMovesTheMembers) {
    const HostConfig before = host(kTwo, R"("pool-size": "1G", )");
    CurrentState have;
    /* An earlier version's pool: managed too. */
    have.bases = {live(before, "a", "ic-pool"), live(before, "b", "ic-pool")};
    have.pools = {CurrentPool{"ic-pool", kGiB, 2}};
    const HostConfig want = host(kTwo, R"("pool-size": "2G", )");
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "create-pool ic-pool-2G: 2147483648\n"
              "reopen a: scan-threshold 134217728 -> 268435456, "
              "pool ic-pool -> ic-pool-2G\n"
              "reopen b: scan-threshold 134217728 -> 268435456, "
              "pool ic-pool -> ic-pool-2G\n"
              "delete-pool ic-pool: replaced by ic-pool-2G\n");
}

TEST(ApplyPlan, PoolWithoutMembersIsMadeAgain) {
    const HostConfig before = host(kTwo, R"("pool-size": "1G", )");
    CurrentState have;
    have.bases = {live(before, "a", "ic-pool-1G"),
                  live(before, "b", "ic-pool-1G")};
    have.pools = {CurrentPool{"ic-pool-1G", kGiB, 2}};
    /* Both bases go, and the pool with them. */
    const HostConfig want = host("", R"("pool-size": "2G", )");
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "remove a: no longer listed\nremove b: no longer listed\n"
              "create-pool ic-pool-2G: 2147483648\n"
              "delete-pool ic-pool-1G: replaced by ic-pool-2G\n");
}

TEST(ApplyPlan, LeavingThePoolIsAReopen) {
    const HostConfig before = host(kTwo, R"("pool-size": "1G", )");
    CurrentState have;
    have.bases = {live(before, "a", "ic-pool-1G")};
    have.pools = {CurrentPool{"ic-pool-1G", kGiB, 1}};
    const HostConfig want = host(R"("a": {"url": "nfs://s/e/a.img",)"
                                 R"( "fingerprint": "v1"})");
    EXPECT_EQ(describe(icctl::plan_apply(want, have)),
              "reopen a: scan-threshold 134217728 -> 0, "
              "pool ic-pool-1G -> (none)\n"
              "delete-pool ic-pool-1G: pool-size no longer set\n");
}

/* Nodes apply does not manage keep their pool: apply refuses. */
TEST(ApplyPlan, APoolWithOtherMembersIsNotDeleted) {
    const HostConfig before = host(kTwo, R"("pool-size": "1G", )");
    CurrentState have;
    have.bases = {live(before, "a", "ic-pool-1G")};
    have.pools = {CurrentPool{"ic-pool-1G", kGiB, 2}};
    const HostConfig want = host(kTwo);
    try {
        icctl::plan_apply(want, have);
        FAIL() << "no error";
    } catch (const PlanError &e) {
        EXPECT_STREQ(e.what(),
                     "the pool ic-pool-1G has 2 member node(s), 1 of them "
                     "apply's: cannot delete it while other nodes use it "
                     "(blockdev-reopen or remove them first)");
    }
    /* A pool by that name but of another size was not made by apply. */
    have.pools = {CurrentPool{"ic-pool-1G", 2 * kGiB, 1}};
    EXPECT_THROW(icctl::plan_apply(before, have), PlanError);
}

TEST(ApplyPlan, ABaseUnderAVmDiskIsNotRemoved) {
    const HostConfig before = host(kTwo);
    CurrentState have;
    have.bases = {live(before, "a"), live(before, "b")};
    have.bases[1].vm_users = {"web1", "web2"};
    const HostConfig want = host(R"("a": {"url": "nfs://s/e/a.img",)"
                                 R"( "fingerprint": "v1"})");
    try {
        icctl::plan_apply(want, have);
        FAIL() << "no error";
    } catch (const PlanError &e) {
        EXPECT_STREQ(e.what(), "bases.b: cannot remove it (no longer listed): "
                               "the disks of VM(s) web1, web2 are overlays "
                               "over it (vm-disk remove them first)");
    }
    /* A reopen leaves the overlays in place. */
    const HostConfig tuned =
        host(R"("a": {"url": "nfs://s/e/a.img", "fingerprint": "v1"},)"
             R"("b": {"url": "nbd+unix:///g?socket=/s.sock"})");
    EXPECT_EQ(describe(icctl::plan_apply(tuned, have)),
              "reopen b: max-inflight 32 -> 16\n");
}

TEST(ApplyPlan, BoundedSettings) {
    icctl::NodeOptions o;
    o.cache_size = (std::uint64_t{1} << 20) + 100;
    const auto s = icctl::expected_settings(o, kCluster, 0);
    EXPECT_EQ(s.cache_size, std::uint64_t{1} << 20); /* whole clusters */
    EXPECT_EQ(s.scan_threshold, ((std::uint64_t{1} << 20) + 100) / 8);
    const auto p = icctl::expected_settings({}, kCluster, 8 << 20);
    EXPECT_EQ(p.scan_threshold, std::uint64_t{1} << 20);
    EXPECT_EQ(icctl::expected_settings({}, kCluster, 0).scan_threshold, 0U);
    icctl::NodeOptions bad;
    bad.max_fetch = 4096;
    EXPECT_THROW(icctl::expected_settings(bad, kCluster, 0), PlanError);
}

} // namespace
