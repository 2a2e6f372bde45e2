/*
 * A tiny reader of fuzzer input: integers taken from the front of the data.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef FUZZ_INPUT_HPP
#define FUZZ_INPUT_HPP

#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace fuzz {

/* Aborts with a message: libFuzzer reports it as a crash with the input. */
[[noreturn]] inline void fail(const char *what) {
    __builtin_printf("fuzz check failed: %s\n", what);
    std::abort();
}

inline void check(bool ok, const char *what) {
    if (!ok) {
        fail(what);
    }
}

class Input {
public:
    Input(const std::uint8_t *data, std::size_t size)
        : data_(data), size_(size) {}

    bool empty() const { return pos_ >= size_; }

    /* The next @n bytes as a little-endian integer (0 past the end). */
    std::uint64_t take(unsigned n) {
        std::uint64_t v = 0;
        for (unsigned i = 0; i < n; i++) {
            if (pos_ < size_) {
                v |= static_cast<std::uint64_t>(data_[pos_++]) << (8 * i);
            }
        }
        return v;
    }

private:
    const std::uint8_t *data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

} // namespace fuzz

#endif
