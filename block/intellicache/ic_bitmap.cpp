/*
 * intellicache core: one bit per cluster.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_bitmap.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

namespace intellicache {

namespace {

constexpr std::uint64_t kAllOnes = ~std::uint64_t{0};

/* Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64. */
std::uint64_t bit_span(std::uint64_t lo, std::uint64_t hi) {
    const std::uint64_t upper =
        hi == 64 ? kAllOnes : (std::uint64_t{1} << hi) - 1;
    return upper & (kAllOnes << lo);
}

std::uint64_t *zeroed_words(std::size_t count) {
    /* calloc(0, ...) may return NULL: ask for one word at least. */
    void *words =
        std::calloc(std::max<std::size_t>(count, 1), sizeof(std::uint64_t));
    if (words == nullptr) {
        throw std::bad_alloc();
    }
    return static_cast<std::uint64_t *>(words);
}

} // namespace

ClusterBitmap::ClusterBitmap(std::uint64_t size)
    : word_count_(static_cast<std::size_t>((size + kWordBits - 1) / kWordBits)),
      words_(zeroed_words(word_count_)), size_(size) {}

std::uint64_t ClusterBitmap::valid_mask(std::size_t w) const {
    const std::uint64_t first = std::uint64_t{w} * kWordBits;
    if (first >= size_) {
        return 0;
    }
    return size_ - first >= kWordBits ? kAllOnes : bit_span(0, size_ - first);
}

std::uint64_t ClusterBitmap::update_range(std::uint64_t first, std::uint64_t n,
                                          bool set_bits) {
    if (first >= size_) {
        return 0;
    }
    const std::uint64_t end = first + std::min(n, size_ - first);
    std::uint64_t changed = 0;
    for (std::uint64_t i = first; i < end;) {
        const std::size_t w = word_of(i);
        const std::uint64_t lo = i % kWordBits;
        const std::uint64_t hi =
            std::min<std::uint64_t>(kWordBits, lo + (end - i));
        const std::uint64_t mask = bit_span(lo, hi);
        std::uint64_t &bits = words_[w];
        const std::uint64_t flips = set_bits ? (mask & ~bits) : (mask & bits);
        if (flips != 0) {
            bits ^= flips;
        }
        changed += static_cast<std::uint64_t>(std::popcount(flips));
        i += hi - lo;
    }
    if (set_bits) {
        count_ += changed;
    } else {
        count_ -= changed;
    }
    return changed;
}

std::uint64_t ClusterBitmap::set_range(std::uint64_t first, std::uint64_t n) {
    return update_range(first, n, true);
}

std::uint64_t ClusterBitmap::clear_range(std::uint64_t first, std::uint64_t n) {
    return update_range(first, n, false);
}

std::uint64_t ClusterBitmap::run_length(std::uint64_t from, bool value,
                                        std::uint64_t limit) const {
    if (from >= size_) {
        return 0;
    }
    limit = std::min(limit, size_ - from);
    /* Invert the words when looking for ones, so we always look for the
     * first differing bit as the first set bit. */
    const std::uint64_t flip = value ? kAllOnes : 0;
    std::uint64_t run = 0;
    std::uint64_t i = from;
    while (run < limit) {
        const std::uint64_t lo = i % kWordBits;
        const std::uint64_t differ = (words_[word_of(i)] ^ flip) >> lo;
        if (differ != 0) {
            run += static_cast<std::uint64_t>(std::countr_zero(differ));
            break;
        }
        run += kWordBits - lo;
        i += kWordBits - lo;
    }
    /* Bits past size() read as 0, so a run of zeros may overshoot: clamp. */
    return std::min(run, limit);
}

std::uint64_t ClusterBitmap::merge_word(std::size_t w, std::uint64_t bits) {
    if (w >= word_count_) {
        return 0;
    }
    const std::uint64_t added = bits & valid_mask(w) & ~words_[w];
    if (added != 0) {
        words_[w] |= added;
    }
    const auto n = static_cast<std::uint64_t>(std::popcount(added));
    count_ += n;
    return n;
}

} // namespace intellicache
