/*
 * intellicache core: what the base's fingerprint is computed over.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "ic_fingerprint.hpp"

#include "ic_bytes.hpp"

#include <algorithm>
#include <cstring>

namespace intellicache {

namespace {

constexpr std::uint64_t kSample = IC_FINGERPRINT_SAMPLE_SIZE;

static_assert(FingerprintPlan::kSchemeLen == 26, "part of the format");
static_assert(FingerprintPlan::kSchemeLen + 8 <= IC_FINGERPRINT_PREAMBLE_MAX);

std::uint64_t align_down(std::uint64_t v) {
    return v / kSample * kSample;
}

} // namespace

std::size_t FingerprintPlan::preamble(
    std::uint64_t base_size,
    std::span<std::uint8_t, IC_FINGERPRINT_PREAMBLE_MAX> out) {
    std::memcpy(out.data(), kScheme, kSchemeLen);
    put_le64(out.data() + kSchemeLen, base_size);
    return kSchemeLen + 8;
}

std::size_t
FingerprintPlan::ranges(std::uint64_t base_size,
                        std::span<IcRange, IC_FINGERPRINT_SAMPLES> out) {
    if (base_size == 0) {
        return 0;
    }
    /* No overflow: step * i <= base_size for i < IC_FINGERPRINT_SAMPLES. */
    const std::uint64_t step = base_size / (IC_FINGERPRINT_SAMPLES - 1);
    const std::uint64_t last_start = align_down(base_size - 1);
    std::size_t n = 0;
    for (std::uint64_t i = 0; i < IC_FINGERPRINT_SAMPLES; i++) {
        const std::uint64_t off = std::min(align_down(step * i), last_start);
        if (n > 0 && off == out[n - 1].offset) {
            continue;
        }
        out[n++] = IcRange{off, std::min(kSample, base_size - off)};
    }
    return n;
}

} // namespace intellicache
