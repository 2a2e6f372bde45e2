/*
 * intellicache core: what the base's fingerprint is computed over.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef IC_FINGERPRINT_HPP
#define IC_FINGERPRINT_HPP

#include "intellicache-core.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace intellicache {

/*
 * The input of the base's fingerprint, short of the hash itself (the glue
 * has SHA-256): a preamble naming the scheme and the base size, then
 * IC_FINGERPRINT_SAMPLES pieces of IC_FINGERPRINT_SAMPLE_SIZE bytes spread
 * evenly over the base.
 *
 * Part of the on-disk format: every existing cache records a fingerprint
 * computed this way, so any change here resets all of them.  The sampling
 * is exactly what the glue did before it moved here: sample i starts at
 * i * (base_size / 15) aligned down to 4 KiB, no later than the last 4 KiB
 * boundary inside the base; a sample equal to its predecessor (small
 * bases) is skipped; the last one may be short.
 */
class FingerprintPlan {
public:
    static constexpr char kScheme[] = "intellicache-fingerprint-1";
    static constexpr std::size_t kSchemeLen = sizeof(kScheme) - 1;

    /* Writes the preamble (scheme, then base_size as LE 64); its length. */
    static std::size_t
    preamble(std::uint64_t base_size,
             std::span<std::uint8_t, IC_FINGERPRINT_PREAMBLE_MAX> out);

    /* Writes the sampled ranges in order; their number (0 for an empty
     * base). */
    static std::size_t ranges(std::uint64_t base_size,
                              std::span<IcRange, IC_FINGERPRINT_SAMPLES> out);
};

} // namespace intellicache

#endif
