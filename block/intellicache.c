/*
 * intellicache: a read-only filter that caches its base image in a local
 * cache file.
 *
 * The base ("file" child) is typically a golden image on shared storage
 * (NFS); the cache ("cache-file" child) is a local file holding the cached
 * clusters, direct-mapped, and a presence bitmap.  A read is split by the
 * core (block/intellicache/) into hits, which are read from the cache, new
 * fetches, which are read from the base with at most max-inflight of them
 * in flight, and waits on fetches already in flight.  The reader gets its
 * data as soon as the fetch completes; storing the data in the cache and
 * recording it durably happen behind the reply.
 *
 * This file is only the glue to QEMU's block layer: all decisions about
 * clusters, fetches and the on-disk format are made by the core.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/defer-call.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "qemu/module.h"
#include "qemu/option.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qapi-types-block-core.h"
#include "qobject/qdict.h"
#include "block/aio_task.h"
#include "block/block-io.h"
#include "block/block_int.h"
#include "block/qdict.h"
#include "intellicache-core.h"

#define IC_OPT_CLUSTER_SIZE "cluster-size"
#define IC_OPT_MAX_INFLIGHT "max-inflight"
#define IC_OPT_MAX_FETCH "max-fetch"
#define IC_OPT_BASE_FINGERPRINT "base-fingerprint"
#define IC_OPT_READ_AHEAD "read-ahead"

/* Largest read-ahead window. */
#define IC_MAX_READ_AHEAD (256u * 1024 * 1024)

/* How long stored clusters may wait before they are recorded durably. */
#define IC_SYNC_INTERVAL_NS (1 * NANOSECONDS_PER_SECOND)

/* Segments planned at a time for one read. */
#define IC_PLAN_SEGMENTS 16

/* Base content sampled for the fingerprint: this many pieces of this size. */
#define IC_FINGERPRINT_SAMPLES 16
#define IC_FINGERPRINT_SAMPLE_SIZE 4096

/* Metadata blocks read or written with one request. */
#define IC_META_BATCH 64

/*
 * Writes into the cache in flight at once: the number of store writers.
 * Storing happens behind the replies, so only its CPU cost and throughput
 * matter.  Writers started together, or finishing together, submit their
 * next writes in one batch (ic_store_bh).  4 writers cut the CPU per cold
 * 4 KiB miss by a quarter against 2; 8 cut it a little more on a fast base
 * but cost latency-bound reads a few percent (docs/design.rst, Storing).
 */
#define IC_STORE_PARALLEL 4

/*
 * Fetched data waiting to be stored, at most.  Beyond it, fetched data is
 * not stored (the clusters stay absent): a slow cache disk must neither
 * slow down readers nor let memory grow without bound.
 */
#define IC_STORE_BACKLOG (64 * MiB)

/*
 * Buffers of the largest fetch size kept for reuse.  Sequential reads fetch
 * max-fetch bytes at a time; allocating such a buffer anew for each fetch
 * costs more in page faults and page clearing than the copies.  Smaller
 * buffers come from malloc's heap and need no pool.  The pool is emptied
 * when the node is idle.
 */
#define IC_BUF_POOL_SIZE 16

typedef struct BDRVIntellicacheState BDRVIntellicacheState;

/* A read of the base issued for a run of missing clusters. */
typedef struct IcFetch {
    BDRVIntellicacheState *s;
    IcFetchId id;
    uint64_t offset;    /* base offset */
    uint64_t bytes;
    void *buf;          /* the fetched data, until it is stored */
    int ret;            /* -EINPROGRESS until the base read completes */
    unsigned refcnt;
    CoQueue waiters;    /* readers waiting for the base read */
    QSIMPLEQ_ENTRY(IcFetch) store_next; /* in store_pending */
} IcFetch;

struct BDRVIntellicacheState {
    BlockDriverState *bs;
    BdrvChild *cache;
    IcCore *core;

    uint32_t max_inflight;
    uint32_t inflight;          /* base reads in flight */
    CoQueue inflight_queue;     /* fetches waiting for a slot */

    bool caching;               /* false after a cache write error */
    bool bypass;                /* true after a cache read error */
    uint32_t store_workers;     /* coroutines writing into the cache */
    uint64_t store_backlog;     /* bytes fetched and not yet stored */
    QSIMPLEQ_HEAD(, IcFetch) store_pending; /* fetched, store not started */
    bool store_bh_scheduled;    /* ic_store_bh will start store_pending */

    QEMUTimer *sync_timer;
    CoMutex sync_lock;
    bool sync_error_reported;
    bool close_sync_done;

    uint64_t max_fetch;         /* bytes; the size of pooled buffers */
    void *buf_pool[IC_BUF_POOL_SIZE];
    unsigned buf_pool_len;
};

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
            .name = IC_OPT_BASE_FINGERPRINT,
            .type = QEMU_OPT_STRING,
            .help = "user-chosen identifier of the base's content",
        },
        { /* end of list */ }
    },
};

static void *ic_buf_get(BlockDriverState *bs, uint64_t bytes)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (bytes == s->max_fetch && s->buf_pool_len > 0) {
        return s->buf_pool[--s->buf_pool_len];
    }
    return qemu_try_blockalign(bs, bytes);
}

static void ic_buf_put(BDRVIntellicacheState *s, void *buf, uint64_t bytes)
{
    if (buf && bytes == s->max_fetch && s->buf_pool_len < IC_BUF_POOL_SIZE) {
        s->buf_pool[s->buf_pool_len++] = buf;
    } else {
        qemu_vfree(buf);
    }
}

static void ic_buf_pool_empty(BDRVIntellicacheState *s)
{
    while (s->buf_pool_len > 0) {
        qemu_vfree(s->buf_pool[--s->buf_pool_len]);
    }
}

static IcFetch *ic_fetch_new(BlockDriverState *bs, const IcSegment *seg)
{
    IcFetch *f = g_new0(IcFetch, 1);

    f->s = bs->opaque;
    f->id = seg->fetch;
    f->offset = seg->fetch_offset;
    f->bytes = seg->fetch_bytes;
    f->ret = -EINPROGRESS;
    f->refcnt = 1;
    qemu_co_queue_init(&f->waiters);
    return f;
}

static void ic_fetch_unref(IcFetch *f)
{
    assert(f->refcnt > 0);
    if (--f->refcnt == 0) {
        ic_buf_put(f->s, f->buf, f->bytes);
        g_free(f);
    }
}

static void coroutine_fn ic_sync_entry(void *opaque);

/* Start a metadata sync now, in a coroutine that drain waits for. */
static void ic_sync_start(BlockDriverState *bs)
{
    Coroutine *co = qemu_coroutine_create(ic_sync_entry, bs);

    bdrv_inc_in_flight(bs);
    aio_co_enter(bdrv_get_aio_context(bs), co);
}

static void ic_sync_timer_cb(void *opaque)
{
    ic_sync_start(opaque);
}

/*
 * Make the clusters stored so far durable: flush their data, then write the
 * metadata blocks that record them.  Order matters: a cluster is recorded
 * only after its data is on disk, so a crash at any moment never leaves a
 * recorded cluster with incomplete data.
 *
 * One round records what was stored before it started; stores completing
 * meanwhile re-arm the timer.  With @final (clean close) rounds repeat
 * until nothing is left and the metadata is flushed too.
 */
static int coroutine_fn GRAPH_RDLOCK
ic_co_sync(BlockDriverState *bs, bool final)
{
    BDRVIntellicacheState *s = bs->opaque;
    BlockDriverState *cache_bs = s->cache->bs;
    int ret = 0;

    qemu_co_mutex_lock(&s->sync_lock);
    while (ret == 0 && ic_core_sync_begin(s->core)) {
        size_t count = ic_core_sync_block_count(s->core);
        g_autofree uint64_t *blocks = g_new(uint64_t, count);
        uint8_t *buf = NULL;
        size_t i = 0;

        ret = bdrv_co_flush(cache_bs);
        if (ret == 0) {
            count = ic_core_sync_blocks(s->core, blocks, count);
            buf = qemu_blockalign(cache_bs, IC_META_BATCH * IC_META_BLOCK_SIZE);
        }
        /* Write runs of consecutive blocks with one request each. */
        while (ret == 0 && i < count) {
            size_t n = 0;

            do {
                ic_core_encode_meta_block(s->core, blocks[i + n],
                                          buf + n * IC_META_BLOCK_SIZE);
                n++;
            } while (i + n < count && n < IC_META_BATCH &&
                     blocks[i + n] == blocks[i] + n);
            ret = bdrv_co_pwrite(s->cache,
                                 ic_core_meta_block_offset(s->core, blocks[i]),
                                 n * IC_META_BLOCK_SIZE, buf, 0);
            i += n;
        }
        qemu_vfree(buf);
        ic_core_sync_end(s->core, ret == 0);
        if (!final) {
            break;
        }
    }
    if (ret == 0 && final) {
        ret = bdrv_co_flush(cache_bs);
    }
    if (ret < 0 && !s->sync_error_reported) {
        s->sync_error_reported = true;
        warn_report("intellicache: '%s': could not record cached data in "
                    "'%s': %s; it will be fetched again after a restart",
                    bdrv_get_node_name(bs), bdrv_get_node_name(cache_bs),
                    strerror(-ret));
    }
    qemu_co_mutex_unlock(&s->sync_lock);
    return ret;
}

static void coroutine_fn ic_sync_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;

    bdrv_graph_co_rdlock();
    ic_co_sync(bs, false);
    bdrv_graph_co_rdunlock();
    if (s->inflight == 0 && s->store_backlog == 0) {
        ic_buf_pool_empty(s); /* idle: give the memory back */
    }
    bdrv_dec_in_flight(bs);
}

/* Clusters were stored: make sure they get recorded soon. */
static void coroutine_fn GRAPH_RDLOCK ic_co_schedule_sync(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (qatomic_read(&bs->quiesce_counter) > 0) {
        /* Draining: nothing may be left for a timer to do afterwards. */
        ic_co_sync(bs, false);
    } else if (!timer_pending(s->sync_timer)) {
        timer_mod(s->sync_timer,
                  qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + IC_SYNC_INTERVAL_NS);
    }
}

/* Write fetch @f into the cache, behind the readers' replies. */
static void coroutine_fn GRAPH_RDLOCK
ic_co_store(BlockDriverState *bs, IcFetch *f)
{
    BDRVIntellicacheState *s = bs->opaque;
    const IcGeometry *g = ic_core_geometry(s->core);
    int ret;

    if (!s->caching) {
        /* A write failed meanwhile, or the cache is bypassed. */
        ic_core_fetch_dropped(s->core, f->id);
        return;
    }
    ret = bdrv_co_pwrite(s->cache, g->data_offset + f->offset, f->bytes,
                         f->buf, 0);
    ic_core_fetch_stored(s->core, f->id, ret == 0);
    if (ret == 0) {
        ic_co_schedule_sync(bs);
    } else if (s->caching) {
        s->caching = false;
        warn_report("intellicache: '%s': writing to cache '%s' failed: %s; "
                    "caching stopped, reads are served from the base",
                    bdrv_get_node_name(bs), bdrv_get_node_name(s->cache->bs),
                    strerror(-ret));
    }
}

/* One of the store writers: store fetches until none waits. */
static void coroutine_fn ic_store_worker_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;
    IcFetch *f;

    bdrv_graph_co_rdlock();
    while ((f = QSIMPLEQ_FIRST(&s->store_pending))) {
        QSIMPLEQ_REMOVE_HEAD(&s->store_pending, store_next);
        ic_co_store(bs, f);
        s->store_backlog -= f->bytes;
        ic_fetch_unref(f);
        bdrv_dec_in_flight(bs);
    }
    s->store_workers--;
    bdrv_graph_co_rdunlock();
    bdrv_dec_in_flight(bs);
}

/*
 * Start store writers for the fetches completed since the last call, in one
 * deferred-call section: with aio=native or io_uring, their writes are
 * submitted together, in one system call and one kick of the cache disk's
 * queue, instead of one per fetch.  A writer that finishes a write takes
 * the next fetch in the completion handler, which batches its writes too.
 */
static void ic_store_bh(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;

    s->store_bh_scheduled = false;
    defer_call_begin();
    while (s->store_workers < IC_STORE_PARALLEL &&
           !QSIMPLEQ_EMPTY(&s->store_pending)) {
        s->store_workers++;
        bdrv_inc_in_flight(bs);
        qemu_coroutine_enter(qemu_coroutine_create(ic_store_worker_entry, bs));
    }
    defer_call_end();
}

/* Store fetch @f into the cache soon, together with other fetches. */
static void ic_store_later(BlockDriverState *bs, IcFetch *f)
{
    BDRVIntellicacheState *s = bs->opaque;

    f->refcnt++;
    s->store_backlog += f->bytes;
    bdrv_inc_in_flight(bs);
    QSIMPLEQ_INSERT_TAIL(&s->store_pending, f, store_next);
    if (!s->store_bh_scheduled) {
        s->store_bh_scheduled = true;
        aio_bh_schedule_oneshot(bdrv_get_aio_context(bs), ic_store_bh, bs);
    }
}

/*
 * Read the base for fetch @f, in one of the max-inflight slots, which the
 * caller has taken (s->inflight counts it).  Waiters get the data as soon
 * as it arrives; storing it into the cache is started behind them.
 */
static int coroutine_fn GRAPH_RDLOCK
ic_co_fetch_in_slot(BlockDriverState *bs, IcFetch *f)
{
    BDRVIntellicacheState *s = bs->opaque;
    int ret;

    f->buf = ic_buf_get(bs, f->bytes);
    if (f->buf) {
        ret = bdrv_co_pread(bs->file, f->offset, f->bytes, f->buf, 0);
    } else {
        ret = -ENOMEM;
    }
    s->inflight--;
    qemu_co_queue_next(&s->inflight_queue);

    ic_core_fetch_done(s->core, f->id, ret == 0);
    f->ret = ret;
    qemu_co_queue_restart_all(&f->waiters);
    if (ret < 0) {
        return ret;
    }
    if (s->caching && s->store_backlog + f->bytes <= IC_STORE_BACKLOG) {
        ic_store_later(bs, f);
    } else {
        ic_core_fetch_dropped(s->core, f->id);
    }
    return 0;
}

/* Read the base for fetch @f, waiting for one of the max-inflight slots. */
static int coroutine_fn GRAPH_RDLOCK
ic_co_fetch(BlockDriverState *bs, IcFetch *f)
{
    BDRVIntellicacheState *s = bs->opaque;

    while (s->inflight >= s->max_inflight) {
        qemu_co_queue_wait(&s->inflight_queue, NULL);
    }
    s->inflight++;
    return ic_co_fetch_in_slot(bs, f);
}

static void coroutine_fn ic_read_ahead_entry(void *opaque)
{
    IcFetch *f = opaque;
    BlockDriverState *bs = f->s->bs;

    bdrv_graph_co_rdlock();
    ic_co_fetch_in_slot(bs, f);
    bdrv_graph_co_rdunlock();
    ic_fetch_unref(f);
    bdrv_dec_in_flight(bs);
}

/*
 * Fetch [offset, offset + bytes) ahead of a sequential reader, in the
 * background.  Read-ahead never takes queue depth from demand misses: it
 * starts only while no demand fetch waits for a slot, and only in the
 * first half of the slots, which it takes before yielding.
 */
static void coroutine_fn GRAPH_RDLOCK
ic_co_read_ahead(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVIntellicacheState *s = bs->opaque;
    uint64_t end = offset + bytes;

    while (offset < end && s->caching && s->inflight < s->max_inflight / 2 &&
           qemu_co_queue_empty(&s->inflight_queue)) {
        IcSegment seg;

        if (!ic_core_plan_read_ahead(s->core, offset, end - offset, &seg)) {
            break;
        }
        if (seg.kind == IC_SEG_FETCH) {
            IcFetch *f = ic_fetch_new(bs, &seg);
            Coroutine *co = qemu_coroutine_create(ic_read_ahead_entry, f);

            ic_core_fetch_set_opaque(s->core, seg.fetch, f);
            s->inflight++;
            bdrv_inc_in_flight(bs);
            aio_co_enter(bdrv_get_aio_context(bs), co);
        }
        offset += seg.bytes;
    }
}

/*
 * Reading the cache file failed: its disk is not to be trusted any more.
 * From now on every read goes to the base and nothing is stored; a restart
 * uses the cache again.
 */
static void ic_bypass_cache(BlockDriverState *bs, int err)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->bypass) {
        return;
    }
    s->bypass = true;
    s->caching = false;
    warn_report("intellicache: '%s': reading cache '%s' failed: %s; the "
                "cache is bypassed, reads are served from the base",
                bdrv_get_node_name(bs), bdrv_get_node_name(s->cache->bs),
                strerror(-err));
}

/* Serve one planned segment of a read into @qiov at @qiov_offset. */
static int coroutine_fn GRAPH_RDLOCK
ic_co_read_segment(BlockDriverState *bs, const IcSegment *seg, IcFetch *fetch,
                   QEMUIOVector *qiov, size_t qiov_offset)
{
    BDRVIntellicacheState *s = bs->opaque;
    int ret;

    switch (seg->kind) {
    case IC_SEG_HIT:
        ret = bdrv_co_preadv_part(s->cache, seg->cache_offset, seg->bytes,
                                  qiov, qiov_offset, 0);
        if (ret < 0) {
            /* The base has the same data: not the reader's failure. */
            ic_bypass_cache(bs, ret);
            ret = bdrv_co_preadv_part(bs->file, seg->offset, seg->bytes,
                                      qiov, qiov_offset, 0);
        }
        return ret;
    case IC_SEG_FETCH:
        ret = ic_co_fetch(bs, fetch);
        break;
    case IC_SEG_WAIT:
        while (fetch->ret == -EINPROGRESS) {
            qemu_co_queue_wait(&fetch->waiters, NULL);
        }
        ret = fetch->ret;
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
} IcReadTask;

static int coroutine_fn ic_read_task_entry(AioTask *task)
{
    IcReadTask *t = container_of(task, IcReadTask, task);

    GRAPH_RDLOCK_GUARD();
    return ic_co_read_segment(t->bs, &t->seg, t->fetch, t->qiov,
                              t->qiov_offset);
}

static int coroutine_fn GRAPH_RDLOCK
ic_co_preadv_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  QEMUIOVector *qiov, size_t qiov_offset,
                  BdrvRequestFlags flags)
{
    BDRVIntellicacheState *s = bs->opaque;
    const IcGeometry *g = ic_core_geometry(s->core);
    IcSegment segs[IC_PLAN_SEGMENTS];
    IcFetch *fetches[IC_PLAN_SEGMENTS];
    uint64_t ra_offset, ra_bytes;
    bool read_ahead = false;
    int ret = 0;

    /* The block layer keeps reads within ic_co_getlength(). */
    assert(offset + bytes <= g->base_size);
    if (s->bypass) {
        return bdrv_co_preadv_part(bs->file, offset, bytes, qiov, qiov_offset,
                                   0);
    }

    if (ic_core_note_read(s->core, offset, bytes, &ra_offset, &ra_bytes)) {
        read_ahead = true;
    }
    while (bytes > 0 && ret == 0) {
        size_t n = ic_core_plan(s->core, offset, bytes, segs, IC_PLAN_SEGMENTS);
        uint64_t planned = 0;
        AioTaskPool *pool = NULL;

        assert(n > 0);
        /*
         * Attach our fetch objects before anything yields, so that a read
         * planned meanwhile finds them when it waits on our fetches.
         */
        for (size_t i = 0; i < n; i++) {
            fetches[i] = NULL;
            if (segs[i].kind == IC_SEG_FETCH) {
                fetches[i] = ic_fetch_new(bs, &segs[i]);
                ic_core_fetch_set_opaque(s->core, segs[i].fetch, fetches[i]);
            } else if (segs[i].kind == IC_SEG_WAIT) {
                fetches[i] = segs[i].opaque;
                fetches[i]->refcnt++;
            }
            planned += segs[i].bytes;
        }
        if (read_ahead) {
            /* After our own fetches are registered, before we yield. */
            read_ahead = false;
            ic_co_read_ahead(bs, ra_offset, ra_bytes);
        }

        if (n == 1) {
            ret = ic_co_read_segment(bs, &segs[0], fetches[0], qiov,
                                     qiov_offset);
        } else {
            pool = aio_task_pool_new(n);
            for (size_t i = 0; i < n; i++) {
                IcReadTask *t = g_new(IcReadTask, 1);

                *t = (IcReadTask) {
                    .task.func = ic_read_task_entry,
                    .bs = bs,
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
        offset += planned;
        bytes -= planned;
        qiov_offset += planned;
    }
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
ic_co_pwritev_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                   QEMUIOVector *qiov, size_t qiov_offset,
                   BdrvRequestFlags flags)
{
    /* Only reachable with WRITE_UNCHANGED; the data must not change. */
    return -EROFS;
}

/*
 * The size of the base when the node was opened: the cache maps exactly
 * that many bytes, so the node keeps that size even if the base changes.
 */
static int64_t coroutine_fn GRAPH_RDLOCK ic_co_getlength(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    return ic_core_geometry(s->core)->base_size;
}

/*
 * The cache file holds a copy of the base's data: warn if other users may
 * read it.  Only a "file" node has a path whose mode we can check.
 */
static void ic_check_cache_mode(BlockDriverState *bs, BlockDriverState *cache)
{
    struct stat st;

    if (!cache->drv || strcmp(cache->drv->format_name, "file") != 0 ||
        stat(cache->filename, &st) < 0 || !(st.st_mode & 077)) {
        return;
    }
    warn_report("intellicache: '%s': cache file '%s' has mode %04o: other "
                "users can read the cached data; use mode 0600",
                bdrv_get_node_name(bs), cache->filename,
                (unsigned)(st.st_mode & 07777));
}

/*
 * Cached clusters are data in the cache file, reported without asking the
 * base: an NBD export asks for the block status of every read, and on a
 * remote base each question would be a round trip.  Clusters not cached yet
 * pass the question through to the base, which knows about holes.
 */
static int coroutine_fn GRAPH_RDLOCK
ic_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                   int64_t bytes, int64_t *pnum, int64_t *map,
                   BlockDriverState **file)
{
    BDRVIntellicacheState *s = bs->opaque;
    const IcGeometry *g = ic_core_geometry(s->core);
    bool present;
    uint64_t run;

    *pnum = bytes;
    if (!s->bypass) {
        run = ic_core_present_run(s->core, offset, bytes, &present);
        if (run == 0) {
            return -EINVAL;
        }
        /*
         * A run may end at the unaligned end of the base, while the block
         * layer asked for a range rounded up to the request alignment.
         */
        if (offset + run < g->base_size) {
            *pnum = run;
        }
        if (present) {
            *map = g->data_offset + offset;
            *file = s->cache->bs;
            return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
        }
    }
    *map = offset;
    *file = bs->file->bs;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
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
 * Identify the base's content: its size, samples spread over the image and
 * the user's base-fingerprint, hashed with SHA-256.
 */
static int GRAPH_RDLOCK
ic_base_fingerprint(BlockDriverState *bs, uint64_t base_size,
                    const char *user_fingerprint,
                    uint8_t out[IC_FINGERPRINT_SIZE], Error **errp)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    uint8_t *buf = qemu_blockalign(bs, IC_FINGERPRINT_SAMPLE_SIZE);
    uint64_t size_le = cpu_to_le64(base_size);
    gsize out_len = IC_FINGERPRINT_SIZE;
    uint64_t last = 0;
    int ret = 0;

    g_checksum_update(sum, (const guchar *)"intellicache-fingerprint-1", 26);
    g_checksum_update(sum, (const guchar *)&size_le, sizeof(size_le));
    for (int i = 0; i < IC_FINGERPRINT_SAMPLES; i++) {
        uint64_t step = base_size / (IC_FINGERPRINT_SAMPLES - 1);
        uint64_t off = QEMU_ALIGN_DOWN(step * i, IC_FINGERPRINT_SAMPLE_SIZE);
        uint64_t len;

        off = MIN(off, QEMU_ALIGN_DOWN(base_size - 1,
                                       IC_FINGERPRINT_SAMPLE_SIZE));
        if (i > 0 && off == last) {
            continue;
        }
        last = off;
        len = MIN(IC_FINGERPRINT_SAMPLE_SIZE, base_size - off);
        ret = bdrv_pread(bs->file, off, len, buf, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read the base image");
            break;
        }
        g_checksum_update(sum, buf, len);
    }
    if (user_fingerprint) {
        g_checksum_update(sum, (const guchar *)user_fingerprint,
                          strlen(user_fingerprint) + 1);
    }
    g_checksum_get_digest(sum, out, &out_len);
    qemu_vfree(buf);
    return ret < 0 ? ret : 0;
}

/* Discard whatever the cache file holds and write an empty cache. */
static int GRAPH_RDLOCK
ic_format(BlockDriverState *bs, const IcHeaderInfo *h, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    const IcGeometry *g = ic_core_geometry(s->core);
    uint8_t *buf;
    int ret;

    ret = bdrv_truncate(s->cache, 0, false, PREALLOC_MODE_OFF, 0, errp);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_truncate(s->cache, g->file_size, false, PREALLOC_MODE_OFF, 0,
                        errp);
    if (ret < 0) {
        return ret;
    }
    /*
     * Allocate the metadata area now: when the cache's disk fills up later,
     * recording what was stored must not need new space.
     */
    ret = bdrv_pwrite_zeroes(s->cache, g->meta_offset,
                             g->meta_blocks * IC_META_BLOCK_SIZE, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not allocate the metadata of "
                         "cache '%s'", bdrv_get_node_name(s->cache->bs));
        return ret;
    }
    buf = qemu_blockalign0(s->cache->bs, IC_HEADER_SIZE);
    ic_header_encode(h, buf);
    ret = bdrv_pwrite(s->cache, 0, IC_HEADER_SIZE, buf, 0);
    qemu_vfree(buf);
    if (ret == 0) {
        ret = bdrv_flush(s->cache->bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not format cache '%s'",
                         bdrv_get_node_name(s->cache->bs));
    }
    return ret;
}

/* Load the presence bitmap of a valid cache. */
static int GRAPH_RDLOCK ic_load_metadata(BlockDriverState *bs, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    const IcGeometry *g = ic_core_geometry(s->core);
    uint8_t *buf = qemu_blockalign(s->cache->bs,
                                   IC_META_BATCH * IC_META_BLOCK_SIZE);
    uint64_t damaged = 0;
    int ret = 0;

    for (uint64_t i = 0; i < g->meta_blocks; i += IC_META_BATCH) {
        uint64_t n = MIN(IC_META_BATCH, g->meta_blocks - i);

        ret = bdrv_pread(s->cache, ic_core_meta_block_offset(s->core, i),
                         n * IC_META_BLOCK_SIZE, buf, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read cache '%s'",
                             bdrv_get_node_name(s->cache->bs));
            break;
        }
        for (uint64_t j = 0; j < n; j++) {
            if (ic_core_load_meta_block(s->core, i + j,
                                        buf + j * IC_META_BLOCK_SIZE) ==
                IC_META_DAMAGED) {
                damaged++;
            }
        }
    }
    qemu_vfree(buf);
    if (damaged) {
        warn_report("intellicache: '%s': %" PRIu64 " damaged metadata "
                    "block(s) in cache '%s' were ignored; the clusters they "
                    "recorded will be fetched again", bdrv_get_node_name(bs),
                    damaged, bdrv_get_node_name(s->cache->bs));
    }
    return ret;
}

/*
 * Open the cache file: use it if it is a valid cache of this base, format
 * it if it is empty, reset it (with a warning) if it is a damaged or stale
 * cache, and refuse it if it is something else.
 *
 * With @no_io (e.g. qemu-img info) the base must not be read, so its
 * fingerprint cannot be checked, and nothing is written: a valid cache is
 * shown as it is recorded, anything else as empty.
 */
static int GRAPH_RDLOCK
ic_open_cache(BlockDriverState *bs, uint32_t cluster_size, uint64_t max_fetch,
              const char *user_fingerprint, bool no_io, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    const char *cache_name = bdrv_get_node_name(s->cache->bs);
    IcHeaderInfo want = { .cluster_size = cluster_size };
    IcHeaderInfo found = { 0 };
    IcGeometry g;
    IcHeaderStatus status;
    char why[256];
    int64_t base_size, cache_size;
    uint8_t *buf;
    int ret;

    base_size = bdrv_getlength(bs->file->bs);
    if (base_size < 0) {
        error_setg_errno(errp, -base_size, "Could not get the size of the "
                         "base image");
        return base_size;
    }
    cache_size = bdrv_getlength(s->cache->bs);
    if (cache_size < 0) {
        error_setg_errno(errp, -cache_size, "Could not get the size of "
                         "cache '%s'", cache_name);
        return cache_size;
    }
    want.base_size = base_size;
    if (!no_io) {
        ic_check_cache_mode(bs, s->cache->bs);
        ret = ic_base_fingerprint(bs, base_size, user_fingerprint,
                                  want.fingerprint, errp);
        if (ret < 0) {
            return ret;
        }
    }

    buf = qemu_blockalign0(s->cache->bs, IC_HEADER_SIZE);
    if (cache_size > 0) {
        ret = bdrv_pread(s->cache, 0, MIN(cache_size, IC_HEADER_SIZE), buf, 0);
        if (ret < 0) {
            qemu_vfree(buf);
            error_setg_errno(errp, -ret, "Could not read cache '%s'",
                             cache_name);
            return ret;
        }
    }
    status = ic_header_check(buf, MIN(cache_size, IC_HEADER_SIZE), cache_size,
                             &want, &found, why, sizeof(why));
    qemu_vfree(buf);
    if (no_io && status == IC_HEADER_FINGERPRINT) {
        status = IC_HEADER_OK; /* could not be checked */
    }

    switch (status) {
    case IC_HEADER_OK:
        want = found;
        break;
    case IC_HEADER_FOREIGN:
        error_setg(errp, "cache-file: node '%s' does not hold an "
                   "intellicache cache (%s); refusing to overwrite it",
                   cache_name, why);
        error_append_hint(errp, "Give an empty file to create a new cache.\n");
        return -EINVAL;
    case IC_HEADER_EMPTY:
        break;
    default:
        if (!no_io) {
            warn_report("intellicache: '%s': resetting cache '%s': %s",
                        bdrv_get_node_name(bs), cache_name, why);
        }
        break;
    }

    if (!want.cluster_size) {
        want.cluster_size = ic_default_cluster_size(base_size);
    }
    if (!ic_geometry_init(&g, base_size, want.cluster_size, why,
                          sizeof(why))) {
        error_setg(errp, "%s", why);
        return -EINVAL;
    }
    if (!max_fetch) {
        max_fetch = MAX(IC_DEFAULT_MAX_FETCH, g.cluster_size);
    } else if (max_fetch % g.cluster_size) {
        error_setg(errp, IC_OPT_MAX_FETCH " %" PRIu64 " is not a multiple of "
                   "the cluster size %" PRIu32, max_fetch, g.cluster_size);
        return -EINVAL;
    }

    if (status != IC_HEADER_OK) {
        want.version = IC_FORMAT_VERSION;
        want.instance = ((uint64_t)g_random_int() << 32) | g_random_int();
    }
    s->max_fetch = max_fetch;
    s->core = ic_core_new(&g, want.instance, max_fetch);
    if (!s->core) {
        error_setg(errp, "Could not set up the cache state");
        return -ENOMEM;
    }
    if (status == IC_HEADER_OK) {
        ret = ic_load_metadata(bs, errp);
    } else {
        ret = no_io ? 0 : ic_format(bs, &want, errp);
    }
    if (ret < 0) {
        ic_core_free(s->core);
        s->core = NULL;
    }
    return ret;
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
    if (cache_bs == bs->file->bs) {
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

static int GRAPH_UNLOCKED
ic_open(BlockDriverState *bs, QDict *options, int flags, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    g_autofree char *user_fingerprint = NULL;
    QemuOpts *opts;
    uint64_t cluster_size, max_fetch, max_inflight, read_ahead;
    int ret;

    s->bs = bs;
    if (ic_child_defined_inline(options, "file")) {
        qdict_set_default_str(options, "file." BDRV_OPT_READ_ONLY, "on");
    }
    ret = bdrv_open_file_child(NULL, options, "file", bs, errp);
    if (ret < 0) {
        return ret;
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

    opts = qemu_opts_create(&ic_runtime_opts, NULL, 0, &error_abort);
    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        qemu_opts_del(opts);
        return -EINVAL;
    }
    cluster_size = qemu_opt_get_size(opts, IC_OPT_CLUSTER_SIZE, 0);
    max_inflight = qemu_opt_get_number(opts, IC_OPT_MAX_INFLIGHT,
                                       IC_DEFAULT_MAX_INFLIGHT);
    max_fetch = qemu_opt_get_size(opts, IC_OPT_MAX_FETCH, 0);
    read_ahead = qemu_opt_get_size(opts, IC_OPT_READ_AHEAD, UINT64_MAX);
    user_fingerprint = g_strdup(qemu_opt_get(opts, IC_OPT_BASE_FINGERPRINT));
    qemu_opts_del(opts);

    if (cluster_size && (!is_power_of_2(cluster_size) ||
                         cluster_size < IC_MIN_CLUSTER_SIZE ||
                         cluster_size > IC_MAX_CLUSTER_SIZE)) {
        error_setg(errp, IC_OPT_CLUSTER_SIZE " must be a power of two from "
                   "%u to %u, not %" PRIu64, IC_MIN_CLUSTER_SIZE,
                   IC_MAX_CLUSTER_SIZE, cluster_size);
        return -EINVAL;
    }
    if (max_inflight < 1 || max_inflight > IC_MAX_INFLIGHT_LIMIT) {
        error_setg(errp, IC_OPT_MAX_INFLIGHT " must be from 1 to %u, not %"
                   PRIu64, IC_MAX_INFLIGHT_LIMIT, max_inflight);
        return -EINVAL;
    }
    if (max_fetch > IC_MAX_FETCH_LIMIT) {
        error_setg(errp, IC_OPT_MAX_FETCH " must be at most %u, not %" PRIu64,
                   IC_MAX_FETCH_LIMIT, max_fetch);
        return -EINVAL;
    }
    if (read_ahead != UINT64_MAX && read_ahead > IC_MAX_READ_AHEAD) {
        error_setg(errp, IC_OPT_READ_AHEAD " must be at most %u, not %"
                   PRIu64, IC_MAX_READ_AHEAD, read_ahead);
        return -EINVAL;
    }
    s->max_inflight = max_inflight;
    s->caching = true;
    qemu_co_queue_init(&s->inflight_queue);
    QSIMPLEQ_INIT(&s->store_pending);
    qemu_co_mutex_init(&s->sync_lock);

    GRAPH_RDLOCK_GUARD_MAINLOOP();

    if (s->cache->bs == bs->file->bs) {
        error_setg(errp, "cache-file: node '%s' is the base image itself; "
                   "the cache needs a node of its own",
                   bdrv_get_node_name(s->cache->bs));
        return -EINVAL;
    }
    if (bdrv_is_read_only(s->cache->bs)) {
        error_setg(errp, "cache-file: node '%s' is read-only; the cache "
                   "must be writable", bdrv_get_node_name(s->cache->bs));
        return -EINVAL;
    }

    ret = ic_open_cache(bs, cluster_size, max_fetch, user_fingerprint,
                        flags & BDRV_O_NO_IO, errp);
    if (ret < 0) {
        return ret;
    }
    /* Default: two of the largest fetches ahead of each sequential reader. */
    if (read_ahead == UINT64_MAX) {
        read_ahead = 2 * s->max_fetch;
    }
    ic_core_set_read_ahead(s->core, read_ahead);
    s->sync_timer = aio_timer_new(bdrv_get_aio_context(bs), QEMU_CLOCK_REALTIME,
                                  SCALE_NS, ic_sync_timer_cb, bs);
    return 0;
}

static void coroutine_fn ic_close_sync_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;

    bdrv_graph_co_rdlock();
    ic_co_sync(bs, true);
    bdrv_graph_co_rdunlock();
    s->close_sync_done = true;
    bdrv_dec_in_flight(bs);
}

static void ic_close(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    Coroutine *co;

    /* Drained by now: record what is still pending and flush it. */
    timer_free(s->sync_timer);
    s->sync_timer = NULL;
    ic_buf_pool_empty(s);
    co = qemu_coroutine_create(ic_close_sync_entry, bs);
    bdrv_inc_in_flight(bs);
    aio_co_enter(bdrv_get_aio_context(bs), co);
    BDRV_POLL_WHILE(bs, !s->close_sync_done);
    ic_core_free(s->core);
    s->core = NULL;
}

static void ic_drain_begin(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    /* Sync now rather than when the timer fires, inside the drain. */
    if (s->sync_timer && timer_pending(s->sync_timer)) {
        timer_del(s->sync_timer);
        ic_sync_start(bs);
    }
}

static void ic_detach_aio_context(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    timer_del(s->sync_timer);
    timer_free(s->sync_timer);
    s->sync_timer = NULL;
}

static void ic_attach_aio_context(BlockDriverState *bs,
                                  AioContext *new_context)
{
    BDRVIntellicacheState *s = bs->opaque;

    s->sync_timer = aio_timer_new(new_context, QEMU_CLOCK_REALTIME, SCALE_NS,
                                  ic_sync_timer_cb, bs);
    if (ic_core_sync_needed(s->core)) {
        timer_mod(s->sync_timer,
                  qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + IC_SYNC_INTERVAL_NS);
    }
}

static int ic_reopen_prepare(BDRVReopenState *reopen_state,
                             BlockReopenQueue *queue, Error **errp)
{
    /* Options cannot change; the block layer rejects changed values. */
    return 0;
}

static ImageInfoSpecific * GRAPH_RDLOCK
ic_get_specific_info(BlockDriverState *bs, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    ImageInfoSpecific *spec = g_new0(ImageInfoSpecific, 1);
    ImageInfoSpecificIntellicache *info;
    IcStats st;

    ic_core_get_stats(s->core, &st);
    info = g_new(ImageInfoSpecificIntellicache, 1);
    *info = (ImageInfoSpecificIntellicache) {
        .cluster_size = ic_core_geometry(s->core)->cluster_size,
        .cluster_count = ic_core_geometry(s->core)->cluster_count,
        .cached_clusters = st.cached_clusters,
        .durable_clusters = st.durable_clusters,
        .hit_bytes = st.hit_bytes,
        .miss_bytes = st.miss_bytes,
        .wait_bytes = st.wait_bytes,
        .fetches = st.fetches,
        .fetched_bytes = st.fetched_bytes,
        .fetch_errors = st.fetch_errors,
        .stored_bytes = st.stored_bytes,
        .store_errors = st.store_errors,
        .store_skipped = st.store_skipped,
        .read_ahead_bytes = st.readahead_bytes,
        .caching = s->caching,
        .bypassed = s->bypass,
    };
    spec->type = IMAGE_INFO_SPECIFIC_KIND_INTELLICACHE;
    spec->u.intellicache.data = info;
    return spec;
}

static const char *const ic_strong_runtime_opts[] = {
    IC_OPT_CLUSTER_SIZE,
    IC_OPT_MAX_INFLIGHT,
    IC_OPT_MAX_FETCH,
    IC_OPT_BASE_FINGERPRINT,
    IC_OPT_READ_AHEAD,
    NULL
};

static BlockDriver bdrv_intellicache = {
    .format_name                = "intellicache",
    .instance_size              = sizeof(BDRVIntellicacheState),

    .bdrv_open                  = ic_open,
    .bdrv_close                 = ic_close,
    .bdrv_reopen_prepare        = ic_reopen_prepare,
    .bdrv_child_perm            = ic_child_perm,
    .bdrv_check_perm            = ic_check_perm,

    .bdrv_co_getlength          = ic_co_getlength,
    .bdrv_co_preadv_part        = ic_co_preadv_part,
    .bdrv_co_pwritev_part       = ic_co_pwritev_part,
    .bdrv_co_block_status       = ic_co_block_status,

    .bdrv_drain_begin           = ic_drain_begin,
    .bdrv_detach_aio_context    = ic_detach_aio_context,
    .bdrv_attach_aio_context    = ic_attach_aio_context,

    .bdrv_get_specific_info     = ic_get_specific_info,

    .strong_runtime_opts        = ic_strong_runtime_opts,
    .is_filter                  = true,
};

static void bdrv_intellicache_init(void)
{
    bdrv_register(&bdrv_intellicache);
}

block_init(bdrv_intellicache_init);
