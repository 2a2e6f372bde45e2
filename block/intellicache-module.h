/*
 * intellicache: what the binaries that load block modules hold for the
 * intellicache module (intellicache-module.c).
 *
 * The driver is built as a loadable module, but the QMP commands of its
 * schema are dispatched from the binary, so their entry points
 * (qmp_intellicache_*()) must be in it.  They find the node, check that it
 * is an intellicache node and call the module through this table, which
 * the module fills when it is loaded (the pattern of ui/spice-module.c).
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BLOCK_INTELLICACHE_MODULE_H
#define BLOCK_INTELLICACHE_MODULE_H

#include "block/block_int.h"

/* The driver's format name, which the entry points check. */
#define INTELLICACHE_FORMAT_NAME "intellicache"

/*
 * The module's operations.  Each is called in the main loop, the graph
 * not locked, on an intellicache node.
 */
typedef struct IntellicacheOps {
    void (*profile_start)(BlockDriverState *bs, const char *filename,
                          Error **errp);
    void (*profile_stop)(BlockDriverState *bs, Error **errp);
    void (*prefetch)(const char *job_id, BlockDriverState *bs,
                     const char *profile, bool has_speed, int64_t speed,
                     bool has_max_inflight, uint32_t max_inflight,
                     Error **errp);
} IntellicacheOps;

/* NULL until the module is loaded. */
extern const IntellicacheOps *intellicache_ops;

/* The intellicache-pool object (intellicache-pool.c). */
#define TYPE_INTELLICACHE_POOL "intellicache-pool"
typedef struct IntellicachePool IntellicachePool;

/*
 * The pool object @id, or NULL with an error naming what is wrong.  Main
 * loop.
 */
IntellicachePool *intellicache_pool_find(const char *id, Error **errp);
/* The module's budget of a pool, as the pool object sees it. */
typedef struct IntellicachePoolBudgetOps {
    void *(*budget_new)(uint64_t size);   /* NULL if out of memory */
    void (*budget_free)(void *budget);
    uint64_t (*budget_used)(void *budget); /* bytes held; thread-safe */
} IntellicachePoolBudgetOps;

/*
 * A node joins @pool: it holds a reference to it until
 * intellicache_pool_leave().  Returns the pool's budget, which the first
 * member makes with @ops (kept for the pool's life); NULL with an error if
 * it cannot be made.  Main loop.
 */
void *intellicache_pool_join(IntellicachePool *pool,
                             const IntellicachePoolBudgetOps *ops,
                             Error **errp);
void intellicache_pool_leave(IntellicachePool *pool);
uint64_t intellicache_pool_size(IntellicachePool *pool);

#endif /* BLOCK_INTELLICACHE_MODULE_H */
