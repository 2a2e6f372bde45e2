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

    core = ic_core_new(&g, found.instance, IC_DEFAULT_MAX_FETCH);
    CHECK(core != NULL);
    n = ic_core_plan(core, 0, 4096, segs, 4);
    CHECK(n == 1 && segs[0].kind == IC_SEG_FETCH);
    ic_core_fetch_done(core, segs[0].fetch, true);
    ic_core_fetch_stored(core, segs[0].fetch, true);
    n = ic_core_plan(core, 0, 4096, segs, 4);
    CHECK(n == 1 && segs[0].kind == IC_SEG_HIT);
    CHECK(segs[0].cache_offset == g.data_offset);
    ic_core_get_stats(core, &st);
    CHECK(st.cached_clusters == 1 && st.read_requests == 2);
    ic_core_free(core);
    return 0;
}
