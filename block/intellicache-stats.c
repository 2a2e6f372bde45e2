/*
 * intellicache: what QMP and qemu-img show about a node.
 *
 * Two views, both defined in qapi/intellicache.json:
 *
 *   ImageInfoSpecificIntellicache   what describes the cache file (format
 *                                   version, layout, clusters cached and
 *                                   recorded): qemu-img info, query-block,
 *                                   query-named-block-nodes
 *   BlockStatsSpecificIntellicache  the node's state and live counters:
 *                                   query-blockstats, driver-specific
 *
 * Both are snapshots taken under the node's lock; the counters are the
 * core's (ic_core_get_stats()).  As in QEMU's block layer, the graph lock
 * annotations (GRAPH_RDLOCK) are on the declarations, in
 * intellicache-int.h.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/qapi-types-block-core.h"
#include "intellicache-int.h"

/* One consistent snapshot of the core's state. */
typedef struct IcSnapshot {
    IcGeometry geometry;
    IcStats stats;
    IcCacheState state;
    IcBaseState base_state;
    uint64_t health[IC_HEALTH_COUNTERS];
    bool bounded;
    uint64_t cache_size;    /* the cache-size option in effect; 0: none */
} IcSnapshot;

static bool ic_snapshot(BDRVIntellicacheState *s, IcSnapshot *snap)
{
    bool ok;

    qemu_mutex_lock(&s->lock);
    ok = s->core != NULL;
    if (ok) {
        snap->geometry = *ic_core_geometry(s->core);
        ic_core_get_stats(s->core, &snap->stats);
        snap->state = ic_core_cache_state(s->core);
        snap->base_state = ic_health_state(s->health);
        snap->bounded = s->bounded;
        snap->cache_size = s->settings.cache_size;
        for (int i = 0; i < IC_HEALTH_COUNTERS; i++) {
            snap->health[i] = ic_health_counter(s->health, i);
        }
    }
    qemu_mutex_unlock(&s->lock);
    return ok;
}

static IntellicacheState ic_qapi_state(IcCacheState state)
{
    switch (state) {
    case IC_CACHE_CACHING:
        return INTELLICACHE_STATE_CACHING;
    case IC_CACHE_STOPPED:
        return INTELLICACHE_STATE_STOPPED;
    case IC_CACHE_BYPASSED:
        return INTELLICACHE_STATE_BYPASSED;
    case IC_CACHE_INACTIVE:
        return INTELLICACHE_STATE_INACTIVE;
    }
    g_assert_not_reached();
}

ImageInfoSpecific *ic_get_specific_info(BlockDriverState *bs, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    ImageInfoSpecificIntellicache *info;
    ImageInfoSpecific *spec;
    IcSnapshot snap;

    if (!ic_snapshot(s, &snap)) {
        return NULL;
    }
    info = g_new(ImageInfoSpecificIntellicache, 1);
    *info = (ImageInfoSpecificIntellicache) {
        .format_version = IC_FORMAT_VERSION,
        .base_size = snap.geometry.base_size,
        .cluster_size = snap.geometry.cluster_size,
        .cluster_count = snap.geometry.cluster_count,
        .cached_clusters = snap.stats.cached_clusters,
        .durable_clusters = snap.stats.durable_clusters,
    };
    spec = g_new(ImageInfoSpecific, 1);
    *spec = (ImageInfoSpecific) {
        .type = IMAGE_INFO_SPECIFIC_KIND_INTELLICACHE,
        .u.intellicache.data = info,
    };
    return spec;
}

/* The tunables in effect (main loop: reopen changes them there). */
static IntellicacheSettings *ic_qapi_settings(BDRVIntellicacheState *s,
                                              bool bounded)
{
    IntellicacheSettings *info = g_new(IntellicacheSettings, 1);
    const IcSettings *set = &s->settings;

    *info = (IntellicacheSettings) {
        .max_inflight = set->max_inflight,
        .max_fetch = set->max_fetch,
        .read_ahead = set->read_ahead,
        .miss_timeout = set->miss_timeout_ms / 1000,
        .scan_threshold = bounded ? set->scan_threshold : 0,
        .pool = g_strdup(s->pool_id),
    };
    return info;
}

/*
 * A histogram as QMP shows it.  Read without the lock (recording takes
 * none): the bins may be a few operations apart from each other.
 */
static IntellicacheLatency *ic_qapi_latency(const IcLatency *lat,
                                            IcLatencyKind kind)
{
    IntellicacheLatency *info = g_new0(IntellicacheLatency, 1);
    IcLatencySnapshot snap;

    ic_latency_get(lat, kind, &snap);
    for (int i = IC_LATENCY_BINS - 1; i >= 0; i--) {
        QAPI_LIST_PREPEND(info->bins, snap.bins[i]);
        if (i < IC_LATENCY_BINS - 1) {
            QAPI_LIST_PREPEND(info->boundaries, ic_latency_bound(i));
        }
    }
    info->sum_ns = snap.sum_ns;
    return info;
}

BlockStatsSpecific *ic_get_specific_stats(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    BlockStatsSpecific *stats;
    IcSnapshot snap;

    if (!ic_snapshot(s, &snap)) {
        return NULL;
    }
    stats = g_new(BlockStatsSpecific, 1);
    *stats = (BlockStatsSpecific) {
        .driver = BLOCKDEV_DRIVER_INTELLICACHE,
        .u.intellicache = {
            .state = ic_qapi_state(snap.state),
            .cluster_size = snap.geometry.cluster_size,
            .cluster_count = snap.geometry.cluster_count,
            .cached_clusters = snap.stats.cached_clusters,
            .durable_clusters = snap.stats.durable_clusters,
            .hit_bytes = snap.stats.hit_bytes,
            .hit_ahead_bytes = snap.stats.hit_ahead_bytes,
            .miss_bytes = snap.stats.miss_bytes,
            .wait_bytes = snap.stats.wait_bytes,
            .fetches = snap.stats.fetches,
            .fetched_bytes = snap.stats.fetched_bytes,
            .fetch_errors = snap.stats.fetch_errors,
            .stored_bytes = snap.stats.stored_bytes,
            .store_errors = snap.stats.store_errors,
            .store_skipped = snap.stats.store_skipped,
            .read_ahead_bytes = snap.stats.readahead_bytes,
            .prefetch_bytes = snap.stats.prefetch_bytes,
            .inflight_fetches = snap.stats.inflight_fetches,
            .store_backlog_bytes = snap.stats.store_backlog,
            .base_state = ic_qapi_base_state(snap.base_state),
            .fetch_retries = snap.health[IC_HEALTH_RETRIES],
            .miss_timeouts = snap.health[IC_HEALTH_MISS_TIMEOUTS],
            .fast_failures = snap.health[IC_HEALTH_FAST_FAILS],
            .probes = snap.health[IC_HEALTH_PROBES],
            .late_fetches = snap.health[IC_HEALTH_LATE_READS],
            .zeroed_bytes = snap.stats.zeroed_bytes,
            /*
             * A pool member bounded by the pool alone has no bound of its
             * own (its capacity is then the base's size).
             */
            .has_cache_size = snap.cache_size != 0,
            .cache_size = snap.stats.capacity_clusters *
                          snap.geometry.cluster_size,
            .has_used_bytes = snap.stats.capacity_clusters != 0,
            .used_bytes = snap.stats.used_clusters *
                          snap.geometry.cluster_size,
            .evicted_bytes = snap.stats.evicted_clusters *
                             snap.geometry.cluster_size,
            .scan_bytes = snap.stats.scan_bytes,
            .no_room_bytes = snap.stats.no_room_bytes,
            .unadmitted_bytes = snap.stats.unadmitted_bytes,
            .reuse_low = snap.stats.reuse_low,
            .deferred_bytes = snap.stats.deferred_bytes,
            .deferred_total_bytes = snap.stats.deferred_total_bytes,
            .settings = ic_qapi_settings(s, snap.bounded),
            .hit_latency = ic_qapi_latency(s->latency, IC_LATENCY_HIT),
            .miss_latency = ic_qapi_latency(s->latency, IC_LATENCY_MISS),
            .fetch_latency = ic_qapi_latency(s->latency, IC_LATENCY_FETCH),
            .store_latency = ic_qapi_latency(s->latency, IC_LATENCY_STORE),
        },
    };
    return stats;
}
