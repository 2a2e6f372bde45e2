/*
 * Unit tests: boot profiles (ProfileRecorder, ProfileCodec and their C
 * API): what is recorded, the file format, and every way a file can be
 * refused.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "ic_bytes.hpp"
#include "ic_message.hpp"
#include "ic_profile.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using intellicache::MessageBuffer;
using intellicache::ProfileCodec;
using intellicache::ProfileRecorder;

IcGeometry geometry(uint64_t base_size, uint32_t cluster_size) {
    IcGeometry g{};
    char why[128];
    EXPECT_TRUE(ic_geometry_init(&g, base_size, cluster_size, why, sizeof(why)))
        << why;
    return g;
}

std::vector<uint8_t> fingerprint(uint8_t seed) {
    std::vector<uint8_t> fp(IC_FINGERPRINT_SIZE);
    for (size_t i = 0; i < fp.size(); i++) {
        fp[i] = static_cast<uint8_t>(seed + i);
    }
    return fp;
}

std::vector<uint8_t> encode(const ProfileRecorder &r) {
    std::vector<uint8_t> buf(r.encoded_size());
    r.encode(buf.data());
    return buf;
}

struct Decoded {
    IcProfileStatus status;
    IcProfileHeader header;
    std::vector<IcProfileEntry> entries;
    std::string why;
};

Decoded decode(const std::vector<uint8_t> &buf,
               const IcProfileHeader *expected = nullptr) {
    Decoded d{};
    char why[256] = "";
    MessageBuffer msg(why, sizeof(why));
    d.status = ProfileCodec::decode(buf.data(), buf.size(), expected, d.header,
                                    &d.entries, msg);
    d.why = why;
    return d;
}

IcProfileHeader expect_for(uint64_t base_size, const std::vector<uint8_t> &fp) {
    IcProfileHeader h{};
    h.base_size = base_size;
    std::memcpy(h.fingerprint, fp.data(), IC_FINGERPRINT_SIZE);
    return h;
}

/* Rewrite the trailing checksum after a deliberate change. */
void fix_crc(std::vector<uint8_t> &buf) {
    const size_t end = buf.size() - 4;
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, buf.data(), static_cast<uInt>(end));
    intellicache::put_le32(buf.data() + end, static_cast<uint32_t>(crc));
}

TEST(ProfileRecorder, RecordsFirstReadsInOrderWithTheirTime) {
    const IcGeometry g = geometry(1 << 20, 4096); /* 256 clusters */
    const auto fp = fingerprint(1);
    ProfileRecorder r(g, fp.data(), 1000);
    r.note(8192, 4096, 1000);         /* cluster 2 */
    r.note(0, 10000, 1005);           /* clusters 0, 1, (2 seen) */
    r.note(8192, 1, 1010);            /* seen */
    r.note((1 << 20) - 1, 100, 1020); /* the last cluster; past the end cut */
    r.note(1 << 20, 4096, 1030);      /* past the base: nothing */
    r.note(4096, 0, 1040);            /* empty: nothing */
    EXPECT_EQ(r.entries(), 4U);
    EXPECT_EQ(r.dropped(), 0U);

    const Decoded d = decode(encode(r), nullptr);
    ASSERT_EQ(d.status, IC_PROFILE_OK) << d.why;
    EXPECT_EQ(d.header.version, unsigned{IC_PROFILE_VERSION});
    EXPECT_EQ(d.header.cluster_size, 4096U);
    EXPECT_EQ(d.header.base_size, uint64_t{1} << 20);
    EXPECT_EQ(std::memcmp(d.header.fingerprint, fp.data(), fp.size()), 0);
    ASSERT_EQ(d.entries.size(), 4U);
    const uint32_t want[][2] = {{2, 0}, {0, 5}, {1, 5}, {255, 20}};
    for (size_t i = 0; i < 4; i++) {
        EXPECT_EQ(d.entries[i].cluster, want[i][0]) << i;
        EXPECT_EQ(d.entries[i].ms, want[i][1]) << i;
    }
}

TEST(ProfileRecorder, ClockBeforeTheStartCountsAsZero) {
    const IcGeometry g = geometry(65536, 4096);
    const auto fp = fingerprint(2);
    ProfileRecorder r(g, fp.data(), 5000);
    r.note(0, 1, 4000);
    const Decoded d = decode(encode(r));
    ASSERT_EQ(d.status, IC_PROFILE_OK);
    EXPECT_EQ(d.entries.at(0).ms, 0U);
}

TEST(ProfileRecorder, EmptyProfileIsValid) {
    const IcGeometry g = geometry(65536, 4096);
    const auto fp = fingerprint(3);
    const ProfileRecorder r(g, fp.data(), 0);
    const auto buf = encode(r);
    EXPECT_EQ(buf.size(), size_t{IC_PROFILE_HEADER_SIZE} + 4);
    const Decoded d = decode(buf);
    EXPECT_EQ(d.status, IC_PROFILE_OK) << d.why;
    EXPECT_TRUE(d.entries.empty());
}

TEST(ProfileCodec, RefusesAnotherBase) {
    const IcGeometry g = geometry(1 << 20, 4096);
    const auto fp = fingerprint(4);
    ProfileRecorder r(g, fp.data(), 0);
    r.note(0, 4096, 0);
    const auto buf = encode(r);

    const IcProfileHeader same = expect_for(1 << 20, fp);
    EXPECT_EQ(decode(buf, &same).status, IC_PROFILE_OK);

    const IcProfileHeader bigger = expect_for(2 << 20, fp);
    Decoded d = decode(buf, &bigger);
    EXPECT_EQ(d.status, IC_PROFILE_OTHER_BASE);
    EXPECT_EQ(d.why, "recorded for a base of 1048576 bytes; this base has "
                     "2097152");

    const IcProfileHeader other = expect_for(1 << 20, fingerprint(5));
    d = decode(buf, &other);
    EXPECT_EQ(d.status, IC_PROFILE_OTHER_BASE);
    EXPECT_EQ(d.why, "recorded for another base of the same size (its "
                     "fingerprint differs)");
}

class ProfileDamage : public ::testing::Test {
protected:
    void SetUp() override {
        const IcGeometry g = geometry(1 << 20, 4096);
        const auto fp = fingerprint(6);
        ProfileRecorder r(g, fp.data(), 0);
        for (uint64_t c = 0; c < 10; c++) {
            r.note(c * 4096 * 3, 1, c);
        }
        buf_ = encode(r);
    }
    std::vector<uint8_t> buf_;
};

TEST_F(ProfileDamage, NotAProfile) {
    std::vector<uint8_t> zeros(200);
    EXPECT_EQ(decode(zeros).status, IC_PROFILE_FOREIGN);
    EXPECT_EQ(decode({}).status, IC_PROFILE_FOREIGN);
    buf_[0] = 'X';
    const Decoded d = decode(buf_);
    EXPECT_EQ(d.status, IC_PROFILE_FOREIGN);
    EXPECT_EQ(d.why, "not an intellicache profile (no ICPROFIL magic)");
}

TEST_F(ProfileDamage, TruncatedAnywhere) {
    for (size_t len = 8; len < buf_.size(); len++) {
        const std::vector<uint8_t> cut(buf_.begin(),
                                       buf_.begin() + static_cast<long>(len));
        const Decoded d = decode(cut);
        EXPECT_EQ(d.status, IC_PROFILE_TRUNCATED) << "length " << len;
        EXPECT_NE(d.why.find("truncated"), std::string::npos) << d.why;
    }
}

TEST_F(ProfileDamage, EveryFlippedBitIsCaught) {
    for (size_t byte = 8; byte < buf_.size(); byte++) {
        for (int bit = 0; bit < 8; bit++) {
            auto bad = buf_;
            bad[byte] ^= static_cast<uint8_t>(1U << bit);
            const Decoded d = decode(bad);
            EXPECT_NE(d.status, IC_PROFILE_OK)
                << "byte " << byte << " bit " << bit;
        }
    }
}

TEST_F(ProfileDamage, ChecksumMismatch) {
    buf_[IC_PROFILE_HEADER_SIZE + 1] ^= 1;
    const Decoded d = decode(buf_);
    EXPECT_EQ(d.status, IC_PROFILE_CORRUPT);
    EXPECT_EQ(d.why, "checksum mismatch: the profile is damaged");
}

TEST_F(ProfileDamage, TrailingGarbage) {
    buf_.push_back(0);
    const Decoded d = decode(buf_);
    EXPECT_EQ(d.status, IC_PROFILE_CORRUPT);
    EXPECT_EQ(d.why, "1 bytes of garbage after the 10 entries");
}

TEST_F(ProfileDamage, HugeCountDoesNotOverflow) {
    intellicache::put_le64(buf_.data() + 56, UINT64_MAX);
    fix_crc(buf_);
    EXPECT_EQ(decode(buf_).status, IC_PROFILE_TRUNCATED);
}

TEST_F(ProfileDamage, OtherVersion) {
    intellicache::put_le32(buf_.data() + 8, 2);
    fix_crc(buf_);
    const Decoded d = decode(buf_);
    EXPECT_EQ(d.status, IC_PROFILE_VERSION_MISMATCH);
    EXPECT_EQ(d.why, "profile format version 2, this node reads 1");
}

TEST_F(ProfileDamage, ClusterBeyondTheBase) {
    intellicache::put_le32(buf_.data() + IC_PROFILE_HEADER_SIZE + 8, 256);
    fix_crc(buf_);
    const Decoded d = decode(buf_);
    EXPECT_EQ(d.status, IC_PROFILE_CORRUPT);
    EXPECT_EQ(d.why, "entry 1: cluster 256 is beyond the base's 256 clusters");
}

TEST_F(ProfileDamage, BadGeometry) {
    intellicache::put_le32(buf_.data() + 12, 3000); /* cluster size */
    fix_crc(buf_);
    const Decoded d = decode(buf_);
    EXPECT_EQ(d.status, IC_PROFILE_CORRUPT);
    EXPECT_EQ(d.why.rfind("bad geometry: ", 0), 0U) << d.why;
}

TEST(ProfileCapi, RoundTrip) {
    const IcGeometry g = geometry(1 << 20, 65536);
    const auto fp = fingerprint(7);
    IcProfileRecorder *r = ic_profile_recorder_new(&g, fp.data(), 100);
    ASSERT_NE(r, nullptr);
    ic_profile_recorder_note(r, 65536 * 3, 65536 * 2, 150);
    EXPECT_EQ(ic_profile_recorder_entries(r), 2U);
    EXPECT_EQ(ic_profile_recorder_dropped(r), 0U);
    std::vector<uint8_t> buf(ic_profile_recorder_size(r));
    EXPECT_EQ(buf.size(), ic_profile_encoded_size(2));
    ic_profile_recorder_encode(r, buf.data());
    ic_profile_recorder_free(r);

    const IcProfileHeader want = expect_for(1 << 20, fp);
    IcProfileHeader found{};
    IcProfileEntry *entries = nullptr;
    char why[128];
    ASSERT_EQ(ic_profile_decode(buf.data(), buf.size(), &want, &found, &entries,
                                why, sizeof(why)),
              IC_PROFILE_OK)
        << why;
    EXPECT_EQ(found.count, 2U);
    EXPECT_EQ(found.cluster_size, 65536U);
    EXPECT_EQ(entries[0].cluster, 3U);
    EXPECT_EQ(entries[1].cluster, 4U);
    EXPECT_EQ(entries[1].ms, 50U);
    std::free(entries);

    /* Header only: no entries array. */
    EXPECT_EQ(ic_profile_decode(buf.data(), buf.size(), nullptr, &found,
                                nullptr, why, sizeof(why)),
              IC_PROFILE_OK);
    buf.resize(10);
    EXPECT_EQ(ic_profile_decode(buf.data(), buf.size(), nullptr, &found,
                                &entries, why, sizeof(why)),
              IC_PROFILE_TRUNCATED);
}

} // namespace
