/*
 * intellicache core: one bit per cluster.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_BITMAP_HPP
#define IC_BITMAP_HPP

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace intellicache {

/*
 * A fixed-size bit vector (exactly one bit per cluster: a 1 TiB base at
 * 64 KiB clusters costs 2 MiB) that keeps its population count, so stats
 * never scan it.  Bits at or beyond size() are always zero.
 *
 * The words come zeroed from calloc() and are written only where a bit
 * changes: a large bitmap mapped fresh by the allocator stays out of the
 * resident set until bits are set in it, which is what the sparse ones
 * (clusters loaded ahead, clusters not yet reused) need.  A failed
 * allocation throws std::bad_alloc, which open turns into an error.
 */
class ClusterBitmap {
public:
    static constexpr std::uint64_t kWordBits = 64;

    explicit ClusterBitmap(std::uint64_t size);

    std::uint64_t size() const { return size_; }
    std::uint64_t count() const { return count_; }

    bool test(std::uint64_t index) const {
        return index < size_ &&
               ((words_[word_of(index)] >> (index % kWordBits)) & 1U) != 0;
    }

    /* These return how many bits actually changed; out of range is no-op. */
    std::uint64_t set(std::uint64_t index) { return set_range(index, 1); }
    std::uint64_t clear(std::uint64_t index) { return clear_range(index, 1); }
    std::uint64_t set_range(std::uint64_t first, std::uint64_t n);
    std::uint64_t clear_range(std::uint64_t first, std::uint64_t n);

    /*
     * Length of the run of bits equal to @value starting at @from, at most
     * @limit (and never past size()).  Word-at-a-time.
     */
    std::uint64_t run_length(std::uint64_t from, bool value,
                             std::uint64_t limit) const;

    /* Raw 64-bit words, for metadata encoding (bit i of word w = w*64+i). */
    std::size_t word_count() const { return word_count_; }
    std::uint64_t word(std::size_t w) const {
        return w < word_count_ ? words_[w] : 0;
    }
    /* ORs @bits into word @w (bits beyond size() dropped); returns new bits. */
    std::uint64_t merge_word(std::size_t w, std::uint64_t bits);

private:
    static std::size_t word_of(std::uint64_t index) {
        return static_cast<std::size_t>(index / kWordBits);
    }
    /* Mask of the valid bits of word @w. */
    std::uint64_t valid_mask(std::size_t w) const;
    /* Applies @set_bits (true: set, false: clear) to [first, first + n). */
    std::uint64_t update_range(std::uint64_t first, std::uint64_t n,
                               bool set_bits);

    struct FreeWords {
        void operator()(std::uint64_t *words) const { std::free(words); }
    };

    std::size_t word_count_;
    std::unique_ptr<std::uint64_t[], FreeWords> words_;
    std::uint64_t size_;
    std::uint64_t count_ = 0;
};

} // namespace intellicache

#endif
