/*
 * Fuzz target: read planning and the fetch lifecycle against a model.
 *
 * The input is a stream of operations on a core with a small geometry:
 * plan a read, finish a fetch (ok or failed), store or drop its data, sync
 * the bitmap.  A simple per-cluster model predicts every answer; any
 * difference aborts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "fuzz_input.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <vector>

namespace {

enum class State { Absent, Fetching, Fetched, Present };

struct ModelFetch {
    std::uint64_t first;
    std::uint64_t count;
    bool done;
};

struct Model {
    std::vector<State> state;
    std::vector<IcFetchId> owner; /* fetch covering a fetching cluster */
    std::map<IcFetchId, ModelFetch> fetches;
};

void check_segments(const IcGeometry &g, Model &m, std::uint64_t offset,
                    std::uint64_t max_fetch, const IcSegment *segs,
                    std::size_t n) {
    std::uint64_t pos = offset;
    for (std::size_t i = 0; i < n; i++) {
        const IcSegment &s = segs[i];
        fuzz::check(s.offset == pos && s.bytes > 0, "contiguous segments");
        const std::uint64_t first = s.offset / g.cluster_size;
        const std::uint64_t last = (s.offset + s.bytes - 1) / g.cluster_size;
        if (s.kind == IC_SEG_HIT) {
            fuzz::check(s.cache_offset == g.data_offset + s.offset,
                        "direct-mapped hit");
            for (std::uint64_t c = first; c <= last; c++) {
                fuzz::check(m.state[c] == State::Present, "hit is present");
            }
        } else {
            fuzz::check(s.fetch_offset % g.cluster_size == 0 &&
                            s.fetch_offset <= s.offset &&
                            s.offset + s.bytes <=
                                s.fetch_offset + s.fetch_bytes &&
                            s.fetch_offset + s.fetch_bytes <= g.base_size,
                        "fetch covers its segment, within the base");
            fuzz::check(s.fetch_bytes <= max_fetch, "fetch within max-fetch");
            const std::uint64_t ff = s.fetch_offset / g.cluster_size;
            const std::uint64_t fl =
                (s.fetch_offset + s.fetch_bytes - 1) / g.cluster_size;
            if (s.kind == IC_SEG_FETCH) {
                fuzz::check(!m.fetches.count(s.fetch), "new fetch id");
                for (std::uint64_t c = ff; c <= fl; c++) {
                    fuzz::check(m.state[c] == State::Absent,
                                "fetch only absent clusters");
                    m.state[c] = State::Fetching;
                    m.owner[c] = s.fetch;
                }
                m.fetches[s.fetch] = {ff, fl - ff + 1, false};
            } else {
                fuzz::check(s.kind == IC_SEG_WAIT, "known kind");
                const auto it = m.fetches.find(s.fetch);
                fuzz::check(it != m.fetches.end() && it->second.first == ff &&
                                it->second.count == fl - ff + 1,
                            "wait on a fetch in flight");
                fuzz::check(s.opaque == &it->second, "opaque returned");
            }
        }
        pos += s.bytes;
    }
}

void settle(Model &m, IcFetchId id, State to) {
    const ModelFetch f = m.fetches.at(id);
    for (std::uint64_t c = f.first; c < f.first + f.count; c++) {
        m.state[c] = to;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size) {
    fuzz::Input in(data, size);
    IcGeometry g{};
    const std::uint32_t cs = 4096U << (in.take(1) % 3);
    /* At most 256 clusters, of any byte length: small enough that the
     * model is checked cluster by cluster after every step. */
    const std::uint64_t base = 1 + in.take(3) % (256ULL * cs);
    if (!ic_geometry_init(&g, base, cs, nullptr, 0)) {
        return 0;
    }
    const std::uint64_t max_fetch = cs * (1 + in.take(1) % 8);
    IcCore *core = ic_core_new(&g, 7, max_fetch);
    fuzz::check(core != nullptr, "core");
    Model m{std::vector<State>(g.cluster_count, State::Absent),
            std::vector<IcFetchId>(g.cluster_count, 0),
            {}};
    bool syncing = false;

    for (int step = 0; step < 256 && !in.empty(); step++) {
        const unsigned op = in.take(1) % 6;
        if (op <= 1) { /* plan a read */
            const std::uint64_t off = in.take(3) % g.base_size;
            const std::uint64_t len = 1 + in.take(3) % (g.base_size - off);
            std::array<IcSegment, 4> segs{};
            const std::size_t n =
                ic_core_plan(core, off, len, segs.data(), segs.size());
            fuzz::check(n >= 1 && n <= segs.size(), "segment count");
            check_segments(g, m, off, max_fetch, segs.data(), n);
            for (std::size_t i = 0; i < n; i++) {
                if (segs[i].kind == IC_SEG_FETCH) {
                    ic_core_fetch_set_opaque(core, segs[i].fetch,
                                             &m.fetches.at(segs[i].fetch));
                }
            }
            const IcSegment &last = segs[n - 1];
            fuzz::check(last.offset + last.bytes <= off + len, "prefix");
            if (n < segs.size()) {
                fuzz::check(last.offset + last.bytes == off + len,
                            "whole request covered when segments remain");
            }
        } else if (!m.fetches.empty() && op <= 4) { /* finish a fetch */
            auto it = m.fetches.begin();
            std::advance(it, in.take(1) % m.fetches.size());
            const IcFetchId id = it->first;
            const bool ok = in.take(1) % 4 != 0;
            if (!it->second.done) {
                ic_core_fetch_done(core, id, ok);
                if (ok) {
                    it->second.done = true;
                } else {
                    settle(m, id, State::Absent);
                    m.fetches.erase(it);
                }
            } else if (op == 3) {
                ic_core_fetch_dropped(core, id);
                settle(m, id, State::Absent);
                m.fetches.erase(it);
            } else {
                ic_core_fetch_stored(core, id, ok);
                settle(m, id, ok ? State::Present : State::Absent);
                m.fetches.erase(it);
            }
        } else if (op == 5) { /* sync */
            if (syncing) {
                ic_core_sync_end(core, in.take(1) % 2 == 0);
                syncing = false;
            } else {
                syncing = ic_core_sync_begin(core);
            }
        }
        IcStats st{};
        ic_core_get_stats(core, &st);
        const auto present = static_cast<std::uint64_t>(
            std::count(m.state.begin(), m.state.end(), State::Present));
        fuzz::check(st.cached_clusters == present, "cached clusters");
        fuzz::check(st.inflight_fetches == m.fetches.size(), "fetches");
        fuzz::check(st.durable_clusters <= st.cached_clusters, "durable");
        for (std::uint64_t c = 0; c < g.cluster_count; c++) {
            fuzz::check(ic_core_cluster_present(core, c) ==
                            (m.state[c] == State::Present),
                        "presence");
        }
    }
    ic_core_free(core);
    return 0;
}
