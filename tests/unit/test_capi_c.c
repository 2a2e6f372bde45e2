/*
 * Unit test: the C API compiled as C, as the QEMU glue compiles it.
 * Plain exit-status test (no GoogleTest: this file is C).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "intellicache-core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

int main(void) {
    IcGeometry g;
    char why[128];
    IcHeaderInfo info;
    IcHeaderInfo found;
    static uint8_t header[IC_HEADER_SIZE];
    IcCore *core;
    IcSegment segs[4];
    IcStats st;
    size_t n;
    IcOptions opts;
    IcSettings set;
    IcStoreJob job;
    IcMetaRun run;
    IcRange ranges[IC_FINGERPRINT_SAMPLES];
    uint8_t preamble[IC_FINGERPRINT_PREAMBLE_MAX];
    static uint8_t buf[IC_DEFAULT_MAX_FETCH];

    memset(&opts, 0, sizeof(opts));
    opts.has_max_inflight = true;
    opts.max_inflight = 0;
    CHECK(!ic_options_check(&opts, &set, why, sizeof(why)));
    CHECK(strcmp(why, "max-inflight must be from 1 to 1024, not 0") == 0);
    opts.max_inflight = 4;
    CHECK(ic_settings_resolve(&opts, &set, IC_DEFAULT_CLUSTER_SIZE, why,
                              sizeof(why)));
    CHECK(set.max_inflight == 4 && set.max_fetch == IC_DEFAULT_MAX_FETCH &&
          set.read_ahead == 2 * IC_DEFAULT_MAX_FETCH);
    CHECK(ic_open_decide(IC_HEADER_EMPTY, true, true) == IC_OPEN_FORMAT);
    CHECK(ic_fingerprint_preamble(1 << 20, preamble) == 34);
    CHECK(ic_fingerprint_plan(1 << 20, ranges) == IC_FINGERPRINT_SAMPLES);

    CHECK(!ic_geometry_init(&g, 1 << 20, 3000, why, sizeof(why)));
    CHECK(strcmp(why, "cluster-size 3000 is not a power of two") == 0);
    CHECK(ic_geometry_init(&g, 1 << 20, IC_DEFAULT_CLUSTER_SIZE, why,
                           sizeof(why)));

    memset(&info, 0, sizeof(info));
    info.version = IC_FORMAT_VERSION;
    info.cluster_size = IC_DEFAULT_CLUSTER_SIZE;
    info.base_size = 1 << 20;
    info.instance = 5;
    ic_header_encode(&info, header);
    CHECK(ic_header_check(header, sizeof(header), g.file_size, &info, &found,
                          why, sizeof(why)) == IC_HEADER_OK);

    core = ic_core_new(&g, found.instance, IC_DEFAULT_MAX_FETCH,
                       IC_DEFAULT_MAX_INFLIGHT, why, sizeof(why));
    CHECK(core != NULL);
    ic_core_apply_settings(core, &set);
    n = ic_core_plan(core, 0, 4096, segs, 4);
    CHECK(n == 1 && segs[0].kind == IC_SEG_FETCH);
    CHECK(ic_core_slot_take(core, IC_FETCH_DEMAND));
    ic_core_fetch_done(core, segs[0].fetch, true);
    CHECK(!ic_core_slot_put(core));
    CHECK(ic_core_store_admit(core, segs[0].fetch));
    CHECK(ic_core_store_writer_start(core));
    CHECK(ic_core_store_next(core, &job) && job.write);
    CHECK(job.cache_offset == ic_core_cache_offset(core, 0));
    ic_core_fetch_stored(core, job.fetch, true);
    CHECK(!ic_core_store_next(core, &job));
    n = ic_core_plan(core, 0, 4096, segs, 4);
    CHECK(n == 1 && segs[0].kind == IC_SEG_HIT);
    CHECK(segs[0].cache_offset == g.data_offset);
    ic_core_get_stats(core, &st);
    CHECK(st.cached_clusters == 1 && st.store_backlog == 0);
    CHECK(ic_core_sync_begin(core));
    CHECK(ic_core_sync_runs(core, &run, 1) == 1 && run.count == 1);
    ic_core_sync_end(core, true);
    CHECK(ic_core_cache_state(core) == IC_CACHE_CACHING);
    CHECK(ic_core_cache_failed(core, true));
    CHECK(ic_core_cache_state(core) == IC_CACHE_STOPPED);
    CHECK(ic_core_buf_give(core, buf, sizeof(buf)));
    CHECK(ic_core_buf_reclaim(core) == buf);
    CHECK(ic_core_buf_reclaim(core) == NULL);
    ic_core_free(core);
    return 0;
}
