/*
 * Unit tests of intellicache-ctl's jobs: query-jobs parsed and shown, and
 * how a job ended, from the events received while waiting for it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "warmup.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using icctl::JsonPtr;

JsonPtr parse(const std::string &text) {
    std::string error;
    JsonPtr v = icctl::json_parse(text, error);
    EXPECT_TRUE(v) << error;
    return v;
}

TEST(CtlWarmup, JobsTable) {
    const JsonPtr reply = parse(
        R"([{"id": "prefetch-ic0", "type": "intellicache-prefetch",
             "status": "running", "current-progress": 1048576,
             "total-progress": 4194304},
            {"id": "m", "type": "mirror", "status": "concluded",
             "current-progress": 0, "total-progress": 0,
             "error": "No space left on device"}, 7])");
    const auto jobs = icctl::parse_jobs(reply.get());
    ASSERT_EQ(jobs.size(), 2U) << "the entry that is no object is skipped";
    EXPECT_EQ(icctl::jobs_table(jobs),
              "prefetch-ic0  intellicache-prefetch  running  1.0M/4.0M "
              "(25.0%)\n"
              "m  mirror  concluded  0B/0B (0.0%)  error: No space left on "
              "device\n");
    EXPECT_EQ(icctl::jobs_table({}), "no jobs\n");
}

TEST(CtlWarmup, OutcomeFromEvents) {
    std::vector<JsonPtr> events;
    EXPECT_FALSE(icctl::job_outcome(events, "j"));
    events.push_back(parse(
        R"({"event": "JOB_STATUS_CHANGE", "data": {"id": "j", "status": "concluded"}})"));
    events.push_back(parse(
        R"({"event": "BLOCK_JOB_COMPLETED", "data": {"device": "other", "error": "x"}})"));
    EXPECT_FALSE(icctl::job_outcome(events, "j")) << "not this job's end";
    events.push_back(parse(
        R"({"event": "BLOCK_JOB_COMPLETED", "data": {"device": "j", "len": 4, "offset": 4}})"));
    EXPECT_EQ(icctl::job_outcome(events, "j"), std::string(""));
    events.push_back(parse(
        R"({"event": "BLOCK_JOB_COMPLETED", "data": {"device": "k", "error": "Input/output error"}})"));
    EXPECT_EQ(icctl::job_outcome(events, "k"),
              std::string("Input/output error"));
    events.push_back(
        parse(R"({"event": "BLOCK_JOB_CANCELLED", "data": {"device": "c"}})"));
    EXPECT_EQ(icctl::job_outcome(events, "c"), std::string("cancelled"));
}

} // namespace
