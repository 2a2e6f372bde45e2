/*
 * intellicache core: the on-disk header and metadata blocks.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_META_CODEC_HPP
#define IC_META_CODEC_HPP

#include "intellicache-core.h"

#include <array>
#include <cstddef>
#include <cstdint>

namespace intellicache {

class MessageBuffer;

/*
 * Header block, IC_HEADER_SIZE bytes, little endian:
 *
 *   [0, 8)     magic "INTLCACH"
 *   [8, 12)    version
 *   [12, 16)   header size (IC_HEADER_SIZE)
 *   [16, 20)   cluster size
 *   [20, 24)   reserved, 0
 *   [24, 32)   base size
 *   [32, 40)   cluster count      \
 *   [40, 48)   meta offset         |  redundant with the geometry computed
 *   [48, 56)   meta blocks         |  from base and cluster size: checked
 *   [56, 64)   data offset        /
 *   [64, 72)   instance
 *   [72, 104)  base fingerprint
 *   [104, 108) zlib crc32 of bytes [0, 104)
 *   [108, 4096) zero
 */
class HeaderCodec {
public:
    static constexpr std::array<std::uint8_t, 8> kMagic = {'I', 'N', 'T', 'L',
                                                           'C', 'A', 'C', 'H'};
    static constexpr std::size_t kVersionOffset = 8;
    static constexpr std::size_t kHeaderSizeOffset = 12;
    static constexpr std::size_t kClusterSizeOffset = 16;
    static constexpr std::size_t kReservedOffset = 20;
    static constexpr std::size_t kBaseSizeOffset = 24;
    static constexpr std::size_t kClusterCountOffset = 32;
    static constexpr std::size_t kMetaOffsetOffset = 40;
    static constexpr std::size_t kMetaBlocksOffset = 48;
    static constexpr std::size_t kDataOffsetOffset = 56;
    static constexpr std::size_t kInstanceOffset = 64;
    static constexpr std::size_t kFingerprintOffset = 72;
    static constexpr std::size_t kCrcOffset =
        kFingerprintOffset + IC_FINGERPRINT_SIZE;
    /* Bytes that carry information; the rest of the header is zero. */
    static constexpr std::size_t kUsedSize = kCrcOffset + 4;

    /* @h->version 0 means IC_FORMAT_VERSION. */
    static void encode(const IcHeaderInfo &h, std::uint8_t *out);
    /*
     * ic_header_check().  Checks run in this order, the first failure
     * wins: all zeros (EMPTY), magic (FOREIGN), buffer length (TRUNCATED),
     * checksum (CORRUPT), version (VERSION), fixed fields and layout
     * (CORRUPT), then against @expected (skipped if NULL): cluster size,
     * base size, fingerprint; finally the file length (TRUNCATED).
     */
    static IcHeaderStatus check(const std::uint8_t *buf, std::size_t buf_len,
                                std::uint64_t file_size,
                                const IcHeaderInfo *expected,
                                IcHeaderInfo *found, MessageBuffer &why);
};

/*
 * Metadata block, IC_META_BLOCK_SIZE bytes:
 *
 *   [0, 4)     magic "ICBM"
 *   [4, 8)     zlib crc32 of (block index as u64 LE) + bytes [8, 4096):
 *              binding the index catches a block written at the wrong place
 *   [8, 16)    instance of the format that wrote it
 *   [16, 4096) presence bits of the block's clusters, LSB first
 */
class MetaBlockCodec {
public:
    static constexpr std::array<std::uint8_t, 4> kMagic = {'I', 'C', 'B', 'M'};
    static constexpr std::size_t kCrcOffset = 4;
    static constexpr std::size_t kInstanceOffset = 8;
    static constexpr std::size_t kWords = IC_META_BLOCK_CLUSTERS / 64;
    static_assert(IC_META_BLOCK_CLUSTERS % 64 == 0,
                  "a block must hold whole bitmap words");
    static_assert(IC_META_BLOCK_HEADER + kWords * 8 == IC_META_BLOCK_SIZE);

    using Words = std::array<std::uint64_t, kWords>;

    static void encode(std::uint64_t index, std::uint64_t instance,
                       const Words &bits, std::uint8_t *out);
    /* Fills @bits only for an OK block. */
    static IcMetaStatus decode(std::uint64_t index, std::uint64_t instance,
                               const std::uint8_t *buf, Words &bits);
};

} // namespace intellicache

#endif
