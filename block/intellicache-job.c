/*
 * intellicache: warming the cache, by the prefetch job
 * (intellicache-prefetch) and by reads with BDRV_REQ_PREFETCH.
 *
 * Both fetch missing clusters through the node's normal path (a fetch
 * coroutine reads the base and queues the data for the store writers),
 * but only in the fetch slots that guest misses leave free: the core's
 * prefetch policy (ic_core_slot_take() with IC_FETCH_PREFETCH) never lets
 * a prefetch take a slot while a miss waits for one, and leaves a quarter
 * of them free.  When no slot is free, a prefetch waits for one of its own
 * fetches to end, or briefly sleeps.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "block/block-io.h"
#include "block/blockjob_int.h"
#include "intellicache-int.h"

/* How long a prefetch waits when it has no slot and no fetch of its own. */
#define IC_PREFETCH_IDLE_NS (1 * SCALE_MS)
/* How often the job looks whether a base that is not up is back. */
#define IC_PREFETCH_BASE_WAIT_NS (100 * SCALE_MS)
/* A prefetch starts no fetch while more fetched data waits to be stored. */
#define IC_PREFETCH_BACKLOG (IC_STORE_BACKLOG_LIMIT / 2)
/*
 * The same for deferred stores, much less: they fetch scattered clusters
 * into a buffer each, held until stored.  With a prefetch's backlog, 32
 * MiB of 64 KiB buffers, the daemon stayed 30-38 MiB larger once they
 * were stored (freed memory that the allocator keeps between live
 * blocks), and storing went no faster: the cache file's writes set the
 * pace, and 1 MiB waiting keeps them busy.
 */
#define IC_DEFER_BACKLOG (UINT64_C(1) * 1024 * 1024)

/* The fetches of one prefetch in flight, oldest first. */
typedef struct IcPrefetcher {
    BlockDriverState *bs;
    GQueue fetches;             /* IcFetch *, with a reference each */
    unsigned max_inflight;
    uint64_t max_backlog;       /* store backlog that stops new fetches */
    bool refill;                /* deferred stores: guests read it all */
    int ret;                    /* the first failure */
    uint64_t failed_offset;     /* the base offset of that failure */
} IcPrefetcher;

/* Whether the store queue has room for more fetched data of @p. */
static bool ic_prefetch_store_room(IcPrefetcher *p)
{
    BDRVIntellicacheState *s = p->bs->opaque;
    IcStats st;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ic_core_get_stats(s->core, &st);
    }
    return st.store_backlog < p->max_backlog;
}

/*
 * Wait for the oldest fetch of @p to end; false if it failed.  A fetch
 * that the base does not answer within miss-timeout (when it is set) of
 * its start counts as failed: the job must not hang on a base that went
 * away, and the fetch ends by itself whenever the base answers.
 */
static bool coroutine_fn ic_prefetch_wait_one(IcPrefetcher *p)
{
    BDRVIntellicacheState *s = p->bs->opaque;
    IcFetch *f = g_queue_pop_head(&p->fetches);
    uint64_t timeout_ms = s->settings.miss_timeout_ms;
    int64_t deadline = 0;
    bool timed_out = false;
    int ret;

    if (timeout_ms) {
        /* From when its base read started (they all start at once). */
        int64_t start_ms;

        WITH_QEMU_LOCK_GUARD(&s->lock) {
            start_ms = f->op.start_ms;
        }
        if (!start_ms) {
            start_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        }
        deadline = (start_ms + timeout_ms) * SCALE_MS;
    }
    ret = ic_co_base_op_wait(s, &f->op, deadline, &timed_out);
    if (ret < 0 && p->ret == 0) {
        p->ret = ret;
        p->failed_offset = f->offset;
    }
    ic_fetch_unref(f);
    return ret == 0;
}

static void coroutine_fn ic_prefetch_wait_all(IcPrefetcher *p)
{
    while (!g_queue_is_empty(&p->fetches)) {
        ic_prefetch_wait_one(p);
    }
}

/*
 * Start fetching the next piece of [offset, offset + bytes).  Returns the
 * bytes it covers (cached, being fetched, or fetched now, in which case
 * *@fetched is the fetch's size), 0 if nothing could start now (no slot,
 * too much to store, or @p's own limit), -EIO if the base is not up, or
 * -ENOTSUP if the cache is not caching.
 */
static int64_t coroutine_fn ic_prefetch_step(IcPrefetcher *p, uint64_t offset,
                                             uint64_t bytes,
                                             uint64_t *fetched)
{
    IcFetch *f;
    int64_t n;

    *fetched = 0;
    if (g_queue_get_length(&p->fetches) >= p->max_inflight ||
        !ic_prefetch_store_room(p)) {
        return 0;
    }
    n = ic_co_prefetch_start(p->bs, offset, bytes, p->refill, &f);
    if (f) {
        g_queue_push_tail(&p->fetches, f);
        *fetched = f->bytes;
    }
    return n;
}

/*
 * Nothing could start: wait for a fetch of our own, or sleep a little
 * (in @job's sleep, a pause point, when there is a job).
 */
static void coroutine_fn ic_prefetch_backoff(IcPrefetcher *p, Job *job)
{
    if (!g_queue_is_empty(&p->fetches)) {
        ic_prefetch_wait_one(p);
    } else if (job) {
        job_sleep_ns(job, IC_PREFETCH_IDLE_NS);
    } else {
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, IC_PREFETCH_IDLE_NS);
    }
}

/* Wait until nothing fetched waits to be stored (guests' fetches too). */
static void coroutine_fn ic_prefetch_wait_stored(BDRVIntellicacheState *s,
                                                 Job *job)
{
    for (;;) {
        IcStats st;

        WITH_QEMU_LOCK_GUARD(&s->lock) {
            ic_core_get_stats(s->core, &st);
        }
        if (!st.store_backlog || (job && job_is_cancelled(job))) {
            return;
        }
        if (job) {
            job_sleep_ns(job, IC_PREFETCH_IDLE_NS);
        } else {
            qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, IC_PREFETCH_IDLE_NS);
        }
    }
}

/*
 * A read with BDRV_REQ_PREFETCH: fetch what is missing of the range into
 * the cache, return no data.  Cached clusters cost nothing.  A failed
 * base read fails the request, and so does a base that is not up (such a
 * read has no deadline of its own to wait for it).
 */
int coroutine_fn GRAPH_RDLOCK
ic_co_prefetch_read(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcPrefetcher p = {
        .bs = bs,
        .fetches = G_QUEUE_INIT,
        .max_inflight = s->settings.max_inflight,
        .max_backlog = IC_PREFETCH_BACKLOG,
    };
    uint64_t end = offset + bytes;
    uint64_t pos = offset;

    while (pos < end && p.ret == 0) {
        uint64_t fetched;
        int64_t n = ic_prefetch_step(&p, pos, end - pos, &fetched);

        if (n == -ENOTSUP) {
            /* Not caching: the data cannot be kept; nothing to do. */
            break;
        }
        if (n < 0) {
            p.ret = n;
            p.failed_offset = pos;
            break;
        }
        if (n == 0) {
            ic_prefetch_backoff(&p, NULL);
        }
        pos += n;
    }
    ic_prefetch_wait_all(&p);
    if (p.ret == 0) {
        ic_prefetch_wait_stored(s, NULL);
    }
    return p.ret;
}

/* ---- Deferred stores ---- */

/*
 * Fetch again and store what guests' misses left unstored (ic_core_defer_
 * take()), as prefetches: in the slots guests leave free, up to
 * max-inflight at a time.  Until the queue is empty, a guest misses (the
 * core then gives no more; the timer looks again later), the base is not
 * up, or the node is drained.
 */
static void coroutine_fn GRAPH_RDLOCK ic_co_defer_fill(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcPrefetcher p = {
        .bs = bs,
        .fetches = G_QUEUE_INIT,
        .max_inflight = s->settings.max_inflight,
        .max_backlog = IC_DEFER_BACKLOG,
        .refill = true,
    };
    IcRange r = { 0, 0 };
    uint64_t filled = 0;

    while (p.ret == 0 && qatomic_read(&bs->quiesce_counter) == 0) {
        uint64_t fetched;
        int64_t n;

        if (!r.bytes) {
            int64_t now_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
            bool next;

            WITH_QEMU_LOCK_GUARD(&s->lock) {
                next = ic_health_state(s->health) == IC_BASE_UP &&
                       ic_core_defer_take(s->core, now_ms, &r);
            }
            if (!next) {
                break;
            }
        }
        n = ic_prefetch_step(&p, r.offset, r.bytes, &fetched);
        if (n < 0) {
            /* Not up or not caching: the rest of @r is not cached. */
            break;
        }
        if (n == 0) {
            ic_prefetch_backoff(&p, NULL);
            continue;
        }
        filled += fetched;
        r.offset += n;
        r.bytes -= n;
    }
    ic_prefetch_wait_all(&p);
    trace_intellicache_defer_fill(bs, filled, p.ret);
}

static void coroutine_fn ic_defer_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;

    bdrv_graph_co_rdlock();
    ic_co_defer_fill(bs);
    bdrv_graph_co_rdunlock();
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->defer_running = false;
    }
    /* Guests missed meanwhile: look again later. */
    ic_defer_schedule(bs);
    bdrv_dec_in_flight(bs);
}

static void ic_defer_timer_cb(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;
    bool start = false;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->defer_scheduled = false;
        if (qatomic_read(&bs->quiesce_counter) == 0 && !s->defer_running &&
            !s->reloading && ic_core_defer_pending(s->core)) {
            s->defer_running = true;
            start = true;
        }
    }
    if (start) {
        bdrv_inc_in_flight(bs);
        aio_co_enter(bdrv_get_aio_context(bs),
                     qemu_coroutine_create(ic_defer_entry, bs));
    }
}

void ic_defer_timer_new(BlockDriverState *bs, AioContext *ctx)
{
    BDRVIntellicacheState *s = bs->opaque;

    s->defer_timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                   ic_defer_timer_cb, bs);
}

void ic_defer_timer_free(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->defer_timer) {
        timer_free(s->defer_timer);
        s->defer_timer = NULL;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->defer_scheduled = false;
    }
}

/*
 * Stores were deferred, or may still be: look again once guests may be
 * quiet.  Not while the node is drained: drain end calls this again.
 */
void ic_defer_schedule(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool arm = false;

    if (qatomic_read(&bs->quiesce_counter) > 0) {
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (s->defer_timer && s->core && !s->defer_scheduled &&
            !s->defer_running && ic_core_defer_pending(s->core)) {
            s->defer_scheduled = true;
            arm = true;
        }
    }
    if (arm) {
        timer_mod(s->defer_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  IC_GUEST_QUIET_MS);
    }
}

void ic_defer_disarm(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->defer_timer) {
        timer_del(s->defer_timer);
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->defer_scheduled = false;
    }
}

/* ---- The prefetch job ---- */

typedef struct IcPrefetchJob {
    BlockJob common;
    BlockDriverState *bs;
    IcRange *ranges;            /* what to fetch, in order */
    size_t n_ranges;
    uint32_t max_inflight;
} IcPrefetchJob;

static int coroutine_fn ic_prefetch_run(Job *job, Error **errp)
{
    IcPrefetchJob *pj = container_of(job, IcPrefetchJob, common.job);
    BDRVIntellicacheState *s = pj->bs->opaque;
    IcPrefetcher p = {
        .bs = pj->bs,
        .fetches = G_QUEUE_INIT,
        .max_inflight = pj->max_inflight,
        .max_backlog = IC_PREFETCH_BACKLOG,
    };
    uint64_t total = 0;
    int ret = 0;

    for (size_t i = 0; i < pj->n_ranges; i++) {
        total += pj->ranges[i].bytes;
    }
    job_progress_set_remaining(job, total);

    for (size_t i = 0; i < pj->n_ranges && ret == 0; i++) {
        uint64_t pos = pj->ranges[i].offset;
        uint64_t end = pos + pj->ranges[i].bytes;

        while (pos < end) {
            uint64_t fetched;
            int64_t n;

            /* A pause point, and the rate limit (block-job-set-speed). */
            block_job_ratelimit_sleep(&pj->common);
            if (job_is_cancelled(job) || p.ret < 0) {
                break;
            }
            WITH_GRAPH_RDLOCK_GUARD() {
                n = ic_prefetch_step(&p, pos, end - pos, &fetched);
            }
            if (n == -EIO) {
                /*
                 * The base is not up: see how our fetches end (one that
                 * fails or times out ends the job), then wait for the
                 * base (or a cancel).
                 */
                if (!g_queue_is_empty(&p.fetches)) {
                    ic_prefetch_wait_one(&p);
                } else {
                    job_sleep_ns(job, IC_PREFETCH_BASE_WAIT_NS);
                }
                continue;
            }
            if (n < 0) {
                error_setg(errp, "The cache of node '%s' is not caching "
                           "(a write into its cache file failed, or it is "
                           "inactive): nothing can be stored",
                           bdrv_get_node_name(pj->bs));
                ret = n;
                break;
            }
            if (n == 0) {
                ic_prefetch_backoff(&p, job);
                continue;
            }
            block_job_ratelimit_processed_bytes(&pj->common, fetched);
            job_progress_update(job, n);
            pos += n;
        }
        if (job_is_cancelled(job)) {
            break;
        }
    }
    ic_prefetch_wait_all(&p);
    if (ret == 0 && p.ret < 0) {
        error_setg_errno(errp, -p.ret, "A read of the base of node '%s' at "
                         "offset %" PRIu64 " failed",
                         bdrv_get_node_name(pj->bs), p.failed_offset);
        ret = p.ret;
    }
    if (ret == 0) {
        ic_prefetch_wait_stored(s, job);
    }
    return ret;
}

static void ic_prefetch_clean(Job *job)
{
    IcPrefetchJob *pj = container_of(job, IcPrefetchJob, common.job);

    g_free(pj->ranges);
    pj->ranges = NULL;
}

static const BlockJobDriver ic_prefetch_job_driver = {
    .job_driver = {
        .instance_size = sizeof(IcPrefetchJob),
        .job_type      = JOB_TYPE_INTELLICACHE_PREFETCH,
        .free          = block_job_free,
        .run           = ic_prefetch_run,
        .clean         = ic_prefetch_clean,
        .user_resume   = block_job_user_resume,
    },
};

/*
 * The byte ranges of the profile in @filename, in its order: runs of
 * consecutive clusters become one range.  NULL with an error naming the
 * file and what is wrong with it, including a profile of another base.
 */
static IcRange * GRAPH_RDLOCK
ic_profile_ranges(BlockDriverState *bs, const char *filename, size_t *n,
                  Error **errp)
{
    g_autofree char *buf = NULL;
    g_autoptr(GError) gerr = NULL;
    IcProfileHeader expected, found;
    IcProfileEntry *entries = NULL;
    IcRange *ranges;
    IcProfileStatus st;
    char why[256];
    gsize len;

    if (!g_file_get_contents(filename, &buf, &len, &gerr)) {
        error_setg(errp, "Cannot read the profile: %s", gerr->message);
        return NULL;
    }
    if (ic_node_base_id(bs, &expected, errp) < 0) {
        return NULL;
    }
    st = ic_profile_decode((const uint8_t *)buf, len, &expected, &found,
                           &entries, why, sizeof(why));
    if (st != IC_PROFILE_OK) {
        error_setg(errp, "Profile '%s' cannot be replayed on node '%s': %s",
                   filename, bdrv_get_node_name(bs), why);
        return NULL;
    }
    ranges = g_new(IcRange, MAX(found.count, 1));
    *n = 0;
    for (uint64_t i = 0; i < found.count; i++) {
        uint64_t off = (uint64_t)entries[i].cluster * found.cluster_size;
        uint64_t bytes = MIN(found.cluster_size, found.base_size - off);

        if (*n && ranges[*n - 1].offset + ranges[*n - 1].bytes == off) {
            ranges[*n - 1].bytes += bytes;
        } else {
            ranges[(*n)++] = (IcRange) { .offset = off, .bytes = bytes };
        }
    }
    free(entries);
    return ranges;
}

void ic_prefetch_cmd(const char *job_id, BlockDriverState *bs,
                     const char *profile, bool has_speed, int64_t speed,
                     bool has_max_inflight, uint32_t max_inflight,
                     Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcRange *ranges;
    IcPrefetchJob *pj;
    size_t n = 1;

    if (has_max_inflight &&
        (max_inflight < 1 || max_inflight > IC_MAX_INFLIGHT_LIMIT)) {
        error_setg(errp, "Parameter 'max-inflight' must be from 1 to %u, "
                   "not %" PRIu32, IC_MAX_INFLIGHT_LIMIT, max_inflight);
        return;
    }
    bdrv_graph_rdlock_main_loop();
    if (profile) {
        ranges = ic_profile_ranges(bs, profile, &n, errp);
    } else {
        ranges = g_new(IcRange, 1);
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            ranges[0] = (IcRange) {
                .bytes = ic_core_geometry(s->core)->base_size,
            };
        }
    }
    bdrv_graph_rdunlock_main_loop();
    if (!ranges) {
        return;
    }
    pj = block_job_create(job_id, &ic_prefetch_job_driver, NULL, bs, 0,
                          BLK_PERM_ALL, has_speed ? speed : 0, JOB_DEFAULT,
                          NULL, NULL, errp);
    if (!pj) {
        g_free(ranges);
        return;
    }
    pj->bs = bs;
    pj->ranges = ranges;
    pj->n_ranges = n;
    pj->max_inflight = has_max_inflight ? max_inflight
                                        : s->settings.max_inflight;
    job_start(&pj->common.job);
}
