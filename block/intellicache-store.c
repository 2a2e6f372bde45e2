/*
 * intellicache: storing fetched data into the cache file, and the
 * metadata write-out (sync) that records it durably.
 *
 * Fetches whose data the core admits for storing wait in the core's store
 * queue; up to IC_STORE_WRITERS writer coroutines write them into the
 * cache file.  A cluster becomes a hit as soon as its data is written,
 * and durable once a sync has flushed that data, written the metadata
 * blocks that record it, and flushed those too.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/defer-call.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "block/block-io.h"
#include "intellicache-int.h"

/*
 * An I/O on the cache file failed: a read bypasses the cache, a write
 * stops storing, until the node is reopened.  Warn once.
 */
void ic_cache_failed(BlockDriverState *bs, bool write, int err)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool changed;

    trace_intellicache_cache_failed(bs, write, err);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        changed = ic_core_cache_failed(s->core, write);
    }
    if (!changed) {
        return;
    }
    if (write) {
        warn_report("intellicache: '%s': writing to cache '%s' failed: %s; "
                    "caching stopped, reads are served from the base",
                    bdrv_get_node_name(bs), bdrv_get_node_name(s->cache->bs),
                    strerror(-err));
    } else {
        warn_report("intellicache: '%s': reading cache '%s' failed: %s; the "
                    "cache is bypassed, reads are served from the base",
                    bdrv_get_node_name(bs), bdrv_get_node_name(s->cache->bs),
                    strerror(-err));
    }
}

/*
 * Make the clusters stored so far durable: flush their data, write the
 * metadata blocks that record them, flush again.  Order matters: a cluster
 * is recorded only after its data is on disk, so a crash at any moment
 * never leaves a recorded cluster with incomplete data; and it counts as
 * durable only once its record is on disk too.
 *
 * One round records what was stored before it started.  With @final
 * (close, inactivation) rounds repeat until nothing is left.
 */
int coroutine_fn GRAPH_RDLOCK
ic_co_sync(BlockDriverState *bs, bool final)
{
    BDRVIntellicacheState *s = bs->opaque;
    BlockDriverState *cache_bs = s->cache->bs;
    uint8_t *buf = NULL;
    bool report = false;
    int ret = 0;

    qemu_co_mutex_lock(&s->sync_lock);
    for (;;) {
        g_autofree IcMetaRun *runs = NULL;
        size_t count = 0;

        WITH_QEMU_LOCK_GUARD(&s->lock) {
            if (ic_core_sync_begin(s->core)) {
                count = ic_core_sync_runs(s->core, NULL, 0);
                runs = g_new(IcMetaRun, count);
                ic_core_sync_runs(s->core, runs, count);
            }
        }
        if (!runs) {
            break;
        }
        if (!buf) {
            buf = qemu_blockalign(cache_bs, IC_META_BATCH * IC_META_BLOCK_SIZE);
        }
        ret = bdrv_co_flush(cache_bs);
        for (size_t i = 0; ret == 0 && i < count; i++) {
            WITH_QEMU_LOCK_GUARD(&s->lock) {
                for (uint64_t j = 0; j < runs[i].count; j++) {
                    ic_core_encode_meta_block(s->core, runs[i].first + j,
                                              buf + j * IC_META_BLOCK_SIZE);
                }
            }
            ret = bdrv_co_pwrite(s->cache, runs[i].offset,
                                 runs[i].count * IC_META_BLOCK_SIZE, buf, 0);
        }
        if (ret == 0) {
            ret = bdrv_co_flush(cache_bs);
        }
        trace_intellicache_sync(bs, count, ret);
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            ic_core_sync_end(s->core, ret == 0);
            if (ret < 0 && !s->sync_error_reported) {
                s->sync_error_reported = true;
                report = true;
            }
        }
        if (ret < 0 || !final) {
            break;
        }
    }
    qemu_vfree(buf);
    qemu_co_mutex_unlock(&s->sync_lock);
    if (!final) {
        ic_buf_trim(bs);
    }
    if (report) {
        warn_report("intellicache: '%s': could not record cached data in "
                    "'%s': %s; it will be fetched again after a restart",
                    bdrv_get_node_name(bs), bdrv_get_node_name(cache_bs),
                    strerror(-ret));
    }
    return ret;
}

static void coroutine_fn ic_sync_entry(void *opaque)
{
    BlockDriverState *bs = opaque;

    bdrv_graph_co_rdlock();
    ic_co_sync(bs, false);
    bdrv_graph_co_rdunlock();
    bdrv_dec_in_flight(bs);
}

/* Start a metadata sync now, in a coroutine that drain waits for. */
static void ic_sync_now(BlockDriverState *bs)
{
    Coroutine *co = qemu_coroutine_create(ic_sync_entry, bs);

    bdrv_inc_in_flight(bs);
    aio_co_enter(bdrv_get_aio_context(bs), co);
}

static void ic_sync_timer_cb(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->sync_scheduled = false;
    }
    ic_sync_now(bs);
}

/*
 * The timer runs on QEMU_CLOCK_VIRTUAL_RT: in a system emulator it stands
 * still while the VM is stopped (for migration, say), so nothing is
 * written then; in qemu-storage-daemon, where QEMU_CLOCK_VIRTUAL never
 * runs, it is the real-time clock.
 */
void ic_sync_timer_new(BlockDriverState *bs, AioContext *ctx)
{
    BDRVIntellicacheState *s = bs->opaque;

    s->sync_timer = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL_RT, SCALE_MS,
                                  ic_sync_timer_cb, bs);
}

void ic_sync_timer_free(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->sync_timer) {
        timer_free(s->sync_timer);
        s->sync_timer = NULL;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->sync_scheduled = false;
    }
}

/*
 * Clusters were stored: record them within IC_SYNC_INTERVAL_MS.  Not while
 * the node is drained: drain end re-arms the timer.
 */
void ic_sync_schedule(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool arm = false;

    if (qatomic_read(&bs->quiesce_counter) > 0) {
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (s->sync_timer && !s->sync_scheduled &&
            ic_core_sync_needed(s->core)) {
            s->sync_scheduled = true;
            arm = true;
        }
    }
    if (arm) {
        timer_mod(s->sync_timer, qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL_RT) +
                  IC_SYNC_INTERVAL_MS);
    }
}

typedef struct IcFinalSync {
    BlockDriverState *bs;
    int ret;
    bool done;
} IcFinalSync;

static void coroutine_fn ic_final_sync_entry(void *opaque)
{
    IcFinalSync *fs = opaque;

    bdrv_graph_co_rdlock();
    fs->ret = ic_co_sync(fs->bs, true);
    bdrv_graph_co_rdunlock();
    fs->done = true;
    bdrv_dec_in_flight(fs->bs);
}

/*
 * Record everything stored so far and flush it (close, inactivation).  The
 * caller has drained the node, so no store is pending.  Main loop only.
 */
int GRAPH_RDLOCK ic_sync_all(BlockDriverState *bs)
{
    IcFinalSync fs = { .bs = bs };
    Coroutine *co = qemu_coroutine_create(ic_final_sync_entry, &fs);

    bdrv_inc_in_flight(bs);
    aio_co_enter(bdrv_get_aio_context(bs), co);
    BDRV_POLL_WHILE(bs, !fs.done);
    return fs.ret;
}

/* One store writer: write queued fetches until the queue is empty. */
static void coroutine_fn ic_store_writer_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;
    IcStoreJob job;

    bdrv_graph_co_rdlock();
    for (;;) {
        IcFetch *f;
        int ret = 0;

        WITH_QEMU_LOCK_GUARD(&s->lock) {
            if (!ic_core_store_next(s->core, &job)) {
                job.opaque = NULL;
            }
        }
        f = job.opaque;
        if (!f) {
            break;
        }
        if (job.write) {
            int64_t start_ns = get_clock();
            uint64_t ns;

            if (job.zeros) {
                /* A hole where the file system can: zeros cost no space. */
                ret = bdrv_co_pwrite_zeroes(s->cache, job.cache_offset,
                                            job.bytes, BDRV_REQ_MAY_UNMAP);
            } else {
                ret = bdrv_co_pwrite(s->cache, job.cache_offset, job.bytes,
                                     f->buf, 0);
            }
            ns = get_clock() - start_ns;
            ic_latency_record(s->latency, IC_LATENCY_STORE, ns);
            trace_intellicache_store(bs, f, f->offset, job.bytes, job.zeros,
                                     ret, ns);
        } else {
            trace_intellicache_store_skip(bs, f, f->offset, f->bytes);
        }
        if (job.write) {
            WITH_QEMU_LOCK_GUARD(&s->lock) {
                ic_core_fetch_stored(s->core, job.fetch, ret == 0);
                ic_fetch_left_locked(s);
            }
            if (ret == 0) {
                ic_sync_schedule(bs);
                ic_evict_kick(bs);
            } else {
                ic_cache_failed(bs, true, ret);
            }
        } else {
            WITH_QEMU_LOCK_GUARD(&s->lock) {
                ic_fetch_left_locked(s);
            }
        }
        ic_fetch_unref(f);
        bdrv_dec_in_flight(bs);
    }
    bdrv_graph_co_rdunlock();
    bdrv_dec_in_flight(bs);
}

/*
 * Start store writers for the fetches queued since the last call, in one
 * deferred-call section: with aio=native or io_uring, their writes are
 * submitted together, in one system call and one kick of the cache disk's
 * queue, instead of one per fetch.  A writer that finishes a write takes
 * the next fetch in the completion handler, which batches its writes too.
 */
static void ic_store_bh(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;
    unsigned start = 0;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->store_bh_scheduled = false;
        while (ic_core_store_writer_start(s->core)) {
            start++;
        }
    }
    defer_call_begin();
    while (start--) {
        bdrv_inc_in_flight(bs);
        qemu_coroutine_enter(qemu_coroutine_create(ic_store_writer_entry, bs));
    }
    defer_call_end();
}

/*
 * Fetch @f was admitted to the store queue (the caller took a reference
 * for it): start writers soon, together with other fetches, in the node's
 * AioContext.
 */
void ic_store_fetched(BlockDriverState *bs, IcFetch *f)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool schedule;

    bdrv_inc_in_flight(bs);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        schedule = !s->store_bh_scheduled;
        s->store_bh_scheduled = true;
    }
    if (schedule) {
        aio_bh_schedule_oneshot(bdrv_get_aio_context(bs), ic_store_bh, bs);
    }
}
