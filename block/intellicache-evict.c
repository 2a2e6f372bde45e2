/*
 * intellicache: freeing clusters of a bounded cache (cache-size).
 *
 * The cache file stays direct-mapped: an evicted cluster's data is freed
 * by discarding its range of the file (a hole: no space on the file
 * system), and the cluster is fetched and stored again, at the same
 * place, if it is read again.  The core decides when and what to free
 * (CacheBudget, EvictionPolicy); this file frees it, one batch at a time,
 * in the one order that is crash-safe:
 *
 *   1. the batch's clusters are absent in memory from the start (the core
 *      does that in ic_core_evict_begin()): no new hit reads them, and
 *      what is fetched for them meanwhile is not stored;
 *   2. hits planned before that may still be reading them: wait until
 *      they end (pins, below);
 *   3. record the clusters as absent on disk (a metadata sync): from then
 *      on a crash cannot leave a record of a cluster over a hole;
 *   4. discard their data;
 *   5. end the batch: the room is free, the clusters may be stored again.
 *
 * In a pool (intellicache-pool.c), the pool asks the member that holds the
 * most to free room when the pool is nearly full.  Another node cannot be
 * woken safely from here (it may be closing, in another thread), so each
 * member looks for what it is asked every IC_POOL_TICK_MS with a timer of
 * its own, as well as after each of its stores.
 *
 * Pins: each hit planned in a bounded cache counts in one of two
 * counters, the one of the current pin epoch, until its read of the cache
 * file ends.  A batch flips the epoch when it begins, under the node's
 * lock, and waits for the old epoch's counter to reach zero: every hit
 * planned before the batch began has then ended, and every hit planned
 * after it cannot have planned the batch's clusters.  The counters are
 * atomic, so a hit ends without taking the lock; the batch polls for
 * zero, as hits take microseconds and a wake-up from every hit would cost
 * the hot path.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/coroutine.h"
#include "qemu/error-report.h"
#include "block/block-io.h"
#include "intellicache-int.h"

/* How often a batch checks whether the hits it waits for have ended. */
#define IC_PIN_POLL_NS (100 * SCALE_US)

/* How often a pool member looks for room the pool asks it to free. */
#define IC_POOL_TICK_MS 100

/* Byte ranges of the cache file discarded per round of ic_co_evict_free(). */
#define IC_EVICT_RANGES 64

/* Wait until every hit counted in pin epoch @epoch has ended. */
static void coroutine_fn ic_co_evict_unpinned(BDRVIntellicacheState *s,
                                              unsigned epoch)
{
    while (qatomic_read(&s->pins[epoch]) > 0) {
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, IC_PIN_POLL_NS);
    }
}

/* Discard the data of the batch being freed (step 4). */
static int coroutine_fn GRAPH_RDLOCK
ic_co_evict_free(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcRange ranges[IC_EVICT_RANGES];
    size_t from = 0;

    for (;;) {
        size_t n;

        WITH_QEMU_LOCK_GUARD(&s->lock) {
            n = ic_core_evict_ranges(s->core, from, ranges,
                                     ARRAY_SIZE(ranges));
        }
        if (n == 0) {
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            int ret = bdrv_co_pdiscard(s->cache, ranges[i].offset,
                                       ranges[i].bytes);
            if (ret < 0) {
                return ret;
            }
        }
        from += n;
    }
}

/*
 * Free one batch.  False when none is needed, the node is drained, or
 * freeing failed: @evicting is then cleared, in the same section that
 * found it so, so that a kick never misses a batch that becomes needed.
 */
static bool coroutine_fn GRAPH_RDLOCK ic_co_evict_batch(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    unsigned epoch;
    bool durable;
    int ret;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        /* A drained node writes nothing: drain end starts freeing again. */
        if (qatomic_read(&bs->quiesce_counter) > 0 ||
            !ic_core_evict_needed(s->core)) {
            s->evicting = false;
            return false;
        }
        trace_intellicache_evict_batch(bs, ic_core_evict_begin(s->core));
        epoch = s->pin_epoch;
        s->pin_epoch ^= 1;
    }
    ic_co_evict_unpinned(s, epoch);
    ret = ic_co_sync(bs, false);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        durable = ic_core_evict_durable(s->core);
    }
    if (ret == 0 && durable) {
        ret = ic_co_evict_free(bs);
    } else if (ret == 0) {
        /* The sync wrote nothing: the node is no longer active. */
        ret = -EROFS;
    }
    trace_intellicache_evict_done(bs, ret);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ic_core_evict_end(s->core);
        if (ret < 0) {
            s->evicting = false;
        }
    }
    if (ret < 0) {
        /*
         * The data stays where it is, unrecorded, which is safe; but the
         * cache can no longer be kept within its bound, so it stops
         * storing (hits are still served).
         */
        ic_cache_failed(bs, true, ret);
        return false;
    }
    return true;
}

static void coroutine_fn ic_evict_entry(void *opaque)
{
    BlockDriverState *bs = opaque;

    bdrv_graph_co_rdlock();
    while (ic_co_evict_batch(bs)) {
        /* the next batch, if still needed */
    }
    bdrv_graph_co_rdunlock();
    bdrv_dec_in_flight(bs);
}

/*
 * Start freeing clusters if the core says the cache is nearly full (after
 * a store, a new bound, drain end), in a coroutine that drain waits for.
 * A coroutine already freeing goes on by itself.  In a pool, this is also
 * when the pool looks for a member to free room (ic_pool_victim()): this
 * node, or another one, which its pool timer wakes.
 */
void ic_evict_kick(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool start = false;

    if (qatomic_read(&bs->quiesce_counter) > 0) {
        return;
    }
    if (s->pool) {
        ic_pool_victim(s->pool);
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        /* No core yet: drain end while open attaches the children. */
        if (s->core && !s->evicting && ic_core_evict_needed(s->core)) {
            s->evicting = true;
            start = true;
        }
    }
    if (start) {
        bdrv_inc_in_flight(bs);
        aio_co_enter(bdrv_get_aio_context(bs),
                     qemu_coroutine_create(ic_evict_entry, bs));
    }
}

/*
 * Discard data that a crash left in the slots of clusters that are not
 * recorded: stored but not yet recorded when the process died, or evicted
 * and recorded as such but not yet discarded.  The budget counts only
 * recorded clusters, so such data would take room beyond the bound.  The
 * cache file's allocation is walked by block status (SEEK_DATA on a
 * file), so the cost follows the number of allocated extents, not the
 * size of the base.  With nothing in flight (ic_co_evict_all()).
 */
static int coroutine_fn GRAPH_RDLOCK
ic_co_evict_leftovers(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    BlockDriverState *cache = s->cache->bs;
    IcRange ranges[IC_EVICT_RANGES];
    int64_t end = bdrv_co_getlength(cache);
    int64_t offset = 0;

    while (offset < end) {
        int64_t pnum;
        int ret = bdrv_co_block_status(cache, offset, end - offset, &pnum,
                                       NULL, NULL);

        if (ret < 0) {
            return ret;
        }
        if (pnum <= 0) {
            break;
        }
        for (int64_t pos = offset; (ret & BDRV_BLOCK_DATA) &&
             pos < offset + pnum;) {
            size_t n;

            WITH_QEMU_LOCK_GUARD(&s->lock) {
                n = ic_core_unrecorded(s->core, pos, offset + pnum - pos,
                                       ranges, ARRAY_SIZE(ranges));
            }
            for (size_t i = 0; i < n; i++) {
                int r;

                trace_intellicache_evict_leftover(bs, ranges[i].offset,
                                                  ranges[i].bytes);
                r = bdrv_co_pdiscard(s->cache, ranges[i].offset,
                                     ranges[i].bytes);
                if (r < 0) {
                    return r;
                }
            }
            if (n < ARRAY_SIZE(ranges)) {
                break;
            }
            pos = ranges[n - 1].offset + ranges[n - 1].bytes;
        }
        offset += pnum;
    }
    return 0;
}

/*
 * Whether ic_co_evict_all() has work: a bounded, caching cache whose
 * leftovers were not discarded since the cache file was loaded, and no
 * freeing under way.  If so, it is marked begun.  Called with @lock.
 */
static bool ic_evict_all_begin_locked(BDRVIntellicacheState *s)
{
    if (!s->bounded || s->leftovers_done || s->no_io || s->evicting ||
        ic_core_cache_state(s->core) != IC_CACHE_CACHING) {
        return false;
    }
    s->evicting = true;
    s->leftovers_done = true;
    return true;
}

/* The work of ic_co_evict_all(), once begun. */
static void coroutine_fn GRAPH_RDLOCK ic_co_evict_all_run(BlockDriverState *bs)
{
    int ret = ic_co_evict_leftovers(bs);

    if (ret < 0) {
        ic_cache_failed(bs, true, ret);
    }
    while (ic_co_evict_batch(bs)) {
        /* the next batch, if still needed */
    }
}

/*
 * With nothing in flight, in a bounded cache: discard what a crash left
 * unrecorded (once per load of the cache file), then free clusters until
 * the cache is within its bound.  The leftover walk must not meet a
 * store (it would punch a hole under a cluster being recorded): callers
 * hold the node drained, or not yet open to reads, or reloading.
 */
void coroutine_fn GRAPH_RDLOCK ic_co_evict_all(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool begun;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        begun = ic_evict_all_begin_locked(s);
    }
    if (begun) {
        ic_co_evict_all_run(bs);
    }
}

typedef struct IcEvictAll {
    BlockDriverState *bs;
    bool done;
} IcEvictAll;

static void coroutine_fn ic_evict_all_entry(void *opaque)
{
    IcEvictAll *ea = opaque;

    bdrv_graph_co_rdlock();
    ic_co_evict_all_run(ea->bs);
    bdrv_graph_co_rdunlock();
    ea->done = true;
    bdrv_dec_in_flight(ea->bs);
}

/*
 * ic_co_evict_all() from the main loop, at open or when a reopen first
 * gives the cache a bound, and wait.  At open, a cache larger than a new
 * cache-size is so shrunk before the node is used.  A reopen is drained,
 * so freeing waits for drain end (ic_co_evict_batch()) and does not hold
 * the monitor.
 */
void GRAPH_RDLOCK ic_evict_all(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcEvictAll ea = { .bs = bs };

    /* Most opens and reopens have nothing to do: no coroutine for them. */
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (!ic_evict_all_begin_locked(s)) {
            return;
        }
    }
    bdrv_inc_in_flight(bs);
    aio_co_enter(bdrv_get_aio_context(bs),
                 qemu_coroutine_create(ic_evict_all_entry, &ea));
    BDRV_POLL_WHILE(bs, !ea.done);
}

static void ic_pool_timer_cb(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;

    ic_evict_kick(bs);
    /* A drain that began meanwhile stops it; drain end re-arms it. */
    if (qatomic_read(&bs->quiesce_counter) == 0) {
        timer_mod(s->pool_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + IC_POOL_TICK_MS);
    }
}

/* The pool timer of a pool member, in its AioContext @ctx, armed. */
void ic_pool_timer_new(BlockDriverState *bs, AioContext *ctx)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->pool) {
        s->pool_timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                      ic_pool_timer_cb, bs);
        ic_pool_timer_arm(bs);
    }
}

void ic_pool_timer_free(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->pool_timer) {
        timer_free(s->pool_timer);
        s->pool_timer = NULL;
    }
}

/* Not while drained: drain end arms it again. */
void ic_pool_timer_arm(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->pool_timer) {
        timer_mod(s->pool_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + IC_POOL_TICK_MS);
    }
}

void ic_pool_timer_disarm(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->pool_timer) {
        timer_del(s->pool_timer);
    }
}
