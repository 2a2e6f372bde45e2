/*
 * intellicache: the module's side of the driver's QMP commands.  The
 * binary's entry points (intellicache-module.c) call these through the
 * table that the module installs when it is loaded.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "intellicache-int.h"
#include "intellicache-module.h"

static void ic_qmp_profile_start(BlockDriverState *bs, const char *filename,
                                 Error **errp)
{
    GRAPH_RDLOCK_GUARD_MAINLOOP();
    ic_profile_start(bs, filename, errp);
}

static const IntellicacheOps ic_ops = {
    .profile_start = ic_qmp_profile_start,
    .profile_stop = ic_profile_stop,
    .prefetch = ic_prefetch_cmd,
};

static void ic_qmp_init(void)
{
    intellicache_ops = &ic_ops;
}

block_init(ic_qmp_init);
