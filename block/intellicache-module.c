/*
 * intellicache: the entry points of the driver's QMP commands, linked into
 * every binary that loads block modules (intellicache-module.h).
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-intellicache.h"
#include "block/block-global-state.h"
#include "intellicache-module.h"

const IntellicacheOps *intellicache_ops;

/*
 * The intellicache node named @node_name, or NULL with an error naming
 * what is wrong.  Called with the graph read-locked.  Its driver is
 * loaded, so is the module and its table.
 */
static BlockDriverState *ic_find_node(const char *node_name, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(node_name);

    if (!bs) {
        error_setg(errp, "Cannot find node '%s'", node_name);
        return NULL;
    }
    if (!bs->drv || strcmp(bs->drv->format_name, INTELLICACHE_FORMAT_NAME) ||
        !intellicache_ops) {
        error_setg(errp, "Node '%s' is not an intellicache node (driver: %s)",
                   node_name, bs->drv ? bs->drv->format_name : "none");
        return NULL;
    }
    return bs;
}

void qmp_intellicache_profile_start(const char *node_name,
                                    const char *filename, Error **errp)
{
    BlockDriverState *bs;

    bdrv_graph_rdlock_main_loop();
    bs = ic_find_node(node_name, errp);
    bdrv_graph_rdunlock_main_loop();
    if (bs) {
        intellicache_ops->profile_start(bs, filename, errp);
    }
}

void qmp_intellicache_profile_stop(const char *node_name, Error **errp)
{
    BlockDriverState *bs;

    bdrv_graph_rdlock_main_loop();
    bs = ic_find_node(node_name, errp);
    bdrv_graph_rdunlock_main_loop();
    if (bs) {
        intellicache_ops->profile_stop(bs, errp);
    }
}

void qmp_intellicache_prefetch(const char *job_id, const char *node_name,
                               const char *profile, bool has_speed,
                               int64_t speed, bool has_max_inflight,
                               uint32_t max_inflight, Error **errp)
{
    BlockDriverState *bs;

    bdrv_graph_rdlock_main_loop();
    bs = ic_find_node(node_name, errp);
    bdrv_graph_rdunlock_main_loop();
    if (bs) {
        intellicache_ops->prefetch(job_id, bs, profile, has_speed, speed,
                                   has_max_inflight, max_inflight, errp);
    }
}
