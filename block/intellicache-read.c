/*
 * intellicache: the read path.
 *
 * The core splits a read into hits, which are read from the cache file,
 * new fetches, which read the base in one of max-inflight slots, and waits
 * on fetches already in flight.  A reader gets its data as soon as the
 * fetch completes; storing it (intellicache-store.c) happens behind the
 * reply.  Sequential readers get read-ahead in the background.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "block/aio_task.h"
#include "block/block-io.h"
#include "intellicache-int.h"

/* Retries of a read whose joined read-ahead fetch failed. */
#define IC_READ_AHEAD_RETRIES 2

/* Allocate the buffer of fetch @f: a pooled one if the core has one. */
static void *ic_buf_get(BlockDriverState *bs, IcFetch *f)
{
    BDRVIntellicacheState *s = bs->opaque;
    void *buf;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        buf = ic_core_buf_take(s->core, f->bytes);
    }
    return buf ? buf : qemu_try_blockalign(bs, f->bytes);
}

/* Give pooled buffers back while the node is idle.  Called with @lock. */
static void ic_buf_reclaim_locked(BDRVIntellicacheState *s)
{
    void *buf;

    while ((buf = ic_core_buf_reclaim(s->core))) {
        qemu_vfree(buf);
    }
}

static IcFetch *ic_fetch_new(BDRVIntellicacheState *s, const IcSegment *seg,
                             IcFetchKind kind)
{
    IcFetch *f = g_new0(IcFetch, 1);

    f->s = s;
    f->id = seg->fetch;
    f->kind = kind;
    f->offset = seg->fetch_offset;
    f->bytes = seg->fetch_bytes;
    f->ret = -EINPROGRESS;
    f->refcnt = 1;
    qemu_co_queue_init(&f->waiters);
    ic_core_fetch_set_opaque(s->core, f->id, f);
    return f;
}

void ic_fetch_unref(IcFetch *f)
{
    BDRVIntellicacheState *s = f->s;

    if (qatomic_fetch_dec(&f->refcnt) != 1) {
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (!f->buf || !ic_core_buf_give(s->core, f->buf, f->bytes)) {
            qemu_vfree(f->buf);
        }
        ic_buf_reclaim_locked(s);
    }
    g_free(f);
}

/*
 * Read the base for fetch @f.  A demand fetch first waits for a slot; a
 * read-ahead fetch got its slot when it was planned.  Waiters get the data
 * as soon as it arrives; storing it into the cache is queued behind them.
 */
static int coroutine_fn GRAPH_RDLOCK ic_co_fetch(BlockDriverState *bs,
                                                 IcFetch *f)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool store;
    int ret;

    if (f->kind == IC_FETCH_DEMAND) {
        QEMU_LOCK_GUARD(&s->lock);
        while (!ic_core_slot_take(s->core, IC_FETCH_DEMAND)) {
            qemu_co_queue_wait(&s->slot_queue, &s->lock);
        }
    }
    f->buf = ic_buf_get(bs, f);
    if (f->buf) {
        ret = bdrv_co_pread(bs->file, f->offset, f->bytes, f->buf, 0);
    } else {
        ret = -ENOMEM;
    }

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (ic_core_slot_put(s->core)) {
            qemu_co_queue_next(&s->slot_queue);
        }
        ic_core_fetch_done(s->core, f->id, ret == 0);
        f->ret = ret;
        qemu_co_queue_restart_all(&f->waiters);
        store = ret == 0 && ic_core_store_admit(s->core, f->id);
        if (store) {
            qatomic_inc(&f->refcnt);
        }
        ic_fetch_left_locked(s);
    }
    if (store) {
        ic_store_fetched(bs, f);
    }
    return ret;
}

static void coroutine_fn ic_read_ahead_entry(void *opaque)
{
    IcFetch *f = opaque;
    BlockDriverState *bs = f->s->bs;

    bdrv_graph_co_rdlock();
    ic_co_fetch(bs, f);
    bdrv_graph_co_rdunlock();
    ic_fetch_unref(f);
    bdrv_dec_in_flight(bs);
}

/*
 * Plan fetches of [offset, offset + bytes) ahead of a sequential reader,
 * as long as the core gives read-ahead slots (it never takes queue depth
 * from demand misses).  Called with @lock; returns the coroutines to start
 * once it is dropped, in @cos (at most @max).
 */
static size_t ic_plan_read_ahead_locked(BlockDriverState *bs, uint64_t offset,
                                        uint64_t bytes, Coroutine **cos,
                                        size_t max)
{
    BDRVIntellicacheState *s = bs->opaque;
    uint64_t end = offset + bytes;
    size_t n = 0;

    while (offset < end && n < max &&
           ic_core_slot_take(s->core, IC_FETCH_READ_AHEAD)) {
        IcSegment seg;

        if (!ic_core_plan_read_ahead(s->core, offset, end - offset, &seg)) {
            seg.kind = IC_SEG_HIT;
            seg.bytes = end - offset;
        }
        if (seg.kind == IC_SEG_FETCH) {
            IcFetch *f = ic_fetch_new(s, &seg, IC_FETCH_READ_AHEAD);

            bdrv_inc_in_flight(bs);
            cos[n++] = qemu_coroutine_create(ic_read_ahead_entry, f);
        } else if (ic_core_slot_put(s->core)) {
            qemu_co_queue_next(&s->slot_queue);
        }
        offset += seg.bytes;
    }
    return n;
}

static int coroutine_fn GRAPH_RDLOCK
ic_co_read_range(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                 QEMUIOVector *qiov, size_t qiov_offset, bool may_read_ahead,
                 int retries);

/* Serve one planned segment of a read into @qiov at @qiov_offset. */
static int coroutine_fn GRAPH_RDLOCK
ic_co_read_segment(BlockDriverState *bs, const IcSegment *seg, IcFetch *fetch,
                   QEMUIOVector *qiov, size_t qiov_offset, int retries)
{
    BDRVIntellicacheState *s = bs->opaque;
    int ret;

    switch (seg->kind) {
    case IC_SEG_HIT:
        ret = bdrv_co_preadv_part(s->cache, seg->cache_offset, seg->bytes,
                                  qiov, qiov_offset, 0);
        if (ret < 0) {
            /* The base has the same data: not the reader's failure. */
            ic_cache_failed(bs, false, ret);
            ret = bdrv_co_preadv_part(bs->file, seg->offset, seg->bytes,
                                      qiov, qiov_offset, 0);
        }
        return ret;
    case IC_SEG_FETCH:
        ret = ic_co_fetch(bs, fetch);
        break;
    case IC_SEG_WAIT:
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            while (fetch->ret == -EINPROGRESS) {
                qemu_co_queue_wait(&fetch->waiters, &s->lock);
            }
            ret = fetch->ret;
        }
        if (ret < 0 && fetch->kind == IC_FETCH_READ_AHEAD && retries > 0) {
            /*
             * Read-ahead that failed (even for lack of a buffer) is not
             * this reader's failure: read the range as a miss of its own.
             */
            ic_fetch_unref(fetch);
            return ic_co_read_range(bs, seg->offset, seg->bytes, qiov,
                                    qiov_offset, false, retries - 1);
        }
        break;
    default:
        g_assert_not_reached();
    }
    if (ret == 0) {
        const uint8_t *data = fetch->buf;

        qemu_iovec_from_buf(qiov, qiov_offset,
                            data + (seg->offset - fetch->offset), seg->bytes);
    }
    ic_fetch_unref(fetch);
    return ret;
}

typedef struct IcReadTask {
    AioTask task;
    BlockDriverState *bs;
    IcSegment seg;
    IcFetch *fetch;
    QEMUIOVector *qiov;
    size_t qiov_offset;
    int retries;
} IcReadTask;

static int coroutine_fn ic_read_task_entry(AioTask *task)
{
    IcReadTask *t = container_of(task, IcReadTask, task);

    GRAPH_RDLOCK_GUARD();
    return ic_co_read_segment(t->bs, &t->seg, t->fetch, t->qiov,
                              t->qiov_offset, t->retries);
}

/*
 * Plan the next piece of [offset, offset + bytes): up to IC_PLAN_SEGMENTS
 * segments, with fetch objects attached to the new fetches before anything
 * yields, so that a read planned meanwhile finds them when it waits on
 * them.  Returns the number of segments, 0 if the cache is bypassed.
 */
static size_t coroutine_fn
ic_co_plan(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
           bool read_ahead, IcSegment *segs, IcFetch **fetches)
{
    BDRVIntellicacheState *s = bs->opaque;
    Coroutine *ra[IC_PLAN_SEGMENTS];
    uint64_t ra_offset, ra_bytes;
    size_t n, n_ra = 0;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        while (s->reloading) {
            qemu_co_queue_wait(&s->reload_queue, &s->lock);
        }
        if (ic_core_cache_state(s->core) == IC_CACHE_BYPASSED) {
            return 0;
        }
        read_ahead = read_ahead &&
            ic_core_note_read(s->core, offset, bytes, &ra_offset, &ra_bytes);
        n = ic_core_plan(s->core, offset, bytes, segs, IC_PLAN_SEGMENTS);
        assert(n > 0);
        for (size_t i = 0; i < n; i++) {
            fetches[i] = NULL;
            if (segs[i].kind == IC_SEG_FETCH) {
                fetches[i] = ic_fetch_new(s, &segs[i], IC_FETCH_DEMAND);
            } else if (segs[i].kind == IC_SEG_WAIT) {
                fetches[i] = segs[i].opaque;
                qatomic_inc(&fetches[i]->refcnt);
            }
        }
        if (read_ahead) {
            n_ra = ic_plan_read_ahead_locked(bs, ra_offset, ra_bytes, ra,
                                             ARRAY_SIZE(ra));
        }
    }
    for (size_t i = 0; i < n_ra; i++) {
        aio_co_enter(qemu_get_current_aio_context(), ra[i]);
    }
    return n;
}

static int coroutine_fn GRAPH_RDLOCK
ic_co_read_range(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                 QEMUIOVector *qiov, size_t qiov_offset, bool may_read_ahead,
                 int retries)
{
    IcSegment segs[IC_PLAN_SEGMENTS];
    IcFetch *fetches[IC_PLAN_SEGMENTS];
    int ret = 0;

    while (bytes > 0 && ret == 0) {
        size_t n = ic_co_plan(bs, offset, bytes, may_read_ahead, segs,
                              fetches);
        uint64_t planned = 0;

        may_read_ahead = false;
        if (n == 0) {
            /* Bypassed: the cache file is not to be trusted any more. */
            return bdrv_co_preadv_part(bs->file, offset, bytes, qiov,
                                       qiov_offset, 0);
        }
        for (size_t i = 0; i < n; i++) {
            planned += segs[i].bytes;
        }
        if (n == 1) {
            ret = ic_co_read_segment(bs, &segs[0], fetches[0], qiov,
                                     qiov_offset, retries);
        } else {
            AioTaskPool *pool = aio_task_pool_new(n);

            for (size_t i = 0; i < n; i++) {
                IcReadTask *t = g_new(IcReadTask, 1);

                *t = (IcReadTask) {
                    .task.func = ic_read_task_entry,
                    .bs = bs,
                    .seg = segs[i],
                    .fetch = fetches[i],
                    .qiov = qiov,
                    .qiov_offset = qiov_offset + (segs[i].offset - offset),
                    .retries = retries,
                };
                aio_task_pool_start_task(pool, &t->task);
            }
            aio_task_pool_wait_all(pool);
            ret = aio_task_pool_status(pool);
            aio_task_pool_free(pool);
        }
        offset += planned;
        bytes -= planned;
        qiov_offset += planned;
    }
    return ret;
}

int coroutine_fn GRAPH_RDLOCK
ic_co_preadv_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  QEMUIOVector *qiov, size_t qiov_offset,
                  BdrvRequestFlags flags)
{
    return ic_co_read_range(bs, offset, bytes, qiov, qiov_offset, true,
                            IC_READ_AHEAD_RETRIES);
}

/*
 * Cached clusters are data in the cache file, reported without asking the
 * base: an NBD export asks for the block status of every read, and on a
 * remote base each question would be a round trip.  Clusters not cached yet
 * pass the question through to the base, which knows about holes.
 */
int coroutine_fn GRAPH_RDLOCK
ic_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                   int64_t bytes, int64_t *pnum, int64_t *map,
                   BlockDriverState **file)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool present = false;
    uint64_t run = bytes;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (ic_core_cache_state(s->core) != IC_CACHE_BYPASSED) {
            run = ic_core_present_run(s->core, offset, bytes, &present);
            if (run == 0) {
                return -EINVAL;
            }
            /*
             * A run may end at the unaligned end of the base, while the
             * block layer asked for a range rounded up to the request
             * alignment.
             */
            if (offset + run >= ic_core_geometry(s->core)->base_size) {
                run = bytes;
            }
            *map = present ? ic_core_cache_offset(s->core, offset) : offset;
        }
    }
    *pnum = run;
    if (present) {
        *file = s->cache->bs;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
    }
    *map = offset;
    *file = bs->file->bs;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}
