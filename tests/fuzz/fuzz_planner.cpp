/*
 * Fuzz target: read planning and the fetch lifecycle against a model.
 *
 * The input is a stream of operations on a core with a small geometry:
 * plan a read, finish a fetch (ok or failed), store it directly or through
 * the store queue (admit, start writers, take jobs), drop it, sync the
 * bitmap, take and give back fetch slots, fail the cache, deactivate and
 * activate the node.  A simple model predicts every answer; any difference
 * aborts.  Only calls the protocol allows are made: a protocol error would
 * abort too, and be reported as a crash.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include "fuzz_input.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <vector>

namespace {

enum class State { Absent, Fetching, Present };
enum class Stage { Pending, Done, Queued, Writing };

struct ModelFetch {
    std::uint64_t first;
    std::uint64_t count;
    std::uint64_t bytes;
    Stage stage;
};

struct Model {
    std::vector<State> state;
    std::map<IcFetchId, ModelFetch> fetches;
    std::deque<IcFetchId> queue; /* admitted, not yet taken by a writer */
    std::uint64_t backlog = 0;
    std::uint64_t skipped = 0;
    std::uint32_t writers = 0;
    std::uint32_t holding = 0; /* fetches being written */
    bool bypassed = false;
    bool stopped = false;
    bool active = true;
    std::uint32_t busy = 0; /* fetch slots */
    std::uint32_t waiting = 0;

    IcCacheState cache_state() const {
        if (bypassed) {
            return IC_CACHE_BYPASSED;
        }
        if (!active) {
            return IC_CACHE_INACTIVE;
        }
        return stopped ? IC_CACHE_STOPPED : IC_CACHE_CACHING;
    }
    bool caching() const { return cache_state() == IC_CACHE_CACHING; }
};

void check_segments(const IcGeometry &g, IcCore *core, Model &m,
                    std::uint64_t offset, std::uint64_t max_fetch,
                    const IcSegment *segs, std::size_t n) {
    std::uint64_t pos = offset;
    for (std::size_t i = 0; i < n; i++) {
        const IcSegment &s = segs[i];
        fuzz::check(s.offset == pos && s.bytes > 0, "contiguous segments");
        const std::uint64_t first = s.offset / g.cluster_size;
        const std::uint64_t last = (s.offset + s.bytes - 1) / g.cluster_size;
        if (s.kind == IC_SEG_HIT) {
            fuzz::check(s.cache_offset == g.data_offset + s.offset &&
                            s.cache_offset ==
                                ic_core_cache_offset(core, s.offset),
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
                }
                m.fetches[s.fetch] = {ff, fl - ff + 1, s.fetch_bytes,
                                      Stage::Pending};
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

/* Forget fetch @id in the model: its clusters become @to. */
void forget(Model &m, IcFetchId id, State to) {
    const ModelFetch f = m.fetches.at(id);
    for (std::uint64_t c = f.first; c < f.first + f.count; c++) {
        m.state[c] = to;
    }
    if (f.stage == Stage::Queued || f.stage == Stage::Writing) {
        m.backlog -= f.bytes;
    }
    if (f.stage == Stage::Writing) {
        m.holding--;
    }
    m.fetches.erase(id);
}

/* Finish a fetch that is pending, done or being written. */
void progress(IcCore *core, Model &m, fuzz::Input &in, unsigned how) {
    auto it = m.fetches.begin();
    std::advance(it, in.take(1) % m.fetches.size());
    const IcFetchId id = it->first;
    ModelFetch &f = it->second;
    const bool ok = in.take(1) % 4 != 0;
    switch (f.stage) {
    case Stage::Pending:
        ic_core_fetch_done(core, id, ok);
        if (ok) {
            f.stage = Stage::Done;
        } else {
            forget(m, id, State::Absent);
        }
        break;
    case Stage::Done:
        if (how == 0) { /* stored without the queue */
            ic_core_fetch_stored(core, id, ok);
            forget(m, id, ok ? State::Present : State::Absent);
        } else if (how == 1) {
            ic_core_fetch_dropped(core, id);
            m.skipped++;
            forget(m, id, State::Absent);
        } else {
            const bool admit =
                m.caching() && m.backlog + f.bytes <= IC_STORE_BACKLOG_LIMIT;
            fuzz::check(ic_core_store_admit(core, id) == admit, "admission");
            if (admit) {
                f.stage = Stage::Queued;
                m.backlog += f.bytes;
                m.queue.push_back(id);
            } else {
                m.skipped++;
                forget(m, id, State::Absent);
            }
        }
        break;
    case Stage::Queued:
        break; /* only a writer may take it */
    case Stage::Writing:
        if (how == 1) {
            ic_core_fetch_dropped(core, id);
            m.skipped++;
            forget(m, id, State::Absent);
        } else {
            ic_core_fetch_stored(core, id, ok);
            forget(m, id, ok ? State::Present : State::Absent);
        }
        break;
    }
}

/* Start writers, or let a running writer take its next job. */
void store_step(const IcGeometry &g, IcCore *core, Model &m, bool start) {
    if (start || m.writers == 0) {
        const std::uint32_t free =
            m.writers > m.holding ? m.writers - m.holding : 0;
        const bool want = m.writers < IC_STORE_WRITERS && m.queue.size() > free;
        fuzz::check(ic_core_store_writer_start(core) == want, "writer start");
        m.writers += want ? 1 : 0;
        return;
    }
    if (m.holding >= m.writers) {
        return; /* every running writer is writing */
    }
    IcStoreJob job{};
    const bool got = ic_core_store_next(core, &job);
    fuzz::check(got == !m.queue.empty(), "store_next");
    if (!got) {
        m.writers--;
        return;
    }
    const IcFetchId id = m.queue.front();
    m.queue.pop_front();
    ModelFetch &f = m.fetches.at(id);
    fuzz::check(job.fetch == id, "queue order");
    fuzz::check(job.opaque == &f, "job opaque");
    fuzz::check(job.bytes == f.bytes, "job bytes");
    fuzz::check(job.cache_offset == g.data_offset + f.first * g.cluster_size,
                "job offset");
    fuzz::check(job.write == m.caching(), "job written only while caching");
    if (job.write) {
        f.stage = Stage::Writing;
        m.holding++;
    } else {
        m.skipped++;
        forget(m, id, State::Absent);
    }
}

void slot_step(IcCore *core, Model &m, unsigned limit, unsigned what) {
    if (what == 0) {
        const bool free = m.busy < limit;
        fuzz::check(ic_core_slot_take(core, IC_FETCH_DEMAND) == free,
                    "demand slot");
        m.busy += free ? 1 : 0;
        m.waiting += free ? 0 : 1;
    } else if (what == 1) {
        const bool ok = m.waiting == 0 && m.busy < limit / 2;
        fuzz::check(ic_core_slot_take(core, IC_FETCH_READ_AHEAD) == ok,
                    "read-ahead slot");
        m.busy += ok ? 1 : 0;
    } else if (m.busy > 0) {
        m.busy--;
        const bool wake = m.waiting > 0 && m.busy < limit;
        fuzz::check(ic_core_slot_put(core) == wake, "slot put wakes");
        m.waiting -= wake ? 1 : 0;
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
    const unsigned limit = 1 + in.take(1) % 6;
    IcCore *core = ic_core_new(&g, 7, max_fetch, limit, nullptr, 0);
    fuzz::check(core != nullptr, "core");
    Model m{};
    m.state.assign(g.cluster_count, State::Absent);
    bool syncing = false;

    for (int step = 0; step < 256 && !in.empty(); step++) {
        const unsigned op = in.take(1) % 12;
        if (op <= 2) { /* plan a read */
            const std::uint64_t off = in.take(3) % g.base_size;
            const std::uint64_t len = 1 + in.take(3) % (g.base_size - off);
            std::array<IcSegment, 4> segs{};
            const std::size_t n =
                ic_core_plan(core, off, len, segs.data(), segs.size());
            fuzz::check(n >= 1 && n <= segs.size(), "segment count");
            check_segments(g, core, m, off, max_fetch, segs.data(), n);
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
        } else if (op <= 5) {
            if (!m.fetches.empty()) {
                progress(core, m, in, op - 3);
            }
        } else if (op <= 7) {
            store_step(g, core, m, op == 6);
        } else if (op == 8) { /* sync */
            if (syncing) {
                ic_core_sync_end(core, in.take(1) % 2 == 0);
                syncing = false;
            } else {
                const bool need = ic_core_sync_needed(core);
                syncing = ic_core_sync_begin(core);
                fuzz::check(syncing == (need && m.active), "sync begins");
                if (syncing) {
                    std::array<IcMetaRun, 4> runs{};
                    const std::size_t total =
                        ic_core_sync_runs(core, runs.data(), runs.size());
                    fuzz::check(total >= 1 && total <= g.meta_blocks,
                                "sync runs");
                    for (std::size_t i = 0; i < std::min(total, runs.size());
                         i++) {
                        fuzz::check(runs[i].count >= 1 &&
                                        runs[i].count <= IC_META_BATCH &&
                                        runs[i].first + runs[i].count <=
                                            g.meta_blocks,
                                    "run within the metadata");
                    }
                }
            }
        } else if (op == 9) {
            slot_step(core, m, limit, in.take(1) % 3);
        } else if (op == 10) { /* a failure on the cache file, rarely */
            if (in.take(1) % 8 == 0) {
                const bool write = in.take(1) % 4 != 0;
                const IcCacheState before = m.cache_state();
                (write ? m.stopped : m.bypassed) = true;
                fuzz::check(ic_core_cache_failed(core, write) ==
                                (m.cache_state() != before),
                            "failure changes the state");
            }
        } else { /* deactivate once drained and synced, or activate */
            if (!m.active) {
                ic_core_set_active(core, true);
                m.active = true;
            } else if (m.queue.empty() && m.holding == 0 && !syncing) {
                ic_core_set_active(core, false);
                m.active = false;
            }
        }
        IcStats st{};
        ic_core_get_stats(core, &st);
        const auto present = static_cast<std::uint64_t>(
            std::count(m.state.begin(), m.state.end(), State::Present));
        fuzz::check(st.cached_clusters == present, "cached clusters");
        fuzz::check(st.inflight_fetches == m.fetches.size(), "fetches");
        fuzz::check(st.durable_clusters <= st.cached_clusters, "durable");
        fuzz::check(st.store_backlog == m.backlog, "store backlog");
        fuzz::check(st.store_skipped == m.skipped, "skipped stores");
        fuzz::check(ic_core_cache_state(core) == m.cache_state(), "state");
        for (std::uint64_t c = 0; c < g.cluster_count; c++) {
            fuzz::check(ic_core_cluster_present(core, c) ==
                            (m.state[c] == State::Present),
                        "presence");
        }
    }
    ic_core_free(core);
    return 0;
}
