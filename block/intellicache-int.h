/*
 * intellicache: the driver's private header, shared by its C files.
 *
 *   intellicache.c        driver table, open/close, options, permissions,
 *                         activation (migration), drain, AioContext moves
 *   intellicache-file.c   the cache file: header check, fingerprint of the
 *                         base, formatting, loading the presence bitmap
 *   intellicache-read.c   the read path: hits, fetches, read-ahead, block
 *                         status
 *   intellicache-store.c  storing fetched data and writing the metadata
 *                         that records it (sync)
 *   intellicache-stats.c  what QMP and qemu-img show
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
#include "intellicache-core.h"

#define IC_OPT_CLUSTER_SIZE "cluster-size"
#define IC_OPT_MAX_INFLIGHT "max-inflight"
#define IC_OPT_MAX_FETCH "max-fetch"
#define IC_OPT_BASE_FINGERPRINT "base-fingerprint"
#define IC_OPT_READ_AHEAD "read-ahead"

typedef struct BDRVIntellicacheState BDRVIntellicacheState;

/*
 * A read of the base for a run of missing clusters.  Reference-counted:
 * the coroutine that issues it, each reader that waits for it, and the
 * store queue each hold a reference.  @ret and @waiters are protected by
 * the node's lock; @offset, @bytes and @kind never change; @buf is set
 * before the base read starts and freed with the last reference.
 */
typedef struct IcFetch {
    BDRVIntellicacheState *s;
    IcFetchId id;
    IcFetchKind kind;
    uint64_t offset;    /* base offset */
    uint64_t bytes;
    void *buf;          /* the fetched data, until the last reference */
    int ret;            /* -EINPROGRESS until the base read completes */
    unsigned refcnt;    /* atomic */
    CoQueue waiters;    /* readers waiting for the base read */
} IcFetch;

struct BDRVIntellicacheState {
    /* Set by open, unchanged until close. */
    BlockDriverState *bs;
    BdrvChild *cache;
    bool no_io;                 /* opened with BDRV_O_NO_IO */
    char *user_fingerprint;     /* the base-fingerprint option, or NULL */

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
    bool store_bh_scheduled;    /* ic_store_bh() will start writers */
    bool sync_scheduled;        /* @sync_timer is armed */
    bool sync_error_reported;   /* a failed sync was reported once */

    /*
     * Main loop (or the node's home AioContext): the timer that records
     * stored clusters durably.  It is created in the node's AioContext
     * and moves with it; it runs on QEMU_CLOCK_VIRTUAL_RT, which stands
     * still while a VM is stopped (e.g. for migration).
     */
    QEMUTimer *sync_timer;
    CoMutex sync_lock;          /* one sync at a time */
};

/* intellicache.c */
void ic_fetch_left_locked(BDRVIntellicacheState *s);

/* intellicache-file.c */
int GRAPH_RDLOCK ic_cache_open(BlockDriverState *bs, bool inactive,
                               IcSettings *settings, IcCore **core,
                               Error **errp);
void ic_core_release(IcCore *core);

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

/* intellicache-store.c */
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
