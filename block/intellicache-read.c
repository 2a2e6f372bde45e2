/*
 * intellicache: the read path.
 *
 * The core splits a read into hits, which are read from the cache file,
 * new fetches, which read the base in one of max-inflight slots, and waits
 * on fetches already in flight.  A reader gets its data as soon as the
 * fetch completes; storing it (intellicache-store.c) happens behind the
 * reply.  Sequential readers get read-ahead in the background.
 *
 * Every fetch runs in a coroutine of its own and its readers wait for it,
 * so that a reader can give up at its deadline (miss-timeout) even when
 * the base never answers; the fetch then ends whenever the base does, and
 * its data, which is the base's, is stored like any other.  A miss whose
 * fetch failed with an error that may pass is read again with backoff
 * until its deadline (ic_co_preadv_part()); while the base is down, new
 * misses fail at once (intellicache-health.c).
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/memalign.h"
#include "qemu/units.h"
#include "block/aio_task.h"
#include "block/block-io.h"
#include "intellicache-int.h"

#ifdef CONFIG_MALLOC_TRIM
#include <malloc.h>
#endif

/* Retries of a read whose joined read-ahead fetch failed. */
#define IC_READ_AHEAD_RETRIES 2

/* ic_co_plan(): the node is bypassed, read the base. */
#define IC_PLAN_BYPASS 0

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

/*
 * Once a node that went through at least this many bytes of fetch buffers
 * is idle, ic_buf_trim() gives free heap memory back to the system.
 */
#define IC_BUF_TRIM_CHURN (4 * MiB)

/*
 * Give the free memory of malloc()'s heap back to the system, after a
 * burst of misses, once the node is idle.  Called after each metadata
 * sync (at most once a second while stores go on), outside the I/O path.
 *
 * A fetch buffer of a cluster or a few (64 KiB by default) comes from the
 * heap, below glibc's mmap threshold, and with stores behind the replies
 * many are alive at once; once the 256 KiB buffer of a sync (or a
 * max-fetch buffer) has been mmap()ed and freed, glibc raises that
 * threshold and those come from the heap too.  Freed, they stay resident
 * between blocks that live on: 3.7 MiB after 2000 random 4 KiB reads over
 * a 1 TiB base (docs/design.rst, Memory).  QEMU's RCU thread calls
 * malloc_trim() for the same reason, but only when it has callbacks to
 * run.  Trimming is process-wide and takes the allocator's locks briefly;
 * nodes that are busy never do it, and idle ones only after real churn.
 */
void ic_buf_trim(BlockDriverState *bs)
{
#ifdef CONFIG_MALLOC_TRIM
    BDRVIntellicacheState *s = bs->opaque;
    uint64_t churn = 0;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (s->buf_churn >= IC_BUF_TRIM_CHURN && ic_core_idle(s->core)) {
            churn = s->buf_churn;
            s->buf_churn = 0;
        }
    }
    if (churn) {
        trace_intellicache_buf_trim(bs, churn);
        malloc_trim(0);
    }
#endif
}

/* Give pooled buffers back while the node is idle.  Called with @lock. */
static void ic_buf_reclaim_locked(BDRVIntellicacheState *s)
{
    void *buf;

    while ((buf = ic_core_buf_reclaim(s->core))) {
        qemu_vfree(buf);
    }
}

/*
 * A new fetch, planned by the core, with one reference: its coroutine's.
 * A zero fill (@zeros) reads nothing: it is born ended, and its reference
 * is its creator's.  Called with @lock.
 */
static IcFetch *ic_fetch_new_locked(BlockDriverState *bs, const IcSegment *seg,
                                    IcFetchKind kind, bool zeros)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcFetch *f = g_new0(IcFetch, 1);

    f->s = s;
    f->id = seg->fetch;
    f->kind = kind;
    f->zeros = zeros;
    f->offset = seg->fetch_offset;
    f->bytes = seg->fetch_bytes;
    f->refcnt = 1;
    if (zeros) {
        qemu_co_queue_init(&f->op.waiters);
        f->op.ret = 0;
    } else {
        ic_base_op_init_locked(bs, &f->op);
    }
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
        if (f->buf) {
            s->buf_churn += f->bytes;
        }
        if (!f->buf || !ic_core_buf_give(s->core, f->buf, f->bytes)) {
            qemu_vfree(f->buf);
        }
        ic_buf_reclaim_locked(s);
    }
    g_free(f);
}

/*
 * What the calling thread has asked of the CPUs, in ns: the time it ran
 * plus the time it waited runnable for a CPU, from
 * /proc/thread-self/schedstat (sum_exec_runtime and run_delay).  A thread
 * starved by other load runs little and waits much; its CPU clock alone
 * would call it idle exactly when storing takes the most from guests (the
 * iotest intellicache-deferred failed so beside a build using every CPU).
 * Where the file cannot be read (a kernel without CONFIG_SCHED_INFO), the
 * thread's CPU clock; *@waits says which.  -1 if neither can be read.
 */
static int64_t ic_thread_demand_ns(bool *waits)
{
    unsigned long long run, wait;
    char buf[96];
    struct timespec ts;
    ssize_t len;
    int fd;

    fd = qemu_open_old("/proc/thread-self/schedstat", O_RDONLY);
    if (fd >= 0) {
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len > 0) {
            buf[len] = '\0';
            if (sscanf(buf, "%llu %llu", &run, &wait) == 2) {
                *waits = true;
                return run + wait;
            }
        }
    }
    *waits = false;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0) {
        return -1;
    }
    return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
}

/*
 * How busy the thread that serves @s is: the share of its last measured
 * window that it ran or waited for a CPU (ic_thread_demand_ns()), in
 * thousandths (ic_core_note_thread_busy()).  That counts the work of every
 * node the thread serves, as it should: they share its time.  A window
 * ends at the first call IC_BUSY_WINDOW_NS or more after it began: within
 * a window only the wall clock is read, and the thread id and the
 * thread's times (system calls) once per window, not per miss.  A window
 * that ends in another thread than it began in (the node moved, or misses
 * end in several threads), or measured by another clock, measures nothing
 * and starts again.  Called with @lock.
 */
#define IC_BUSY_WINDOW_NS (100 * SCALE_MS)

static unsigned ic_thread_busy_permille_locked(BDRVIntellicacheState *s)
{
    IcThreadBusy *b = &s->thread_busy;
    int64_t wall = get_clock();
    int64_t demand;
    bool waits;
    int tid;

    if (b->wall_ns && wall - b->wall_ns < IC_BUSY_WINDOW_NS) {
        return b->permille;
    }
    tid = qemu_get_thread_id();
    demand = ic_thread_demand_ns(&waits);
    if (demand < 0) {
        return 0; /* not measured: never busy */
    }
    if (b->wall_ns && b->tid == tid && b->waits == waits) {
        b->permille = MIN(1000, (demand - b->demand_ns) * 1000 /
                                (wall - b->wall_ns));
    }
    b->wall_ns = wall;
    b->demand_ns = demand;
    b->waits = waits;
    b->tid = tid;
    return b->permille;
}

/*
 * The base read of @f ended with @ret: tell its readers, the core and the
 * base's health.  Returns true if its data is to be stored (the caller
 * then owns one more reference).  Called with @lock.
 */
static bool ic_fetch_end_locked(BlockDriverState *bs, IcFetch *f, int ret)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool store;

    ic_core_fetch_done(s->core, f->id, ret == 0);
    ic_base_op_end_locked(&f->op, ret);
    if (ret == 0) {
        if (f->op.abandoned && !f->op.waiting) {
            ic_health_count(s->health, IC_HEALTH_LATE_READS);
        }
        ic_health_note_locked(bs, IC_BASE_READ_OK,
                              "a read of the base succeeded");
    } else if (ret != -ENOMEM && ic_base_error_transient(-ret)) {
        ic_health_note_locked(bs, IC_BASE_READ_FAILED,
                              "a read of the base failed: %s",
                              strerror(-ret));
    }
    ic_core_note_thread_busy(s->core, ic_thread_busy_permille_locked(s));
    store = ret == 0 && ic_core_store_admit(s->core, f->id);
    if (store) {
        qatomic_inc(&f->refcnt);
    } else if (ret == 0) {
        trace_intellicache_store_skip(bs, f, f->offset, f->bytes);
    }
    ic_fetch_left_locked(s);
    return store;
}

/*
 * Read the base for fetch @f.  A demand fetch first waits for a slot; a
 * read-ahead fetch got its slot when it was planned.  A demand fetch whose
 * readers all gave up while it waited for a slot, with the base down, does
 * not read it: nobody wants the data, and the base is not answering.
 * Waiters get the data as soon as it arrives; storing it into the cache is
 * queued behind them.
 */
static void coroutine_fn GRAPH_RDLOCK ic_co_fetch(BlockDriverState *bs,
                                                  IcFetch *f)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool store, skip = false;
    int ret;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (f->kind == IC_FETCH_DEMAND) {
            while (!ic_core_slot_take(s->core, IC_FETCH_DEMAND)) {
                qemu_co_queue_wait(&s->slot_queue, &s->lock);
            }
        }
        skip = f->op.abandoned && !f->op.waiting &&
               ic_health_state(s->health) == IC_BASE_DOWN;
        f->op.start_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        if (f->kind == IC_FETCH_DEMAND) {
            ic_core_note_guest_miss(s->core, f->op.start_ms);
        }
    }
    f->buf = skip ? NULL : ic_buf_get(bs, f);
    if (skip) {
        ret = -EIO;
    } else if (f->buf) {
        int64_t start_ns = get_clock();
        uint64_t ns;

        trace_intellicache_fetch_start(bs, f, ic_fetch_kind_name(f->kind),
                                       f->offset, f->bytes);
        ret = bdrv_co_pread(bs->file, f->offset, f->bytes, f->buf, 0);
        ns = get_clock() - start_ns;
        ic_latency_record(s->latency, IC_LATENCY_FETCH, ns);
        trace_intellicache_fetch_done(bs, f, ret, ns);
    } else {
        ret = -ENOMEM;
    }

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (ic_core_slot_put(s->core)) {
            qemu_co_queue_next(&s->slot_queue);
        }
        store = ic_fetch_end_locked(bs, f, ret);
    }
    if (store) {
        ic_store_fetched(bs, f);
    } else if (ret == 0) {
        /* Maybe deferred: store it once guests are quiet. */
        ic_defer_schedule(bs);
    }
}

/* The coroutine of a fetch, demand or read-ahead. */
static void coroutine_fn ic_fetch_entry(void *opaque)
{
    IcFetch *f = opaque;
    BlockDriverState *bs = f->s->bs;

    bdrv_graph_co_rdlock();
    ic_co_fetch(bs, f);
    bdrv_graph_co_rdunlock();
    ic_fetch_unref(f);
    bdrv_dec_in_flight(bs);
}

/* When read @rd stops waiting for the base: 0 for never. */
static int64_t ic_read_deadline(IcRead *rd)
{
    if (!rd->timeout_ms) {
        return 0;
    }
    if (!rd->start_ns) {
        rd->start_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    }
    return rd->start_ns + rd->timeout_ms * SCALE_MS;
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
    uint64_t start = offset, end = offset + bytes;
    size_t n = 0;

    while (offset < end && n < max &&
           ic_core_slot_take(s->core, IC_FETCH_READ_AHEAD)) {
        IcSegment seg;

        if (!ic_core_plan_read_ahead(s->core, offset, end - offset, &seg)) {
            seg.kind = IC_SEG_HIT;
            seg.bytes = end - offset;
        }
        if (seg.kind == IC_SEG_FETCH) {
            IcFetch *f = ic_fetch_new_locked(bs, &seg, IC_FETCH_READ_AHEAD,
                                             false);

            bdrv_inc_in_flight(bs);
            cos[n++] = qemu_coroutine_create(ic_fetch_entry, f);
        } else if (ic_core_slot_put(s->core)) {
            qemu_co_queue_next(&s->slot_queue);
        }
        offset += seg.bytes;
    }
    if (n) {
        trace_intellicache_read_ahead(bs, start, offset - start, n);
    }
    return n;
}

int64_t coroutine_fn ic_co_prefetch_start(BlockDriverState *bs,
                                          uint64_t offset, uint64_t bytes,
                                          bool refill, IcFetch **fetch)
{
    BDRVIntellicacheState *s = bs->opaque;
    Coroutine *co = NULL;
    uint64_t max_bytes;
    IcSegment seg;
    size_t n;

    *fetch = NULL;
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (ic_health_state(s->health) != IC_BASE_UP) {
            return -EIO;
        }
        /* Guests first: while they miss, one small prefetch at a time. */
        if (s->reloading ||
            !ic_core_prefetch_slot_take(s->core,
                                        qemu_clock_get_ms(QEMU_CLOCK_REALTIME),
                                        &max_bytes)) {
            return 0;
        }
        bytes = MIN(bytes, max_bytes);
        n = refill ? ic_core_plan_refill(s->core, offset, bytes, &seg)
                   : ic_core_plan_prefetch(s->core, offset, bytes, &seg);
        if (!n) {
            if (ic_core_slot_put(s->core)) {
                qemu_co_queue_next(&s->slot_queue);
            }
            return -ENOTSUP;
        }
        if (seg.kind == IC_SEG_FETCH) {
            *fetch = ic_fetch_new_locked(bs, &seg, IC_FETCH_PREFETCH,
                                         false);
            qatomic_inc(&(*fetch)->refcnt); /* the caller's */
            bdrv_inc_in_flight(bs);
            co = qemu_coroutine_create(ic_fetch_entry, *fetch);
        } else if (ic_core_slot_put(s->core)) {
            qemu_co_queue_next(&s->slot_queue);
        }
    }
    if (co) {
        aio_co_enter(qemu_get_current_aio_context(), co);
    }
    return seg.bytes;
}

/* Serve one planned segment of a read into @qiov at @qiov_offset. */
static int coroutine_fn GRAPH_RDLOCK
ic_co_read_segment(BlockDriverState *bs, IcRead *rd, const IcSegment *seg,
                   IcFetch *fetch, QEMUIOVector *qiov, size_t qiov_offset)
{
    BDRVIntellicacheState *s = bs->opaque;
    int ret;

    if (seg->kind == IC_SEG_HIT) {
        ret = bdrv_co_preadv_part(s->cache, seg->cache_offset, seg->bytes,
                                  qiov, qiov_offset, 0);
        if (ret < 0) {
            /* The base has the same data: not the reader's failure. */
            ic_cache_failed(bs, false, ret);
            WITH_QEMU_LOCK_GUARD(&s->lock) {
                ic_core_note_hit_failed(s->core, seg->bytes);
            }
            rd->missed = true;
            ret = bdrv_co_preadv_part(bs->file, seg->offset, seg->bytes,
                                      qiov, qiov_offset, 0);
        }
        return ret;
    }

    /* A new fetch (its coroutine is started) or one already in flight. */
    ret = ic_co_base_op_wait(s, &fetch->op, ic_read_deadline(rd),
                             &rd->timed_out);
    if (ret == 0 && fetch->zeros) {
        qemu_iovec_memset(qiov, qiov_offset, 0, seg->bytes);
    } else if (ret == 0) {
        const uint8_t *data = fetch->buf;

        qemu_iovec_from_buf(qiov, qiov_offset,
                            data + (seg->offset - fetch->offset), seg->bytes);
    } else if (fetch->kind != IC_FETCH_DEMAND && !rd->timed_out) {
        /*
         * Read-ahead or prefetch that failed (even for lack of a buffer)
         * is not this reader's failure: ic_co_preadv_part() reads it
         * again at once.
         */
        rd->read_ahead_failed = true;
    }
    ic_fetch_unref(fetch);
    return ret;
}

typedef struct IcReadTask {
    AioTask task;
    BlockDriverState *bs;
    IcRead *rd;
    IcSegment seg;
    IcFetch *fetch;
    QEMUIOVector *qiov;
    size_t qiov_offset;
} IcReadTask;

static int coroutine_fn ic_read_task_entry(AioTask *task)
{
    IcReadTask *t = container_of(task, IcReadTask, task);

    GRAPH_RDLOCK_GUARD();
    return ic_co_read_segment(t->bs, t->rd, &t->seg, t->fetch, t->qiov,
                              t->qiov_offset);
}

/* Whether [offset, offset + bytes) is all in the cache.  With @lock. */
static bool ic_range_cached_locked(BDRVIntellicacheState *s, uint64_t offset,
                                   uint64_t bytes)
{
    while (bytes > 0) {
        bool present;
        uint64_t run = ic_core_present_run(s->core, offset, bytes, &present);

        if (!run || !present) {
            return false;
        }
        offset += run;
        bytes -= run;
    }
    return true;
}

/*
 * The hits of one planned piece of a read in a bounded cache, counted in
 * the node's pins until the piece is served (intellicache-evict.c).
 */
typedef struct IcPins {
    unsigned epoch;
    unsigned count;
} IcPins;

/*
 * Plan the next piece of [offset, offset + bytes): up to IC_PLAN_SEGMENTS
 * segments, with fetch objects attached to the new fetches before anything
 * yields, so that a read planned meanwhile finds them when it waits on
 * them, and their coroutines started.  Its hits are pinned in @pins (the
 * caller unpins them once they are read).  Returns the number of segments,
 * IC_PLAN_BYPASS if the cache is bypassed, or -EIO if the read misses
 * while the base is down and @first (a read already waiting for the base
 * goes on until its own deadline).
 */
static int coroutine_fn
ic_co_plan(BlockDriverState *bs, IcRead *rd, uint64_t offset, uint64_t bytes,
           bool read_ahead, bool first, IcSegment *segs, IcFetch **fetches,
           IcPins *pins)
{
    BDRVIntellicacheState *s = bs->opaque;
    Coroutine *cos[2 * IC_PLAN_SEGMENTS];
    uint64_t ra_offset, ra_bytes;
    size_t n, n_cos = 0;
    unsigned hits = 0, waits = 0;

    pins->count = 0;
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        while (s->reloading) {
            qemu_co_queue_wait(&s->reload_queue, &s->lock);
        }
        if (ic_core_cache_state(s->core) == IC_CACHE_BYPASSED) {
            rd->missed = true;
            ic_core_note_bypass(s->core, bytes);
            trace_intellicache_read_bypass(bs, offset, bytes);
            return IC_PLAN_BYPASS;
        }
        if (first && ic_health_fails_fast(s->health, rd->timeout_ms) &&
            !ic_range_cached_locked(s, offset, bytes)) {
            ic_health_count(s->health, IC_HEALTH_FAST_FAILS);
            rd->failed_fast = true;
            rd->missed = true;
            trace_intellicache_read_fail_fast(bs, offset, bytes);
            return -EIO;
        }
        /*
         * Every user read is noted once (the scan filter of a bounded
         * cache follows them all), but a base that is not up gets no
         * reads that nobody asked for.
         */
        read_ahead = read_ahead &&
            ic_core_note_read(s->core, offset, bytes, &ra_offset, &ra_bytes) &&
            ic_health_state(s->health) == IC_BASE_UP;
        n = ic_core_plan(s->core, offset, bytes, segs, IC_PLAN_SEGMENTS);
        assert(n > 0);
        pins->epoch = s->pin_epoch;
        for (size_t i = 0; i < n; i++) {
            fetches[i] = NULL;
            if (segs[i].kind == IC_SEG_HIT) {
                hits++;
                pins->count += s->bounded;
            }
            if (segs[i].kind == IC_SEG_FETCH) {
                fetches[i] = ic_fetch_new_locked(bs, &segs[i],
                                                 IC_FETCH_DEMAND, false);
                bdrv_inc_in_flight(bs);
                cos[n_cos++] = qemu_coroutine_create(ic_fetch_entry,
                                                     fetches[i]);
            } else if (segs[i].kind == IC_SEG_WAIT) {
                fetches[i] = segs[i].opaque;
                waits++;
            }
            if (fetches[i]) {
                qatomic_inc(&fetches[i]->refcnt); /* the reader's */
            }
        }
        if (pins->count) {
            qatomic_add(&s->pins[pins->epoch], pins->count);
        }
        rd->missed = rd->missed || hits < n;
        trace_intellicache_read_plan(bs, offset, bytes, n, hits,
                                     n - hits - waits, waits);
        if (read_ahead) {
            n_cos += ic_plan_read_ahead_locked(bs, ra_offset, ra_bytes,
                                               cos + n_cos,
                                               ARRAY_SIZE(cos) - n_cos);
        }
    }
    for (size_t i = 0; i < n_cos; i++) {
        aio_co_enter(qemu_get_current_aio_context(), cos[i]);
    }
    return n;
}

/*
 * Read [offset, offset + bytes) once: plan it piece by piece and serve
 * each piece.  The first error ends it; ic_co_preadv_part() decides
 * whether to read again.
 */
static int coroutine_fn GRAPH_RDLOCK
ic_co_read_range(BlockDriverState *bs, IcRead *rd, uint64_t offset,
                 uint64_t bytes, QEMUIOVector *qiov, size_t qiov_offset,
                 bool may_read_ahead, bool first)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcSegment segs[IC_PLAN_SEGMENTS];
    IcFetch *fetches[IC_PLAN_SEGMENTS];
    int ret = 0;

    while (bytes > 0 && ret == 0) {
        IcPins pins;
        int n = ic_co_plan(bs, rd, offset, bytes, may_read_ahead, first, segs,
                           fetches, &pins);
        uint64_t planned = 0;

        may_read_ahead = false;
        if (n < 0) {
            return n;
        }
        if (n == IC_PLAN_BYPASS) {
            /* Bypassed: the cache file is not to be trusted any more. */
            return bdrv_co_preadv_part(bs->file, offset, bytes, qiov,
                                       qiov_offset, 0);
        }
        for (int i = 0; i < n; i++) {
            planned += segs[i].bytes;
        }
        if (n == 1) {
            ret = ic_co_read_segment(bs, rd, &segs[0], fetches[0], qiov,
                                     qiov_offset);
        } else {
            AioTaskPool *pool = aio_task_pool_new(n);

            for (int i = 0; i < n; i++) {
                IcReadTask *t = g_new(IcReadTask, 1);

                *t = (IcReadTask) {
                    .task.func = ic_read_task_entry,
                    .bs = bs,
                    .rd = rd,
                    .seg = segs[i],
                    .fetch = fetches[i],
                    .qiov = qiov,
                    .qiov_offset = qiov_offset + (segs[i].offset - offset),
                };
                aio_task_pool_start_task(pool, &t->task);
            }
            aio_task_pool_wait_all(pool);
            ret = aio_task_pool_status(pool);
            aio_task_pool_free(pool);
        }
        if (pins.count) {
            qatomic_sub(&s->pins[pins.epoch], pins.count);
        }
        offset += planned;
        bytes -= planned;
        qiov_offset += planned;
    }
    return ret;
}

/* A read waited its whole miss-timeout: the base is down. */
static int ic_read_gave_up(BlockDriverState *bs, const IcRead *rd)
{
    BDRVIntellicacheState *s = bs->opaque;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ic_health_count(s->health, IC_HEALTH_MISS_TIMEOUTS);
        ic_health_note_locked(bs, IC_BASE_GAVE_UP,
                              "a read waited %" PRIu64 " ms (miss-timeout) "
                              "for the base", rd->timeout_ms);
    }
    return -EIO;
}

/*
 * A read is served in one pass unless a fetch fails.  It then goes again,
 * whole (what is cached by then is read from the cache): at once if only
 * a read-ahead fetch it joined failed, after the core's backoff if the
 * error may pass and its miss-timeout is not over.  At the deadline it
 * fails with EIO.
 */
static int coroutine_fn GRAPH_RDLOCK
ic_co_read(BlockDriverState *bs, IcRead *rd, int64_t offset, int64_t bytes,
           QEMUIOVector *qiov, size_t qiov_offset)
{
    BDRVIntellicacheState *s = bs->opaque;
    int ra_retries = IC_READ_AHEAD_RETRIES;
    bool may_read_ahead = true;
    uint64_t delay_ms;

    for (unsigned attempt = 1;; attempt++) {
        uint64_t waited_ms = 0;
        int ret;

        rd->read_ahead_failed = false;
        ret = ic_co_read_range(bs, rd, offset, bytes, qiov, qiov_offset,
                               may_read_ahead, attempt == 1);
        may_read_ahead = false;
        if (ret >= 0 || rd->failed_fast) {
            return ret;
        }
        if (rd->timed_out) {
            return ic_read_gave_up(bs, rd);
        }
        if (rd->read_ahead_failed && ra_retries-- > 0) {
            attempt--;
            continue;
        }
        if (rd->start_ns) {
            waited_ms = (qemu_clock_get_ns(QEMU_CLOCK_REALTIME) -
                         rd->start_ns) / SCALE_MS;
        }
        if (!ic_miss_retry(-ret, attempt, waited_ms, rd->timeout_ms,
                           &delay_ms)) {
            if (rd->timeout_ms && ic_base_error_transient(-ret)) {
                return ic_read_gave_up(bs, rd);
            }
            return ret;
        }
        WITH_QEMU_LOCK_GUARD(&s->lock) {
            ic_health_count(s->health, IC_HEALTH_RETRIES);
        }
        trace_intellicache_read_retry(bs, offset, bytes, attempt, ret,
                                      delay_ms);
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, delay_ms * SCALE_MS);
    }
}

/*
 * A user read, timed: into the hit histogram if it was served from the
 * cache file alone, into the miss histogram if any piece of it needed the
 * base.  Prefetch requests only warm the cache and are not user reads.
 */
int coroutine_fn GRAPH_RDLOCK
ic_co_preadv_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  QEMUIOVector *qiov, size_t qiov_offset,
                  BdrvRequestFlags flags)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcRead rd = { .timeout_ms = s->settings.miss_timeout_ms };
    int64_t start_ns;
    uint64_t ns;
    int ret;

    if (flags & BDRV_REQ_PREFETCH) {
        return ic_co_prefetch_read(bs, offset, bytes);
    }
    ic_profile_note(bs, offset, bytes);

    start_ns = get_clock();
    ret = ic_co_read(bs, &rd, offset, bytes, qiov, qiov_offset);
    ns = get_clock() - start_ns;
    ic_latency_record(s->latency,
                      rd.missed ? IC_LATENCY_MISS : IC_LATENCY_HIT, ns);
    trace_intellicache_read_done(bs, offset, bytes, ret, !rd.missed, ns);
    return ret;
}

/*
 * The base reported [offset, offset + bytes) as reading zeros: record the
 * whole clusters in it as zeros in the cache, without reading them, so
 * that they are answered locally from then on.  A client that asked for
 * the block status does not read what it was told is zeros (QEMU's NBD
 * server asks before each read): without this, such clusters would never
 * be cached, and the disk would depend on the base for them forever.
 *
 * Returns how many bytes from @offset may be reported as zeros: up to the
 * last whole cluster recorded (at most IC_ZERO_FILL_SEGMENTS fills), or
 * all of @bytes if the cache does not store now.  0 if the range starts
 * within a cluster or covers none whole: the caller says "data" for it,
 * which makes a client read, and so cache, that cluster.
 */
static int64_t ic_record_zeros(BlockDriverState *bs, int64_t offset,
                               int64_t bytes)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcFetch *fills[IC_ZERO_FILL_SEGMENTS];
    bool admitted[IC_ZERO_FILL_SEGMENTS];
    size_t n = 0;
    uint64_t cs, base_size, end, pos;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        cs = ic_core_geometry(s->core)->cluster_size;
        base_size = ic_core_geometry(s->core)->base_size;
        if (ic_core_cache_state(s->core) != IC_CACHE_CACHING) {
            return bytes;
        }
        end = offset + bytes;
        if (end < base_size) {
            end = QEMU_ALIGN_DOWN(end, cs);
        }
        if (offset % cs || end <= offset) {
            return 0;
        }
        for (pos = offset; pos < end && n < ARRAY_SIZE(fills);) {
            IcSegment seg;
            IcFetch *f;

            if (!ic_core_plan_zeros(s->core, pos, end - pos, &seg)) {
                break;
            }
            pos += seg.bytes;
            if (seg.kind != IC_SEG_FETCH) {
                continue; /* cached, or being fetched, meanwhile */
            }
            f = ic_fetch_new_locked(bs, &seg, IC_FETCH_READ_AHEAD, true);
            trace_intellicache_zero_fill(bs, f->offset, f->bytes);
            ic_core_fetch_done(s->core, f->id, true);
            admitted[n] = ic_core_store_admit(s->core, f->id);
            if (!admitted[n]) {
                ic_fetch_left_locked(s);
            }
            fills[n++] = f;
        }
    }
    /* The creator's reference goes to the store queue, or is dropped. */
    for (size_t i = 0; i < n; i++) {
        if (admitted[i]) {
            ic_store_fetched(bs, fills[i]);
        } else {
            ic_fetch_unref(fills[i]);
        }
    }
    return MIN(pos, offset + bytes) - offset;
}

/* A query of the base's block status, for a range that is not cached. */
typedef struct IcStatusQuery {
    BlockDriverState *bs;
    int64_t offset;
    int64_t bytes;
    int64_t pnum;           /* the answer: @op.ret flags, for this much */
    int64_t map;
    BlockDriverState *file;
    unsigned refcnt;        /* atomic: the asker's and the coroutine's */
    IcBaseOp op;
} IcStatusQuery;

static void ic_status_query_unref(IcStatusQuery *q)
{
    if (qatomic_fetch_dec(&q->refcnt) == 1) {
        g_free(q);
    }
}

static void coroutine_fn ic_status_query_entry(void *opaque)
{
    IcStatusQuery *q = opaque;
    BlockDriverState *bs = q->bs;
    BDRVIntellicacheState *s = bs->opaque;
    int64_t pnum = 0, map = 0;
    BlockDriverState *file = NULL;
    int ret;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        q->op.start_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    }
    bdrv_graph_co_rdlock();
    ret = bdrv_co_block_status(bs->file->bs, q->offset, q->bytes, &pnum,
                               &map, &file);
    bdrv_graph_co_rdunlock();

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        q->pnum = pnum;
        q->map = map;
        q->file = file;
        s->status_query = false;
        if (ret >= 0) {
            ic_health_note_locked(bs, IC_BASE_READ_OK,
                                  "a block status query of the base "
                                  "succeeded");
        } else if (ic_base_error_transient(-ret)) {
            ic_health_note_locked(bs, IC_BASE_READ_FAILED,
                                  "a block status query of the base "
                                  "failed: %s", strerror(-ret));
        }
        ic_base_op_end_locked(&q->op, ret);
    }
    ic_status_query_unref(q);
    bdrv_dec_in_flight(bs);
}

/*
 * The block status of [offset, offset + bytes), which is not cached: what
 * the base says (it knows about holes), if it says so in time.  Saying
 * "data" is always correct, so the node says it at once when the base is
 * not up or another query is pending (so stuck queries do not pile up),
 * and when the base does not answer within IC_BASE_SLOW_MS or
 * miss-timeout: an NBD export asks before each read, and the read that
 * follows has the deadline that matters.  With miss-timeout 0, the base
 * is asked and waited for, as before.
 *
 * Zeros are answered only for whole clusters, which are then recorded in
 * the cache (ic_record_zeros()).
 */
static int coroutine_fn GRAPH_RDLOCK
ic_co_base_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    BDRVIntellicacheState *s = bs->opaque;
    uint64_t timeout_ms = s->settings.miss_timeout_ms;
    uint64_t cluster_size = s->settings.cluster_size;
    bool timed_out = false;
    IcStatusQuery *q;
    Coroutine *co;
    int ret;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (!s->has_base ||
            (timeout_ms && (ic_health_state(s->health) != IC_BASE_UP ||
                            s->status_query))) {
            *pnum = bytes;
            return BDRV_BLOCK_DATA;
        }
        s->status_query = true;
        q = g_new0(IcStatusQuery, 1);
        *q = (IcStatusQuery) {
            .bs = bs,
            .offset = offset,
            .bytes = bytes,
            .refcnt = 2,
        };
        ic_base_op_init_locked(bs, &q->op);
    }
    bdrv_inc_in_flight(bs);
    co = qemu_coroutine_create(ic_status_query_entry, q);
    aio_co_enter(qemu_get_current_aio_context(), co);

    ret = ic_co_base_op_wait(s, &q->op, timeout_ms ?
                             qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                             MIN(timeout_ms, IC_BASE_SLOW_MS) * SCALE_MS : 0,
                             &timed_out);
    if (ret < 0 || q->pnum <= 0) {
        /* No answer in time, or an error: data, for the whole range. */
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA;
    } else {
        *pnum = MIN(q->pnum, bytes);
        ret &= BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
        if (!(ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO))) {
            /* Left to a backing file of the base: its data, for us. */
            ret = BDRV_BLOCK_DATA;
        } else if (ret & BDRV_BLOCK_OFFSET_VALID) {
            *map = q->map;
            *file = q->file;
        }
    }
    ic_status_query_unref(q);
    if (ret & BDRV_BLOCK_ZERO) {
        int64_t zeros = ic_record_zeros(bs, offset, *pnum);

        if (zeros > 0) {
            *pnum = zeros;
        } else {
            /* Part of a cluster: read it, so it is cached whole. */
            *pnum = MIN(*pnum, ROUND_UP(offset + 1, cluster_size) - offset);
            ret = BDRV_BLOCK_DATA;
        }
    }
    return ret;
}

/*
 * Cached clusters are data in the cache file, reported without asking the
 * base: an NBD export asks for the block status of every read, and on a
 * remote base each question would be a round trip.  For clusters not
 * cached yet the base is asked, since it knows about holes
 * (ic_co_base_status()).
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
    if (present) {
        /*
         * What the cache file reads is what the node serves: where the
         * file has a hole (a recorded zero fill is written as one), the
         * block layer may report zeros (RECURSE asks it to look), so a
         * client that asks again keeps the hint and a copy stays sparse.
         */
        *pnum = run;
        *file = s->cache->bs;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID |
               (want_zero ? BDRV_BLOCK_RECURSE : 0);
    }
    return ic_co_base_status(bs, offset, run, pnum, map, file);
}
