/*
 * intellicache: the driver's private header, shared by its C files.
 *
 *   intellicache.c        driver table, open/close, options, permissions,
 *                         activation (migration), drain, AioContext moves;
 *                         the placeholder base of a node opened without
 *                         one (intellicache-offline)
 *   intellicache-file.c   the cache file: header check, fingerprint of the
 *                         base, formatting, loading the presence bitmap
 *   intellicache-health.c the base's health: its events, the timer that
 *                         spots slow reads, ends waits at their deadline
 *                         and probes a base that is down
 *   intellicache-read.c   the read path: hits, fetches, read-ahead, block
 *                         status, zero fills of what the base says is
 *                         zeros
 *   intellicache-store.c  storing fetched data and writing the metadata
 *                         that records it (sync)
 *   intellicache-evict.c  freeing clusters of a bounded cache (cache-size)
 *   intellicache-stats.c  what QMP and qemu-img show
 *   intellicache-profile.c recording boot profiles
 *   intellicache-job.c    the prefetch job and BDRV_REQ_PREFETCH reads
 *   intellicache-qmp.c    the module's side of the QMP commands, called
 *                         through intellicache-module.c (in the binaries)
 *
 * Every decision is made by the C++ core (block/intellicache/, API in
 * intellicache-core.h); these files execute them.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BLOCK_INTELLICACHE_INT_H
#define BLOCK_INTELLICACHE_INT_H

#include "qemu/coroutine.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "block/block_int.h"
#include "qapi/qapi-types-intellicache.h"
#include "intellicache-core.h"
#include "intellicache-module.h"
#include "trace/trace-block_intellicache.h"

#define IC_OPT_CLUSTER_SIZE "cluster-size"
#define IC_OPT_MAX_INFLIGHT "max-inflight"
#define IC_OPT_MAX_FETCH "max-fetch"
#define IC_OPT_BASE_FINGERPRINT "base-fingerprint"
#define IC_OPT_READ_AHEAD "read-ahead"
#define IC_OPT_MISS_TIMEOUT "miss-timeout"
#define IC_OPT_CACHE_SIZE "cache-size"
#define IC_OPT_SCAN_THRESHOLD "scan-threshold"
#define IC_OPT_POOL "pool"

/* The placeholder base of a node opened without one (intellicache.c). */
#define IC_OFFLINE_DRIVER "intellicache-offline"
#define IC_OFFLINE_OPT_SIZE "size"

typedef struct BDRVIntellicacheState BDRVIntellicacheState;
typedef struct IcProfileRec IcProfileRec;

/*
 * A read of the base that user reads wait for: a fetch, or a query of the
 * base's block status.  It runs in a coroutine of its own, so that a
 * waiter can stop at its deadline (miss-timeout) whatever the base does;
 * the operation then ends whenever the base answers.  Protected by the
 * node's lock.
 */
typedef struct IcBaseOp {
    int ret;                    /* -EINPROGRESS until it ends */
    CoQueue waiters;
    unsigned waiting;           /* waiters in @waiters now */
    bool abandoned;             /* a waiter stopped at its deadline */
    int64_t start_ms;           /* QEMU_CLOCK_REALTIME; 0: not started */
    QLIST_ENTRY(IcBaseOp) next; /* in the node's @base_ops until it ends */
} IcBaseOp;

/* A window of the serving thread's time (ic_thread_busy_permille_locked()). */
typedef struct IcThreadBusy {
    int64_t wall_ns;   /* when the current window began, 0 before any */
    int64_t demand_ns; /* the thread's run (and wait) time then */
    bool waits;        /* @demand_ns counts run-queue wait */
    int tid;           /* the thread it began in */
    unsigned permille; /* of the last window that ended */
} IcThreadBusy;

/*
 * A read of the base for a run of missing clusters.  Reference-counted:
 * its coroutine, each reader that waits for it, and the store queue each
 * hold a reference.  @offset, @bytes, @kind and @zeros never change; @buf
 * is set before the base read starts and freed with the last reference.
 * A zero fill (@zeros) records clusters the base reported as zeros: it
 * ends as soon as it is made, has no coroutine and no @buf, and its
 * readers get zeros.
 */
typedef struct IcFetch {
    BDRVIntellicacheState *s;
    IcFetchId id;
    IcFetchKind kind;
    bool zeros;
    uint64_t offset;    /* base offset */
    uint64_t bytes;
    void *buf;          /* the fetched data, until the last reference */
    unsigned refcnt;    /* atomic */
    IcBaseOp op;        /* the base read; its result */
} IcFetch;

/*
 * One user read, for its deadline: when it first waited for the base and
 * how long it may (the miss-timeout when it began), and how it failed.
 * Shared by the pieces of the read, which all run in its AioContext.
 */
typedef struct IcRead {
    int64_t start_ns;       /* QEMU_CLOCK_REALTIME; 0: no wait yet */
    uint64_t timeout_ms;    /* 0: no deadline */
    bool timed_out;         /* a piece stopped waiting at the deadline */
    bool failed_fast;       /* it missed while the base was down */
    bool read_ahead_failed; /* a piece's read-ahead fetch failed */
    bool missed;            /* a piece needed the base (miss-latency) */
} IcRead;

/* For trace events: what a fetch is for. */
static inline const char *ic_fetch_kind_name(IcFetchKind kind)
{
    switch (kind) {
    case IC_FETCH_DEMAND:
        return "demand";
    case IC_FETCH_READ_AHEAD:
        return "read-ahead";
    case IC_FETCH_PREFETCH:
        return "prefetch";
    }
    return "?";
}

struct BDRVIntellicacheState {
    /* Set by open, unchanged until close. */
    BlockDriverState *bs;
    BdrvChild *cache;
    bool no_io;                 /* opened with BDRV_O_NO_IO */
    char *user_fingerprint;     /* the base-fingerprint option, or NULL */
    char *pool_id;              /* the pool option, or NULL */
    IntellicachePool *pool_obj; /* the pool object joined, or NULL */
    IcPool *pool;               /* its budget (thread-safe), or NULL */
    IcLatency *latency;         /* histograms: lock-free, any thread */

    /* Main loop: the options as given, and in effect (reopen changes). */
    IcOptions opts;
    IcSettings settings;

    /*
     * Locking rule: requests may arrive in any thread (multiqueue), and QMP
     * queries run in the main loop, so @lock protects @core (every
     * ic_core_*() call on it) and the fields below it.  It is held only for
     * short sections that never yield; coroutines wait on the CoQueues
     * with it held, and qemu_co_queue_wait() drops it while they sleep.
     * Never do I/O or call into the block layer with it held.
     */
    QemuMutex lock;
    IcCore *core;
    CoQueue slot_queue;         /* demand fetches waiting for a slot */
    bool reloading;             /* activation is replacing @core */
    CoQueue reload_queue;       /* reads waiting for the new @core */
    CoQueue idle_queue;         /* activation waiting for fetches to end */
    IcHealth *health;           /* whether the base answers */
    /*
     * False while the node has no base: it was opened without "file"
     * (offline start) and its file child is a placeholder that fails
     * every read (intellicache-offline).  Set by open and by the reopen
     * that attaches the base.
     */
    bool has_base;
    /* Base reads not ended, for the health timer. */
    QLIST_HEAD(, IcBaseOp) base_ops;
    bool status_query;          /* a block status query of the base runs */
    bool health_armed;          /* @health_timer is armed */
    bool probe_running;         /* a probe of a down base is reading */
    bool store_bh_scheduled;    /* ic_store_bh() will start writers */
    bool sync_scheduled;        /* @sync_timer is armed */
    bool sync_error_reported;   /* a failed sync was reported once */
    /* Bytes of fetch buffers given back since the last ic_buf_trim(). */
    uint64_t buf_churn;
    bool evicting;              /* ic_evict_entry() runs */
    /*
     * A bounded cache (cache-size): hits count in @pins[@pin_epoch] until
     * their read of the cache file ends (intellicache-evict.c).  @pins
     * are atomic; @bounded and @pin_epoch are under @lock.
     */
    bool bounded;
    /*
     * What a crash left unrecorded in the cache file was discarded (at
     * open or when a bound was first set).  Main loop only.
     */
    bool leftovers_done;
    unsigned pin_epoch;
    unsigned pins[2];
    IcProfileRec *profile;      /* the profile being recorded, or NULL */
    bool profiling;             /* @profile is set; read without @lock */

    /*
     * Main loop (or the node's home AioContext): the timer that records
     * stored clusters durably.  It is created in the node's AioContext
     * and moves with it; it runs on QEMU_CLOCK_VIRTUAL_RT, which stands
     * still while a VM is stopped (e.g. for migration).
     */
    QEMUTimer *sync_timer;
    CoMutex sync_lock;          /* one sync at a time */

    /*
     * The node's home AioContext: the health timer (intellicache-health.c),
     * on QEMU_CLOCK_REALTIME: the deadlines of guest reads are wall time.
     */
    QEMUTimer *health_timer;

    /*
     * The node's home AioContext, while the node is in a pool: looks for
     * room the pool asks this node to free (intellicache-evict.c), on
     * QEMU_CLOCK_REALTIME.
     */
    QEMUTimer *pool_timer;

    /*
     * The node's home AioContext, while stores are deferred: starts
     * ic_defer_entry() once guests may be quiet (intellicache-job.c), on
     * QEMU_CLOCK_REALTIME.  @defer_scheduled (it is armed) and
     * @defer_running (the coroutine runs) are under @lock.
     */
    QEMUTimer *defer_timer;
    bool defer_scheduled;
    bool defer_running;
    /* How busy the serving thread is, for deferring (under @lock). */
    IcThreadBusy thread_busy;
};

/* intellicache.c */
void ic_fetch_left_locked(BDRVIntellicacheState *s);

/* intellicache-file.c */
int coroutine_mixed_fn GRAPH_RDLOCK
ic_cache_open(BlockDriverState *bs, bool inactive, IcSettings *settings,
              IcCore **core, Error **errp);
void ic_core_release(IcCore *core);
int coroutine_mixed_fn GRAPH_RDLOCK
ic_check_cache_size(BlockDriverState *bs, const IcSettings *settings,
                    const IcPool *pool, const char *pool_id, Error **errp);
int GRAPH_UNLOCKED
ic_check_new_base(BlockDriverState *bs, BlockDriverState *base, Error **errp);

/* intellicache-evict.c */
void ic_evict_kick(BlockDriverState *bs);
void ic_pool_timer_new(BlockDriverState *bs, AioContext *ctx);
void ic_pool_timer_free(BlockDriverState *bs);
void ic_pool_timer_arm(BlockDriverState *bs);
void ic_pool_timer_disarm(BlockDriverState *bs);
void GRAPH_RDLOCK ic_evict_all(BlockDriverState *bs);
void coroutine_fn GRAPH_RDLOCK ic_co_evict_all(BlockDriverState *bs);

/* intellicache-health.c */
void ic_health_timer_new(BlockDriverState *bs, AioContext *ctx);
void ic_health_timer_free(BlockDriverState *bs);
void ic_health_arm_locked(BlockDriverState *bs);
void ic_health_disarm(BlockDriverState *bs);
void G_GNUC_PRINTF(3, 4)
ic_health_note_locked(BlockDriverState *bs, IcBaseEvent ev,
                      const char *fmt, ...);
IntellicacheBaseState ic_qapi_base_state(IcBaseState state);
void ic_base_op_init_locked(BlockDriverState *bs, IcBaseOp *op);
void ic_base_op_end_locked(IcBaseOp *op, int ret);
int coroutine_fn ic_co_base_op_wait(BDRVIntellicacheState *s, IcBaseOp *op,
                                    int64_t deadline_ns, bool *timed_out);

/* intellicache-job.c */
int coroutine_fn GRAPH_RDLOCK
ic_co_prefetch_read(BlockDriverState *bs, int64_t offset, int64_t bytes);
void ic_defer_timer_new(BlockDriverState *bs, AioContext *ctx);
void ic_defer_timer_free(BlockDriverState *bs);
void ic_defer_schedule(BlockDriverState *bs);
void ic_defer_disarm(BlockDriverState *bs);
void ic_prefetch_cmd(const char *job_id, BlockDriverState *bs,
                     const char *profile, bool has_speed, int64_t speed,
                     bool has_max_inflight, uint32_t max_inflight,
                     Error **errp);

/* intellicache-profile.c */
int GRAPH_RDLOCK ic_node_base_id(BlockDriverState *bs, IcProfileHeader *id,
                                 Error **errp);
void GRAPH_RDLOCK ic_profile_start(BlockDriverState *bs, const char *filename,
                                   Error **errp);
void ic_profile_stop(BlockDriverState *bs, Error **errp);
void ic_profile_close(BlockDriverState *bs);
void ic_profile_note(BlockDriverState *bs, int64_t offset, int64_t bytes);

/* intellicache-read.c */
int coroutine_fn GRAPH_RDLOCK
ic_co_preadv_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  QEMUIOVector *qiov, size_t qiov_offset,
                  BdrvRequestFlags flags);
int coroutine_fn GRAPH_RDLOCK
ic_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                   int64_t bytes, int64_t *pnum, int64_t *map,
                   BlockDriverState **file);
void ic_fetch_unref(IcFetch *f);
void ic_buf_trim(BlockDriverState *bs);
/*
 * Start a prefetch of the first piece of [offset, offset + bytes) if the
 * core gives a prefetch slot (guest misses go first) and the base is up.
 * Returns the bytes the piece covers, with *@fetch the new fetch (and a
 * reference for the caller) or NULL if the piece is cached or being
 * fetched already; 0 if no slot is free now; -EIO if the base is not up
 * (a prefetch reads no base that fails); -ENOTSUP if the cache is not
 * caching (nothing fetched could be stored).  A @refill fetches again
 * what guests read before (deferred stores): not data loaded ahead.
 */
int64_t coroutine_fn ic_co_prefetch_start(BlockDriverState *bs,
                                          uint64_t offset, uint64_t bytes,
                                          bool refill, IcFetch **fetch);

/* intellicache-store.c */
int coroutine_fn GRAPH_RDLOCK ic_co_sync(BlockDriverState *bs, bool final);
void ic_store_fetched(BlockDriverState *bs, IcFetch *f);
void ic_cache_failed(BlockDriverState *bs, bool write, int err);
void ic_sync_timer_new(BlockDriverState *bs, AioContext *ctx);
void ic_sync_timer_free(BlockDriverState *bs);
void ic_sync_schedule(BlockDriverState *bs);
int GRAPH_RDLOCK ic_sync_all(BlockDriverState *bs);

/* intellicache-stats.c */
ImageInfoSpecific * GRAPH_RDLOCK
ic_get_specific_info(BlockDriverState *bs, Error **errp);
BlockStatsSpecific * GRAPH_RDLOCK ic_get_specific_stats(BlockDriverState *bs);

#endif /* BLOCK_INTELLICACHE_INT_H */
