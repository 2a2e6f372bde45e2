/*
 * intellicache core: little-endian field access for the on-disk format.
 *
 * Byte-wise on purpose: independent of host byte order and alignment, and
 * free of aliasing concerns.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_BYTES_HPP
#define IC_BYTES_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <zlib.h>

namespace intellicache {

inline void put_le32(std::uint8_t *p, std::uint32_t v) {
    for (std::size_t i = 0; i < 4; i++) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

inline void put_le64(std::uint8_t *p, std::uint64_t v) {
    for (std::size_t i = 0; i < 8; i++) {
        p[i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

inline std::uint32_t get_le32(const std::uint8_t *p) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; i++) {
        v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
    }
    return v;
}

inline std::uint64_t get_le64(const std::uint8_t *p) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; i++) {
        v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    }
    return v;
}

/* zlib's crc32 of @len bytes at @p, continuing @crc (any length). */
inline std::uint32_t crc_update(std::uint32_t crc, const std::uint8_t *p,
                                std::size_t len) {
    uLong c = crc;
    while (len > 0) {
        /* zlib takes uInt lengths: feed large buffers in pieces. */
        const auto n = static_cast<uInt>(std::min<std::size_t>(len, 1U << 30));
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return static_cast<std::uint32_t>(c);
}

/* zlib's crc32 of @len bytes at @p. */
inline std::uint32_t crc_of(const std::uint8_t *p, std::size_t len) {
    return crc_update(static_cast<std::uint32_t>(crc32(0, nullptr, 0)), p, len);
}

/* True if all @len bytes at @p are zero. */
inline bool all_zero(const std::uint8_t *p, std::size_t len) {
    for (std::size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

} // namespace intellicache

#endif
