/*
 * intellicache: a read-only filter that caches its base image in a local
 * cache file.
 *
 * The base ("file" child) is typically a golden image on shared storage
 * (NFS); the cache ("cache-file" child) is a local file holding the cached
 * clusters, direct-mapped, and a presence bitmap.  See intellicache-int.h
 * for how the driver is split, and docs/design.rst for the design.
 *
 * This file: the driver table, open/close, options, permissions,
 * activation (migration), drain and AioContext changes.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/module.h"
#include "qemu/option.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "block/block-io.h"
#include "block/block_int.h"
#include "block/qdict.h"
#include "intellicache-int.h"

static QemuOptsList ic_runtime_opts = {
    .name = "intellicache",
    .head = QTAILQ_HEAD_INITIALIZER(ic_runtime_opts.head),
    .desc = {
        {
            .name = IC_OPT_CLUSTER_SIZE,
            .type = QEMU_OPT_SIZE,
            .help = "unit of caching in bytes (power of two, 4K to 2M)",
        },
        {
            .name = IC_OPT_MAX_INFLIGHT,
            .type = QEMU_OPT_NUMBER,
            .help = "largest number of fetches from the base in flight",
        },
        {
            .name = IC_OPT_MAX_FETCH,
            .type = QEMU_OPT_SIZE,
            .help = "largest fetch from the base in bytes",
        },
        {
            .name = IC_OPT_READ_AHEAD,
            .type = QEMU_OPT_SIZE,
            .help = "bytes to read ahead of sequential readers (0: none)",
        },
        {
            .name = IC_OPT_MISS_TIMEOUT,
            .type = QEMU_OPT_NUMBER,
            .help = "seconds a read of uncached data may wait for the base "
                    "(0: no retries, no limit)",
        },
        {
            .name = IC_OPT_CACHE_SIZE,
            .type = QEMU_OPT_SIZE,
            .help = "most bytes of cached data kept (default: no bound)",
        },
        {
            .name = IC_OPT_SCAN_THRESHOLD,
            .type = QEMU_OPT_SIZE,
            .help = "length of a sequential stream from which a bounded "
                    "cache does not store it (0: store scans too)",
        },
        {
            .name = IC_OPT_POOL,
            .type = QEMU_OPT_STRING,
            .help = "id of an intellicache-pool object whose budget the "
                    "node shares",
        },
        {
            .name = IC_OPT_BASE_FINGERPRINT,
            .type = QEMU_OPT_STRING,
            .help = "user-chosen identifier of the base's content",
        },
        { /* end of list */ }
    },
};

/*
 * Take the node's own options out of @options and check them, for open
 * and reopen alike.  The checks themselves are the core's.
 */
static bool ic_absorb_opts(QDict *options, IcOptions *opts,
                           IcSettings *settings, char **user_fingerprint,
                           char **pool_id, Error **errp)
{
    QemuOpts *qopts = qemu_opts_create(&ic_runtime_opts, NULL, 0,
                                       &error_abort);
    char why[256];
    bool ok = false;

    if (!qemu_opts_absorb_qdict(qopts, options, errp)) {
        goto out;
    }
    *opts = (IcOptions) {
        .has_cluster_size = qemu_opt_get(qopts, IC_OPT_CLUSTER_SIZE),
        .cluster_size = qemu_opt_get_size(qopts, IC_OPT_CLUSTER_SIZE, 0),
        .has_max_inflight = qemu_opt_get(qopts, IC_OPT_MAX_INFLIGHT),
        .max_inflight = qemu_opt_get_number(qopts, IC_OPT_MAX_INFLIGHT, 0),
        .has_max_fetch = qemu_opt_get(qopts, IC_OPT_MAX_FETCH),
        .max_fetch = qemu_opt_get_size(qopts, IC_OPT_MAX_FETCH, 0),
        .has_read_ahead = qemu_opt_get(qopts, IC_OPT_READ_AHEAD),
        .read_ahead = qemu_opt_get_size(qopts, IC_OPT_READ_AHEAD, 0),
        .has_miss_timeout = qemu_opt_get(qopts, IC_OPT_MISS_TIMEOUT),
        .miss_timeout = qemu_opt_get_number(qopts, IC_OPT_MISS_TIMEOUT, 0),
        .has_cache_size = qemu_opt_get(qopts, IC_OPT_CACHE_SIZE),
        .cache_size = qemu_opt_get_size(qopts, IC_OPT_CACHE_SIZE, 0),
        .has_scan_threshold = qemu_opt_get(qopts, IC_OPT_SCAN_THRESHOLD),
        .scan_threshold = qemu_opt_get_size(qopts, IC_OPT_SCAN_THRESHOLD, 0),
    };
    if (qemu_opt_get(qopts, IC_OPT_POOL)) {
        IntellicachePool *pool =
            intellicache_pool_find(qemu_opt_get(qopts, IC_OPT_POOL), errp);

        if (!pool) {
            goto out;
        }
        opts->pool_size = intellicache_pool_size(pool);
    }
    if (!ic_options_check(opts, settings, why, sizeof(why))) {
        error_setg(errp, "%s", why);
        goto out;
    }
    *user_fingerprint = g_strdup(qemu_opt_get(qopts,
                                              IC_OPT_BASE_FINGERPRINT));
    *pool_id = g_strdup(qemu_opt_get(qopts, IC_OPT_POOL));
    ok = true;
out:
    qemu_opts_del(qopts);
    return ok;
}

/* True if @options define child @name inline (keys "@name.*"). */
static bool ic_child_defined_inline(QDict *options, const char *name)
{
    size_t len = strlen(name);

    for (const QDictEntry *e = qdict_first(options); e;
         e = qdict_next(options, e)) {
        if (!strncmp(e->key, name, len) && e->key[len] == '.') {
            return true;
        }
    }
    return false;
}

/* The cache must be a writable node of its own. */
static bool GRAPH_RDLOCK
ic_check_cache_node(BlockDriverState *bs, BlockDriverState *cache_bs,
                    Error **errp)
{
    if (bs->file && cache_bs == bs->file->bs) {
        error_setg(errp, "cache-file: node '%s' is the base image itself; "
                   "the cache needs a node of its own",
                   bdrv_get_node_name(cache_bs));
        return false;
    }
    if (bdrv_is_read_only(cache_bs)) {
        error_setg(errp, "cache-file: node '%s' is read-only; the cache "
                   "must be writable", bdrv_get_node_name(cache_bs));
        return false;
    }
    return true;
}

/*
 * The cache must be writable whatever the node's own read-only option says:
 * default an inline definition to read-write, and check a referenced cache
 * node before attaching it (the permission system would fail with a less
 * helpful message).
 */
static bool GRAPH_UNLOCKED
ic_prepare_cache_child(BlockDriverState *bs, QDict *options, Error **errp)
{
    const char *cache_ref = qdict_get_try_str(options, "cache-file");
    BlockDriverState *cache_bs;

    if (ic_child_defined_inline(options, "cache-file")) {
        qdict_set_default_str(options, "cache-file." BDRV_OPT_READ_ONLY,
                              "off");
        return true;
    }
    if (!cache_ref) {
        error_setg(errp, "Parameter 'cache-file' is missing: intellicache "
                   "needs a writable node for its cache file");
        return false;
    }
    cache_bs = bdrv_lookup_bs(cache_ref, cache_ref, NULL);
    if (!cache_bs) {
        return true; /* bdrv_open_child() reports the unknown reference */
    }
    GRAPH_RDLOCK_GUARD_MAINLOOP();
    return ic_check_cache_node(bs, cache_bs, errp);
}

/*
 * A node opened without its base gets a placeholder for it, so that, as
 * every filter, it has a filtered child: a node of the intellicache-offline
 * driver, of the size the cache records, that fails every read.  Reads
 * never reach it (the base is down, and is not probed, while the node has
 * none).  blockdev-reopen with "file" replaces it by the real base.
 */
static int GRAPH_UNLOCKED
ic_open_offline_base(BlockDriverState *bs, QDict *options, IcCore *core,
                     Error **errp)
{
    qdict_put_str(options, "file.driver", IC_OFFLINE_DRIVER);
    qdict_put_int(options, "file." IC_OFFLINE_OPT_SIZE,
                  ic_core_geometry(core)->base_size);
    qdict_put_str(options, "file." BDRV_OPT_READ_ONLY, "on");
    return bdrv_open_file_child(NULL, options, "file", bs, errp);
}

static void *ic_pool_budget_new(uint64_t size)
{
    return ic_pool_new(size);
}

static void ic_pool_budget_free(void *budget)
{
    ic_pool_free(budget);
}

static uint64_t ic_pool_budget_used(void *budget)
{
    return ic_pool_used(budget);
}

static const IntellicachePoolBudgetOps ic_pool_budget_ops = {
    .budget_new = ic_pool_budget_new,
    .budget_free = ic_pool_budget_free,
    .budget_used = ic_pool_budget_used,
};

/*
 * Join the pool named @id: its object in *@obj, its budget returned (NULL
 * and @errp if there is no such pool or its budget cannot be made).
 */
static IcPool *ic_pool_join(const char *id, IntellicachePool **obj,
                            Error **errp)
{
    IcPool *pool;

    *obj = intellicache_pool_find(id, errp);
    pool = *obj ? intellicache_pool_join(*obj, &ic_pool_budget_ops, errp) :
           NULL;
    if (!pool) {
        *obj = NULL;
    }
    return pool;
}

/* The node leaves its pool, if it is in one (after its core did). */
static void ic_pool_leave(BDRVIntellicacheState *s)
{
    if (s->pool_obj) {
        intellicache_pool_leave(s->pool_obj);
    }
    s->pool_obj = NULL;
    s->pool = NULL;
    g_free(s->pool_id);
    s->pool_id = NULL;
}

static int GRAPH_UNLOCKED
ic_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcSettings settings;
    IcCore *core = NULL;
    int ret;

    s->bs = bs;
    qemu_mutex_init(&s->lock);
    qemu_co_queue_init(&s->slot_queue);
    qemu_co_queue_init(&s->reload_queue);
    qemu_co_queue_init(&s->idle_queue);
    qemu_co_mutex_init(&s->sync_lock);
    QLIST_INIT(&s->base_ops);

    s->has_base = qdict_haskey(options, "file") ||
                  ic_child_defined_inline(options, "file");
    if (s->has_base) {
        if (ic_child_defined_inline(options, "file")) {
            qdict_set_default_str(options, "file." BDRV_OPT_READ_ONLY, "on");
        }
        ret = bdrv_open_file_child(NULL, options, "file", bs, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (!ic_prepare_cache_child(bs, options, errp)) {
        return -EINVAL;
    }
    /* METADATA: the cache file holds our metadata, read even with NO_IO. */
    s->cache = bdrv_open_child(NULL, options, "cache-file", bs, &child_of_bds,
                               BDRV_CHILD_DATA | BDRV_CHILD_METADATA, false,
                               errp);
    if (!s->cache) {
        return -EINVAL;
    }
    if (!ic_absorb_opts(options, &s->opts, &settings, &s->user_fingerprint,
                        &s->pool_id, errp)) {
        return -EINVAL;
    }
    s->no_io = flags & BDRV_O_NO_IO;
    if (s->pool_id) {
        s->pool = ic_pool_join(s->pool_id, &s->pool_obj, errp);
        if (!s->pool) {
            return -EINVAL;
        }
    }

    bdrv_graph_rdlock_main_loop();
    ret = ic_check_cache_node(bs, s->cache->bs, errp) ? 0 : -EINVAL;
    if (ret == 0) {
        ret = ic_cache_open(bs, flags & BDRV_O_INACTIVE, &settings, &core,
                            errp);
    }
    bdrv_graph_rdunlock_main_loop();
    if (ret < 0) {
        goto fail;
    }
    if (!s->has_base) {
        ret = ic_open_offline_base(bs, options, core, errp);
        if (ret < 0) {
            goto fail;
        }
    }
    s->health = ic_health_new(s->has_base ? IC_BASE_UP : IC_BASE_DOWN);
    s->latency = ic_latency_new();
    if (!s->health || !s->latency) {
        error_setg(errp, "Cannot allocate the node's state");
        ret = -ENOMEM;
        goto fail;
    }
    s->core = core;
    s->settings = settings;
    s->bounded = settings.cache_size != 0 || s->pool;
    bs->supported_write_flags = BDRV_REQ_WRITE_UNCHANGED;
    /*
     * The node keeps what it reads: a copy-on-read request is a read, and
     * a copy-on-read prefetch (an NBD client's NBD_CMD_CACHE) a fill of
     * the cache (QEMU patch 0009 passes both here).
     */
    bs->supported_read_flags = BDRV_REQ_COPY_ON_READ | BDRV_REQ_PREFETCH;
    ic_sync_timer_new(bs, bdrv_get_aio_context(bs));
    ic_health_timer_new(bs, bdrv_get_aio_context(bs));
    ic_pool_timer_new(bs, bdrv_get_aio_context(bs));
    ic_defer_timer_new(bs, bdrv_get_aio_context(bs));
    /* A cache larger than its (new) bound is brought within it now. */
    bdrv_graph_rdlock_main_loop();
    ic_evict_all(bs);
    bdrv_graph_rdunlock_main_loop();
    if (trace_event_get_state_backends(TRACE_INTELLICACHE_OPEN)) {
        IcStats st;

        ic_core_get_stats(core, &st);
        trace_intellicache_open(bs, bdrv_get_node_name(bs),
                                bdrv_get_node_name(s->cache->bs),
                                ic_core_geometry(core)->base_size,
                                ic_core_geometry(core)->cluster_size,
                                st.cached_clusters, s->bounded);
    }
    return 0;

fail:
    /* The core leaves the pool's budget first, then the node the pool. */
    ic_core_release(core);
    ic_pool_leave(s);
    ic_health_free(s->health);
    s->health = NULL;
    ic_latency_free(s->latency);
    s->latency = NULL;
    return ret;
}

static void GRAPH_RDLOCK ic_close(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    trace_intellicache_close(bs);
    /* Drained by now: record what is still stored but unrecorded. */
    ic_profile_close(bs);
    ic_sync_timer_free(bs);
    ic_health_timer_free(bs);
    ic_defer_timer_free(bs);
    if (!(bs->open_flags & BDRV_O_INACTIVE)) {
        ic_sync_all(bs);
    }
    ic_core_release(s->core);
    s->core = NULL;
    ic_pool_timer_free(bs);
    ic_pool_leave(s);
    assert(QLIST_EMPTY(&s->base_ops) && !s->probe_running);
    ic_health_free(s->health);
    s->health = NULL;
    ic_latency_free(s->latency);
    s->latency = NULL;
    g_free(s->user_fingerprint);
    qemu_mutex_destroy(&s->lock);
}

/*
 * A fetch left the core's table.  Activation waits for the table to empty
 * before it replaces the core.  Called with @lock.
 */
/* No fetch of @core is in flight or waiting to be stored.  With @lock. */
static bool ic_core_idle_locked(BDRVIntellicacheState *s)
{
    IcStats st;

    ic_core_get_stats(s->core, &st);
    return st.inflight_fetches == 0;
}

void ic_fetch_left_locked(BDRVIntellicacheState *s)
{
    if (s->reloading && ic_core_idle_locked(s)) {
        qemu_co_queue_restart_all(&s->idle_queue);
    }
}

/*
 * Inactivation (migration hands the cache file to another process, or
 * blockdev-set-active): store and record everything, then write nothing
 * more.  The block layer then drops our WRITE and RESIZE on the cache file
 * (ic_child_perm).  Hits are still served; misses are fetched, not stored.
 */
static int GRAPH_RDLOCK ic_inactivate(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    int ret;

    bdrv_drained_begin(bs);
    ret = ic_sync_all(bs);
    if (ret == 0) {
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            ic_core_set_active(s->core, false);
        }
    }
    bdrv_drained_end(bs);
    return ret;
}

/*
 * Activation: while inactive, another process may have written the cache
 * file (it was the active side of a migration), so what it records is read
 * again, the way open reads it.  New reads wait while fetches in flight
 * end; then the new core replaces the old one, and, as at open, a bounded
 * cache discards what a crash of that process left unrecorded and frees
 * down to its bound before reads go on.
 */
static void coroutine_fn GRAPH_RDLOCK
ic_co_invalidate_cache(BlockDriverState *bs, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcSettings settings = s->settings;
    IcCore *core = NULL, *old;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->reloading = true;
        while (!ic_core_idle_locked(s)) {
            qemu_co_queue_wait(&s->idle_queue, &s->lock);
        }
    }
    ic_cache_open(bs, false, &settings, &core, errp);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        old = core ? s->core : NULL;
        if (core) {
            s->core = core;
            s->settings = settings;
            s->bounded = settings.cache_size != 0 || s->pool;
            s->leftovers_done = false;
        }
    }
    if (core) {
        /* Nothing is in flight, and nothing starts while reloading. */
        ic_co_evict_all(bs);
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->reloading = false;
        qemu_co_queue_restart_all(&s->reload_queue);
    }
    ic_core_release(old);
    if (core) {
        ic_sync_schedule(bs);
        ic_evict_kick(bs);
    }
}

static int64_t coroutine_fn GRAPH_RDLOCK ic_co_getlength(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    /*
     * The size of the base when the cache was opened: the cache maps
     * exactly that many bytes, so the node keeps it even if the base
     * changes.
     */
    QEMU_LOCK_GUARD(&s->lock);
    return ic_core_geometry(s->core)->base_size;
}

/*
 * Only writes that do not change the data reach us (the permissions keep
 * others out): a copy-on-read filter on top writes back what it read from
 * us.  The data is the base's, which we already have or will fetch.
 */
static int coroutine_fn GRAPH_RDLOCK
ic_co_pwritev_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                   QEMUIOVector *qiov, size_t qiov_offset,
                   BdrvRequestFlags flags)
{
    return (flags & BDRV_REQ_WRITE_UNCHANGED) ? 0 : -EROFS;
}

static void GRAPH_RDLOCK
ic_child_perm(BlockDriverState *bs, BdrvChild *c, BdrvChildRole role,
              BlockReopenQueue *reopen_queue,
              uint64_t perm, uint64_t shared,
              uint64_t *nperm, uint64_t *nshared)
{
    if (role & BDRV_CHILD_FILTERED) {
        /*
         * The base is only read, and the cache is only valid while nobody
         * changes it: other users may read it but not write or resize it.
         */
        *nperm = BLK_PERM_CONSISTENT_READ;
        *nshared = BLK_PERM_ALL & ~(BLK_PERM_WRITE | BLK_PERM_RESIZE);
    } else if (bs->open_flags & BDRV_O_INACTIVE) {
        /* Another process may own the cache file now (migration). */
        *nperm = BLK_PERM_CONSISTENT_READ;
        *nshared = BLK_PERM_ALL;
    } else {
        /* The cache file is ours alone (resize: formatting it). */
        *nperm = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE | BLK_PERM_RESIZE;
        *nshared = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED;
    }
}

static int GRAPH_RDLOCK
ic_check_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared,
              Error **errp)
{
    if (perm & (BLK_PERM_WRITE | BLK_PERM_RESIZE)) {
        error_setg(errp, "intellicache node '%s' is read-only: attach "
                   "writers to an overlay (e.g. qcow2) that uses it as its "
                   "backing file", bdrv_get_node_name(bs));
        return -EPERM;
    }
    return 0;
}

/*
 * Nothing is written and no probe is issued while drained: the timers wait
 * for drain end.
 */
static void ic_drain_begin(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->sync_timer) {
        timer_del(s->sync_timer);
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->sync_scheduled = false;
    }
    ic_health_disarm(bs);
    ic_pool_timer_disarm(bs);
    ic_defer_disarm(bs);
}

static void ic_drain_end(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    ic_sync_schedule(bs);
    ic_evict_kick(bs);
    ic_pool_timer_arm(bs);
    ic_defer_schedule(bs);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ic_health_arm_locked(bs);
    }
}

static void ic_detach_aio_context(BlockDriverState *bs)
{
    ic_sync_timer_free(bs);
    ic_health_timer_free(bs);
    ic_pool_timer_free(bs);
    ic_defer_timer_free(bs);
}

static void ic_attach_aio_context(BlockDriverState *bs,
                                  AioContext *new_context)
{
    ic_sync_timer_new(bs, new_context);
    ic_sync_schedule(bs);
    ic_health_timer_new(bs, new_context);
    ic_pool_timer_new(bs, new_context);
    ic_defer_timer_new(bs, new_context);
    ic_defer_schedule(bs);
}

/* What a reopen changes, from prepare to commit. */
typedef struct IcReopen {
    IcSettings settings;
    bool attach_base;   /* "file" gives the node its first base */
    bool change_pool;   /* "pool" names another pool, or none */
    char *pool_id;      /* the new pool's, NULL: none */
    IntellicachePool *pool_obj; /* joined in prepare, left if not taken */
    IcPool *pool;
} IcReopen;

static void ic_reopen_free(IcReopen *r)
{
    if (r->pool_obj) {
        intellicache_pool_leave(r->pool_obj);
    }
    g_free(r->pool_id);
    g_free(r);
}

/*
 * A reopen whose "file" names another node than the base: the node's
 * first base (it was opened without one), or a replacement.  Either must
 * be the base the cache was recorded for.  The block layer attaches it
 * after this prepare.
 */
static int GRAPH_UNLOCKED
ic_reopen_check_base(BDRVReopenState *state, bool *attach, Error **errp)
{
    BlockDriverState *bs = state->bs;
    BDRVIntellicacheState *s = bs->opaque;
    const char *ref = qdict_get_try_str(state->options, "file");
    BlockDriverState *base, *old;

    *attach = false;
    base = ref ? bdrv_lookup_bs(NULL, ref, NULL) : NULL;
    if (!base) {
        return 0; /* unchanged, or the block layer reports the reference */
    }
    bdrv_graph_rdlock_main_loop();
    old = bs->file ? bs->file->bs : NULL;
    bdrv_graph_rdunlock_main_loop();
    if (base == old) {
        return 0;
    }
    *attach = !s->has_base;
    return ic_check_new_base(bs, base, errp);
}

/*
 * Reopen: the tunables (max-inflight, max-fetch, read-ahead, miss-timeout,
 * cache-size, scan-threshold) and the pool may change and apply at
 * commit: reads in progress keep the miss-timeout they began with, and a
 * lower bound frees the excess from drain end on.  A new pool is joined
 * here, so that commit cannot fail for it; what the node holds moves to
 * it at commit.  What defines the cache's content (cluster-size,
 * base-fingerprint) may not change.  "file" may attach the base to a
 * node opened without one.
 */
static int GRAPH_UNLOCKED
ic_reopen_prepare(BDRVReopenState *state, BlockReopenQueue *queue,
                  Error **errp)
{
    BDRVIntellicacheState *s = state->bs->opaque;
    g_autofree char *fingerprint = NULL;
    IcReopen *r = g_new0(IcReopen, 1);
    IcSettings *settings = &r->settings;
    IcOptions opts;
    char why[256];
    int ret;

    if (!ic_absorb_opts(state->options, &opts, settings, &fingerprint,
                        &r->pool_id, errp)) {
        goto fail;
    }
    r->change_pool = g_strcmp0(r->pool_id, s->pool_id) != 0;
    if (opts.has_cluster_size &&
        opts.cluster_size != s->settings.cluster_size) {
        error_setg(errp, "Cannot change " IC_OPT_CLUSTER_SIZE " of an open "
                   "intellicache node (it is %" PRIu32 "): it changes the "
                   "cache file's format", s->settings.cluster_size);
        goto fail;
    }
    if (g_strcmp0(fingerprint, s->user_fingerprint)) {
        error_setg(errp, "Cannot change " IC_OPT_BASE_FINGERPRINT " of an "
                   "open intellicache node: it names the base's content");
        goto fail;
    }
    if (!ic_settings_resolve(&opts, settings, s->settings.cluster_size, why,
                             sizeof(why))) {
        error_setg(errp, "%s", why);
        goto fail;
    }
    if (r->change_pool && r->pool_id) {
        r->pool = ic_pool_join(r->pool_id, &r->pool_obj, errp);
        if (!r->pool) {
            goto fail;
        }
    }
    bdrv_graph_rdlock_main_loop();
    /* The pool after the reopen (left by ic_reopen_free() on failure) */
    ret = ic_check_cache_size(state->bs, settings,
                              r->change_pool ? r->pool : s->pool,
                              r->pool_id, errp);
    bdrv_graph_rdunlock_main_loop();
    if (ret < 0 || ic_reopen_check_base(state, &r->attach_base, errp) < 0) {
        goto fail;
    }
    state->opaque = r;
    return 0;

fail:
    ic_reopen_free(r);
    return -EINVAL;
}

static void GRAPH_UNLOCKED ic_reopen_commit(BDRVReopenState *state)
{
    BlockDriverState *bs = state->bs;
    BDRVIntellicacheState *s = bs->opaque;
    IcReopen *r = state->opaque;
    IcPool *pool = r->change_pool ? r->pool : s->pool;
    bool bound_failed = false;
    char why[256];

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ic_core_apply_settings(s->core, &r->settings);
        /*
         * A new bound may need memory for the eviction state, which may
         * fail: the node then keeps its old bound and pool, and says so.
         */
        if (!ic_core_set_bound(s->core, &r->settings, pool, bs, why,
                               sizeof(why))) {
            r->settings.cache_size = s->settings.cache_size;
            r->settings.scan_threshold = s->settings.scan_threshold;
            r->change_pool = false;
            bound_failed = true;
        }
        if (r->change_pool) {
            /* The node keeps the new pool; @r the old one, to leave. */
            IntellicachePool *old_obj = s->pool_obj;
            char *old_id = s->pool_id;

            s->pool_obj = r->pool_obj;
            s->pool_id = r->pool_id;
            s->pool = r->pool;
            r->pool_obj = old_obj;
            r->pool_id = old_id;
        }
        s->settings = r->settings;
        s->bounded = r->settings.cache_size != 0 || s->pool;
        if (r->attach_base) {
            s->has_base = true;
            ic_health_note_locked(bs, IC_BASE_READ_OK,
                                  "the base was attached");
        }
    }
    if (r->change_pool) {
        /* Its callback does nothing while drained; drain end re-arms. */
        ic_pool_timer_free(bs);
        ic_pool_timer_new(bs, bdrv_get_aio_context(bs));
        trace_intellicache_reopen_pool(bs, r->pool_id ? r->pool_id : "",
                                       s->pool_id ? s->pool_id : "");
    }
    if (bound_failed) {
        warn_report("intellicache: '%s': " IC_OPT_CACHE_SIZE " and "
                    IC_OPT_POOL " unchanged: %s", bdrv_get_node_name(bs), why);
    }
    /*
     * A cache opened without a bound kept what a crash left unrecorded
     * (it took no room that counted); with a bound it does.  Drained:
     * nothing is in flight.
     */
    bdrv_graph_rdlock_main_loop();
    ic_evict_all(bs);
    bdrv_graph_rdunlock_main_loop();
    ic_reopen_free(r);
    state->opaque = NULL;
}

static void GRAPH_UNLOCKED ic_reopen_abort(BDRVReopenState *state)
{
    ic_reopen_free(state->opaque);
    state->opaque = NULL;
}

/*
 * intellicache-offline: the placeholder base of a node opened without one
 * (ic_open_offline_base()).  It has the size the cache records and fails
 * every read with ENOMEDIUM.
 */
typedef struct IcOfflineState {
    uint64_t size;
} IcOfflineState;

static QemuOptsList ic_offline_opts = {
    .name = IC_OFFLINE_DRIVER,
    .head = QTAILQ_HEAD_INITIALIZER(ic_offline_opts.head),
    .desc = {
        {
            .name = IC_OFFLINE_OPT_SIZE,
            .type = QEMU_OPT_SIZE,
            .help = "size of the base the cache records",
        },
        { /* end of list */ }
    },
};

static int ic_offline_open(BlockDriverState *bs, QDict *options, int flags,
                           Error **errp)
{
    IcOfflineState *s = bs->opaque;
    QemuOpts *opts = qemu_opts_create(&ic_offline_opts, NULL, 0,
                                      &error_abort);
    bool ok = qemu_opts_absorb_qdict(opts, options, errp);

    s->size = qemu_opt_get_size(opts, IC_OFFLINE_OPT_SIZE, 0);
    qemu_opts_del(opts);
    return ok ? 0 : -EINVAL;
}

static int64_t coroutine_fn ic_offline_co_getlength(BlockDriverState *bs)
{
    IcOfflineState *s = bs->opaque;

    return s->size;
}

static int coroutine_fn
ic_offline_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                     QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    return -ENOMEDIUM;
}

static int ic_offline_reopen_prepare(BDRVReopenState *state,
                                     BlockReopenQueue *queue, Error **errp)
{
    return 0;
}

static BlockDriver bdrv_intellicache_offline = {
    .format_name                = IC_OFFLINE_DRIVER,
    .protocol_name              = IC_OFFLINE_DRIVER,
    .instance_size              = sizeof(IcOfflineState),
    .bdrv_open                  = ic_offline_open,
    .bdrv_co_getlength          = ic_offline_co_getlength,
    .bdrv_co_preadv             = ic_offline_co_preadv,
    .bdrv_reopen_prepare        = ic_offline_reopen_prepare,
};

/*
 * Tunables and the pool: blockdev-reopen may change them, or reset them
 * to default (no pool).
 */
static const char *const ic_mutable_opts[] = {
    IC_OPT_MAX_INFLIGHT,
    IC_OPT_MAX_FETCH,
    IC_OPT_READ_AHEAD,
    IC_OPT_MISS_TIMEOUT,
    IC_OPT_CACHE_SIZE,
    IC_OPT_SCAN_THRESHOLD,
    IC_OPT_POOL,
    NULL
};

/* Only what selects the cache's content makes two nodes different. */
static const char *const ic_strong_runtime_opts[] = {
    IC_OPT_CLUSTER_SIZE,
    IC_OPT_BASE_FINGERPRINT,
    NULL
};

static BlockDriver bdrv_intellicache = {
    .format_name                = "intellicache",
    .instance_size              = sizeof(BDRVIntellicacheState),

    .bdrv_open                  = ic_open,
    .bdrv_close                 = ic_close,
    .bdrv_reopen_prepare        = ic_reopen_prepare,
    .bdrv_reopen_commit         = ic_reopen_commit,
    .bdrv_reopen_abort          = ic_reopen_abort,
    .bdrv_child_perm            = ic_child_perm,
    .bdrv_check_perm            = ic_check_perm,

    .bdrv_co_getlength          = ic_co_getlength,
    .bdrv_co_preadv_part        = ic_co_preadv_part,
    .bdrv_co_pwritev_part       = ic_co_pwritev_part,
    .bdrv_co_block_status       = ic_co_block_status,

    .bdrv_inactivate            = ic_inactivate,
    .bdrv_co_invalidate_cache   = ic_co_invalidate_cache,

    .bdrv_drain_begin           = ic_drain_begin,
    .bdrv_drain_end             = ic_drain_end,
    .bdrv_detach_aio_context    = ic_detach_aio_context,
    .bdrv_attach_aio_context    = ic_attach_aio_context,

    .bdrv_get_specific_info     = ic_get_specific_info,
    .bdrv_get_specific_stats    = ic_get_specific_stats,

    .mutable_opts               = ic_mutable_opts,
    .strong_runtime_opts        = ic_strong_runtime_opts,
    .is_filter                  = true,
};

static void bdrv_intellicache_init(void)
{
    bdrv_register(&bdrv_intellicache);
    bdrv_register(&bdrv_intellicache_offline);
}

block_init(bdrv_intellicache_init);
