/*
 * intellicache core: boot profiles, their recorder and their file format.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_profile.hpp"

#include "ic_bytes.hpp"
#include "ic_message.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstring>

namespace intellicache {

namespace {

constexpr std::size_t kVersionOffset = 8;
constexpr std::size_t kClusterSizeOffset = 12;
constexpr std::size_t kBaseSizeOffset = 16;
constexpr std::size_t kFingerprintOffset = 24;
constexpr std::size_t kCountOffset = kFingerprintOffset + IC_FINGERPRINT_SIZE;
static_assert(kCountOffset + 8 == IC_PROFILE_HEADER_SIZE);

} // namespace

void ProfileCodec::encode(const IcProfileHeader &h,
                          std::span<const IcProfileEntry> entries,
                          std::uint8_t *out) {
    std::memset(out, 0, IC_PROFILE_HEADER_SIZE);
    std::copy(kMagic.begin(), kMagic.end(), out);
    put_le32(out + kVersionOffset,
             h.version != 0 ? h.version : IC_PROFILE_VERSION);
    put_le32(out + kClusterSizeOffset, h.cluster_size);
    put_le64(out + kBaseSizeOffset, h.base_size);
    std::memcpy(out + kFingerprintOffset, h.fingerprint, IC_FINGERPRINT_SIZE);
    put_le64(out + kCountOffset, entries.size());
    std::uint8_t *p = out + IC_PROFILE_HEADER_SIZE;
    for (const IcProfileEntry &e : entries) {
        put_le32(p, e.cluster);
        put_le32(p + 4, e.ms);
        p += IC_PROFILE_ENTRY_SIZE;
    }
    put_le32(p, crc_of(out, static_cast<std::size_t>(p - out)));
}

IcProfileStatus ProfileCodec::decode(const std::uint8_t *buf, std::size_t len,
                                     const IcProfileHeader *expected,
                                     IcProfileHeader &found,
                                     std::vector<IcProfileEntry> *entries,
                                     MessageBuffer &why) {
    found = IcProfileHeader{};
    if (len < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), buf)) {
        why.set("not an intellicache profile (no ICPROFIL magic)");
        return IC_PROFILE_FOREIGN;
    }
    if (len < IC_PROFILE_HEADER_SIZE) {
        why.set("truncated: %zu bytes, shorter than the %u-byte header", len,
                IC_PROFILE_HEADER_SIZE);
        return IC_PROFILE_TRUNCATED;
    }
    found.version = get_le32(buf + kVersionOffset);
    found.cluster_size = get_le32(buf + kClusterSizeOffset);
    found.base_size = get_le64(buf + kBaseSizeOffset);
    std::memcpy(found.fingerprint, buf + kFingerprintOffset,
                IC_FINGERPRINT_SIZE);
    found.count = get_le64(buf + kCountOffset);
    if (found.version != IC_PROFILE_VERSION) {
        why.set("profile format version %" PRIu32 ", this node reads %u",
                found.version, IC_PROFILE_VERSION);
        return IC_PROFILE_VERSION_MISMATCH;
    }
    /* The count may be anything: compare without overflowing. */
    const std::size_t body = len - IC_PROFILE_HEADER_SIZE;
    if (body < 4 || found.count > (body - 4) / IC_PROFILE_ENTRY_SIZE) {
        why.set("truncated: %" PRIu64 " entries announced, %zu bytes follow "
                "the header",
                found.count, body);
        return IC_PROFILE_TRUNCATED;
    }
    const std::size_t end = encoded_size(found.count);
    if (len != end) {
        why.set("%zu bytes of garbage after the %" PRIu64 " entries", len - end,
                found.count);
        return IC_PROFILE_CORRUPT;
    }
    if (get_le32(buf + end - 4) != crc_of(buf, end - 4)) {
        why.set("checksum mismatch: the profile is damaged");
        return IC_PROFILE_CORRUPT;
    }
    IcGeometry g{};
    char geometry_why[128];
    if (!ic_geometry_init(&g, found.base_size, found.cluster_size, geometry_why,
                          sizeof(geometry_why))) {
        why.set("bad geometry: %s", geometry_why);
        return IC_PROFILE_CORRUPT;
    }
    if (expected != nullptr) {
        if (expected->base_size != found.base_size) {
            why.set("recorded for a base of %" PRIu64
                    " bytes; this base has %" PRIu64,
                    found.base_size, expected->base_size);
            return IC_PROFILE_OTHER_BASE;
        }
        if (std::memcmp(expected->fingerprint, found.fingerprint,
                        IC_FINGERPRINT_SIZE) != 0) {
            why.set("recorded for another base of the same size (its "
                    "fingerprint differs)");
            return IC_PROFILE_OTHER_BASE;
        }
    }
    std::vector<IcProfileEntry> out(found.count);
    const std::uint8_t *p = buf + IC_PROFILE_HEADER_SIZE;
    for (std::uint64_t i = 0; i < found.count; i++) {
        out[i].cluster = get_le32(p);
        out[i].ms = get_le32(p + 4);
        if (out[i].cluster >= g.cluster_count) {
            why.set("entry %" PRIu64 ": cluster %" PRIu32
                    " is beyond the base's %" PRIu64 " clusters",
                    i, out[i].cluster, g.cluster_count);
            return IC_PROFILE_CORRUPT;
        }
        p += IC_PROFILE_ENTRY_SIZE;
    }
    if (entries != nullptr) {
        *entries = std::move(out);
    }
    return IC_PROFILE_OK;
}

ProfileRecorder::ProfileRecorder(const IcGeometry &g,
                                 const std::uint8_t *fingerprint,
                                 std::uint64_t start_ms)
    : start_ms_(start_ms), seen_(g.cluster_count) {
    header_.version = IC_PROFILE_VERSION;
    header_.cluster_size = g.cluster_size;
    header_.base_size = g.base_size;
    std::memcpy(header_.fingerprint, fingerprint, IC_FINGERPRINT_SIZE);
}

void ProfileRecorder::note(std::uint64_t offset, std::uint64_t bytes,
                           std::uint64_t now_ms) {
    if (bytes == 0 || offset >= header_.base_size) {
        return;
    }
    const std::uint64_t cs = header_.cluster_size;
    const std::uint64_t last =
        (std::min(offset + bytes, header_.base_size) - 1) / cs;
    /* Milliseconds fit 32 bits for 49 days; later reads keep the last. */
    const std::uint64_t ms = now_ms > start_ms_ ? now_ms - start_ms_ : 0;
    const auto ms32 =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(ms, UINT32_MAX));
    for (std::uint64_t c = offset / cs; c <= last; c++) {
        if (seen_.test(c)) {
            continue;
        }
        seen_.set(c);
        if (entries_.size() >= IC_PROFILE_MAX_ENTRIES) {
            dropped_++;
            continue;
        }
        entries_.push_back({static_cast<std::uint32_t>(c), ms32});
    }
}

void ProfileRecorder::encode(std::uint8_t *out) const {
    IcProfileHeader h = header_;
    h.count = entries_.size();
    ProfileCodec::encode(h, entries_, out);
}

} // namespace intellicache
