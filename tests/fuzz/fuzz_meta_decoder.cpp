/*
 * Fuzz target: the on-disk metadata decoders, fed hostile bytes.
 *
 * The input is a cache file's first bytes: a header, then metadata blocks.
 * Decoding must never read out of bounds, crash or accept a header that
 * does not re-encode to exactly the same bytes; blocks of a core whose
 * geometry comes from the input must load without crashing and never set
 * a bit beyond the base.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "fuzz_input.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size) {
    fuzz::Input in(data, size);
    const std::size_t header_len = std::min<std::size_t>(size, IC_HEADER_SIZE);
    /* Copy exactly what the glue reads, so that ASan sees any overread. */
    std::vector<std::uint8_t> header(data, data + header_len);

    IcHeaderInfo want{};
    want.cluster_size = 0;       /* adopt */
    want.base_size = in.take(8); /* exercises the mismatch paths */
    IcHeaderInfo found{};
    std::array<char, 160> why{};
    const IcHeaderStatus status =
        ic_header_check(header.data(), header.size(), UINT64_MAX, nullptr,
                        &found, why.data(), why.size());
    fuzz::check(why[why.size() - 1] == '\0', "why is NUL-terminated");
    (void)ic_header_check(header.data(), header.size(), size, &want, &found,
                          why.data(), why.size());

    if (status == IC_HEADER_OK) {
        /* Accepted: canonical, consistent, and it re-encodes identically. */
        std::array<std::uint8_t, IC_HEADER_SIZE> again{};
        ic_header_encode(&found, again.data());
        fuzz::check(
            header.size() == IC_HEADER_SIZE &&
                std::memcmp(again.data(), header.data(), IC_HEADER_SIZE) == 0,
            "an accepted header re-encodes to the same bytes");
        IcGeometry g{};
        fuzz::check(ic_geometry_init(&g, found.base_size, found.cluster_size,
                                     nullptr, 0),
                    "an accepted header has a valid geometry");
    }

    /* Metadata blocks for a small geometry taken from the input. */
    IcGeometry g{};
    const std::uint64_t base = 1 + in.take(2) * 4096;
    const std::uint32_t cs = 4096U << (in.take(1) % 10);
    if (!ic_geometry_init(&g, base, cs, nullptr, 0)) {
        return 0;
    }
    IcCore *core =
        ic_core_new(&g, in.take(8), cs, IC_DEFAULT_MAX_INFLIGHT, nullptr, 0);
    fuzz::check(core != nullptr, "a valid geometry gives a core");
    std::vector<std::uint8_t> block(IC_META_BLOCK_SIZE);
    for (std::uint64_t i = 0;
         i < g.meta_blocks + 1 && (i + 1) * IC_META_BLOCK_SIZE <= size; i++) {
        std::memcpy(block.data(), data + i * IC_META_BLOCK_SIZE,
                    IC_META_BLOCK_SIZE);
        (void)ic_core_load_meta_block(core, i, block.data());
    }
    IcStats st{};
    ic_core_get_stats(core, &st);
    fuzz::check(st.cached_clusters <= g.cluster_count,
                "no cluster beyond the base is present");
    for (std::uint64_t i = 0; i < g.meta_blocks; i++) {
        /* Whatever was loaded encodes and decodes to the same bits. */
        ic_core_encode_meta_block(core, i, block.data());
    }
    ic_core_free(core);
    return 0;
}
