/*
 * intellicache core: the on-disk header and metadata blocks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_meta_codec.hpp"

#include "ic_bytes.hpp"
#include "ic_geometry.hpp"
#include "ic_message.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstring>

namespace intellicache {

namespace {

std::uint32_t meta_block_crc(std::uint64_t index, const std::uint8_t *block) {
    std::array<std::uint8_t, 8> index_le{};
    put_le64(index_le.data(), index);
    const std::uint32_t crc = crc_of(index_le.data(), index_le.size());
    return crc_update(crc, block + MetaBlockCodec::kInstanceOffset,
                      IC_META_BLOCK_SIZE - MetaBlockCodec::kInstanceOffset);
}

/* The geometry fields the header repeats, in header order. */
struct StoredGeometry {
    std::uint64_t cluster_count;
    std::uint64_t meta_offset;
    std::uint64_t meta_blocks;
    std::uint64_t data_offset;
};

} // namespace

void HeaderCodec::encode(const IcHeaderInfo &h, std::uint8_t *out) {
    std::memset(out, 0, IC_HEADER_SIZE);
    std::copy(kMagic.begin(), kMagic.end(), out);
    put_le32(out + kVersionOffset,
             h.version != 0 ? h.version : IC_FORMAT_VERSION);
    put_le32(out + kHeaderSizeOffset, IC_HEADER_SIZE);
    put_le32(out + kClusterSizeOffset, h.cluster_size);
    put_le64(out + kBaseSizeOffset, h.base_size);
    /* An invalid geometry leaves these zero; check() calls that corrupt. */
    MessageBuffer none(nullptr, 0);
    if (auto g = Geometry::compute(h.base_size, h.cluster_size, none)) {
        put_le64(out + kClusterCountOffset, g->cluster_count());
        put_le64(out + kMetaOffsetOffset, g->raw().meta_offset);
        put_le64(out + kMetaBlocksOffset, g->meta_blocks());
        put_le64(out + kDataOffsetOffset, g->raw().data_offset);
    }
    put_le64(out + kInstanceOffset, h.instance);
    std::memcpy(out + kFingerprintOffset, h.fingerprint, IC_FINGERPRINT_SIZE);
    put_le32(out + kCrcOffset, crc_of(out, kCrcOffset));
}

IcHeaderStatus HeaderCodec::check(const std::uint8_t *buf, std::size_t buf_len,
                                  std::uint64_t file_size,
                                  const IcHeaderInfo *expected,
                                  IcHeaderInfo *found, MessageBuffer &why) {
    if (found != nullptr) {
        *found = IcHeaderInfo{};
    }
    if (buf == nullptr) {
        buf_len = 0;
    }
    const std::size_t len = std::min<std::size_t>(buf_len, IC_HEADER_SIZE);

    /* Zeros (or nothing) where the header should be: never formatted. */
    if (all_zero(buf, len)) {
        why.set("cache file is not formatted (header is all zeros)");
        return IC_HEADER_EMPTY;
    }
    /* Compare as much of the magic as we have: a short file that starts
     * differently is someone else's file, not a truncated cache. */
    const std::size_t magic_len = std::min(len, kMagic.size());
    if (!std::equal(buf, buf + magic_len, kMagic.begin())) {
        why.set("not an intellicache cache file (bad magic)");
        return IC_HEADER_FOREIGN;
    }
    if (len < IC_HEADER_SIZE) {
        why.set("cache file header is truncated (%zu of %d bytes)", len,
                IC_HEADER_SIZE);
        return IC_HEADER_TRUNCATED;
    }
    const std::uint32_t stored_crc = get_le32(buf + kCrcOffset);
    const std::uint32_t crc = crc_of(buf, kCrcOffset);
    if (stored_crc != crc) {
        why.set("cache header checksum mismatch (stored 0x%08" PRIx32
                ", computed 0x%08" PRIx32 ")",
                stored_crc, crc);
        return IC_HEADER_CORRUPT;
    }

    IcHeaderInfo h{};
    h.version = get_le32(buf + kVersionOffset);
    h.cluster_size = get_le32(buf + kClusterSizeOffset);
    h.base_size = get_le64(buf + kBaseSizeOffset);
    h.instance = get_le64(buf + kInstanceOffset);
    std::memcpy(h.fingerprint, buf + kFingerprintOffset, IC_FINGERPRINT_SIZE);
    if (found != nullptr) {
        *found = h;
    }

    if (h.version != IC_FORMAT_VERSION) {
        why.set("cache format version %" PRIu32
                " is not supported (this build reads version %d)",
                h.version, IC_FORMAT_VERSION);
        return IC_HEADER_VERSION;
    }
    const std::uint32_t header_size = get_le32(buf + kHeaderSizeOffset);
    if (header_size != IC_HEADER_SIZE) {
        why.set("cache header size %" PRIu32 " is invalid (expected %d)",
                header_size, IC_HEADER_SIZE);
        return IC_HEADER_CORRUPT;
    }
    const std::uint32_t reserved = get_le32(buf + kReservedOffset);
    if (reserved != 0 ||
        !all_zero(buf + kUsedSize, IC_HEADER_SIZE - kUsedSize)) {
        why.set("cache header has non-zero reserved bytes");
        return IC_HEADER_CORRUPT;
    }

    char geometry_why[128] = "";
    MessageBuffer geometry_msg(geometry_why, sizeof(geometry_why));
    const auto g = Geometry::compute(h.base_size, h.cluster_size, geometry_msg);
    if (!g) {
        why.set("cache header is invalid: %s", geometry_why);
        return IC_HEADER_CORRUPT;
    }
    const StoredGeometry stored{
        get_le64(buf + kClusterCountOffset), get_le64(buf + kMetaOffsetOffset),
        get_le64(buf + kMetaBlocksOffset), get_le64(buf + kDataOffsetOffset)};
    if (stored.cluster_count != g->cluster_count() ||
        stored.meta_offset != g->raw().meta_offset ||
        stored.meta_blocks != g->meta_blocks() ||
        stored.data_offset != g->raw().data_offset) {
        why.set("cache header layout is inconsistent (cluster count %" PRIu64
                ", meta offset %" PRIu64 ", meta blocks %" PRIu64
                ", data offset %" PRIu64 ")",
                stored.cluster_count, stored.meta_offset, stored.meta_blocks,
                stored.data_offset);
        return IC_HEADER_CORRUPT;
    }

    if (expected != nullptr) {
        if (expected->cluster_size != 0 &&
            expected->cluster_size != h.cluster_size) {
            why.set("cache has cluster-size %" PRIu32 ", cluster-size %" PRIu32
                    " was requested",
                    h.cluster_size, expected->cluster_size);
            return IC_HEADER_CLUSTER_SIZE;
        }
        if (expected->base_size != h.base_size) {
            why.set("cache is for a base of %" PRIu64
                    " bytes, this base has %" PRIu64 " bytes",
                    h.base_size, expected->base_size);
            return IC_HEADER_BASE_SIZE;
        }
        if (std::memcmp(expected->fingerprint, h.fingerprint,
                        IC_FINGERPRINT_SIZE) != 0) {
            why.set("cache is for another base of the same size "
                    "(fingerprint mismatch)");
            return IC_HEADER_FINGERPRINT;
        }
    }
    if (file_size < g->raw().file_size) {
        why.set("cache file is truncated (%" PRIu64
                " bytes, its layout needs %" PRIu64 ")",
                file_size, g->raw().file_size);
        return IC_HEADER_TRUNCATED;
    }
    return IC_HEADER_OK;
}

void MetaBlockCodec::encode(std::uint64_t index, std::uint64_t instance,
                            const Words &bits, std::uint8_t *out) {
    std::copy(kMagic.begin(), kMagic.end(), out);
    put_le64(out + kInstanceOffset, instance);
    for (std::size_t w = 0; w < kWords; w++) {
        put_le64(out + IC_META_BLOCK_HEADER + w * 8, bits[w]);
    }
    put_le32(out + kCrcOffset, meta_block_crc(index, out));
}

IcMetaStatus MetaBlockCodec::decode(std::uint64_t index, std::uint64_t instance,
                                    const std::uint8_t *buf, Words &bits) {
    if (all_zero(buf, IC_META_BLOCK_SIZE)) {
        return IC_META_EMPTY;
    }
    if (!std::equal(kMagic.begin(), kMagic.end(), buf) ||
        get_le32(buf + kCrcOffset) != meta_block_crc(index, buf)) {
        return IC_META_DAMAGED;
    }
    if (get_le64(buf + kInstanceOffset) != instance) {
        return IC_META_STALE;
    }
    for (std::size_t w = 0; w < kWords; w++) {
        bits[w] = get_le64(buf + IC_META_BLOCK_HEADER + w * 8);
    }
    return IC_META_OK;
}

} // namespace intellicache
