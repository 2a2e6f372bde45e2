/*
 * intellicache: the cache file.  Checking its header against the base,
 * computing the base's fingerprint, formatting, and loading the presence
 * bitmap.  What to do with a file is decided by the core
 * (ic_open_decide()); this file reads and writes it.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/statvfs.h>
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "qapi/error.h"
#include "block/block-io.h"
#include "system/block-backend.h"
#include "intellicache-int.h"

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
 * Whether the cache file can be held to cache-size (@settings, resolved)
 * or to a share of @pool (the node's pool @pool_id, NULL if none): freed
 * clusters are discarded, which the block layer silently skips unless the
 * cache file's node was opened with discard=unmap; and for a "file" node,
 * its file system must have room for cache-size (what is free plus what
 * the cache file holds already), and for the pool's size (what is free
 * plus what the pool's caches hold: a pool larger than that could never
 * be filled, and its members would fill the file system instead).  Main
 * loop, in a coroutine or not.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
ic_check_cache_size(BlockDriverState *bs, const IcSettings *settings,
                    const IcPool *pool, const char *pool_id, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    BlockDriverState *cache = s->cache->bs;
    g_autofree char *want = NULL, *room = NULL, *held = NULL;
    struct statvfs fs;
    int64_t allocated;
    uint64_t free_bytes;

    if (!settings->cache_size && !pool) {
        return 0;
    }
    if (!(cache->open_flags & BDRV_O_UNMAP)) {
        error_setg(errp, "%s needs a cache file that can free space: open "
                   "node '%s' with discard=unmap",
                   settings->cache_size ? IC_OPT_CACHE_SIZE : IC_OPT_POOL,
                   bdrv_get_node_name(cache));
        return -EINVAL;
    }
    if (!cache->drv || strcmp(cache->drv->format_name, "file") != 0 ||
        statvfs(cache->filename, &fs) < 0) {
        return 0;
    }
    free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
    room = size_to_str(free_bytes);
    /* Activation checks it again, in a coroutine (ic_cache_open()). */
    allocated = qemu_in_coroutine() ? bdrv_co_get_allocated_file_size(cache)
                                    : bdrv_get_allocated_file_size(cache);
    allocated = MAX(allocated, 0);
    if (settings->cache_size > free_bytes + allocated) {
        want = size_to_str(settings->cache_size);
        held = size_to_str(allocated);
        error_setg(errp, IC_OPT_CACHE_SIZE " %s is more than the file system "
                   "of '%s' can hold: %s free, plus %s in the cache file",
                   want, cache->filename, room, held);
        return -ENOSPC;
    }
    if (pool && ic_pool_size(pool) > free_bytes + ic_pool_used(pool)) {
        want = size_to_str(ic_pool_size(pool));
        held = size_to_str(ic_pool_used(pool));
        error_setg(errp, IC_OPT_POOL " '%s' of %s is more than the file "
                   "system of '%s' can hold: %s free, plus %s in the pool's "
                   "caches", pool_id, want, cache->filename, room, held);
        error_append_hint(errp, "Give the pool a size that the file system "
                          "of its caches can hold.\n");
        return -ENOSPC;
    }
    return 0;
}

/*
 * Identify the base's content: SHA-256 over what the core's fingerprint
 * plan names (the base's size, samples spread over the image) and the
 * user's base-fingerprint.  The base is read through the node's child, or
 * through @blk for a node that is not its base yet (reopen).
 */
static int GRAPH_RDLOCK
ic_base_fingerprint(BlockDriverState *bs, BlockBackend *blk,
                    uint64_t base_size, uint8_t out[IC_FINGERPRINT_SIZE],
                    Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    uint8_t preamble[IC_FINGERPRINT_PREAMBLE_MAX];
    IcRange ranges[IC_FINGERPRINT_SAMPLES];
    gsize out_len = IC_FINGERPRINT_SIZE;
    size_t n;
    uint8_t *buf;
    int ret = 0;

    n = ic_fingerprint_preamble(base_size, preamble);
    g_checksum_update(sum, preamble, n);
    n = ic_fingerprint_plan(base_size, ranges);
    buf = qemu_blockalign(bs, IC_FINGERPRINT_SAMPLE_SIZE);
    for (size_t i = 0; i < n && ret == 0; i++) {
        ret = blk ? blk_pread(blk, ranges[i].offset, ranges[i].bytes, buf, 0)
                  : bdrv_pread(bs->file, ranges[i].offset, ranges[i].bytes,
                               buf, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read the base image");
            break;
        }
        g_checksum_update(sum, buf, ranges[i].bytes);
    }
    qemu_vfree(buf);
    if (s->user_fingerprint) {
        g_checksum_update(sum, (const guchar *)s->user_fingerprint,
                          strlen(s->user_fingerprint) + 1);
    }
    g_checksum_get_digest(sum, out, &out_len);
    return ret;
}

/* Discard whatever the cache file holds and write an empty cache. */
static int GRAPH_RDLOCK
ic_format(BlockDriverState *bs, IcCore *core, const IcHeaderInfo *h,
          Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    const IcGeometry *g = ic_core_geometry(core);
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

/* Load the presence bitmap of a valid cache into @core. */
static int GRAPH_RDLOCK
ic_load_metadata(BlockDriverState *bs, IcCore *core, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    const IcGeometry *g = ic_core_geometry(core);
    uint8_t *buf = qemu_blockalign(s->cache->bs,
                                   IC_META_BATCH * IC_META_BLOCK_SIZE);
    uint64_t damaged = 0;
    int ret = 0;

    for (uint64_t i = 0; i < g->meta_blocks; i += IC_META_BATCH) {
        uint64_t n = MIN(IC_META_BATCH, g->meta_blocks - i);

        ret = bdrv_pread(s->cache, ic_core_meta_block_offset(core, i),
                         n * IC_META_BLOCK_SIZE, buf, 0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not read cache '%s'",
                             bdrv_get_node_name(s->cache->bs));
            break;
        }
        for (uint64_t j = 0; j < n; j++) {
            if (ic_core_load_meta_block(core, i + j,
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

/* Read the cache file's header and check it against the base. */
static int GRAPH_RDLOCK
ic_check_header(BlockDriverState *bs, const IcHeaderInfo *want,
                IcHeaderInfo *found, IcHeaderStatus *status,
                char *why, size_t why_len, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    const char *cache_name = bdrv_get_node_name(s->cache->bs);
    int64_t cache_size = bdrv_getlength(s->cache->bs);
    uint8_t *buf;
    int ret;

    if (cache_size < 0) {
        error_setg_errno(errp, -cache_size, "Could not get the size of "
                         "cache '%s'", cache_name);
        return cache_size;
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
    *status = ic_header_check(buf, MIN(cache_size, IC_HEADER_SIZE), cache_size,
                              want, found, why, why_len);
    qemu_vfree(buf);
    return 0;
}

/*
 * Open the node's cache file and return the core that describes it: use it
 * if it is a valid cache of this base, format it if it is empty, reset it
 * (with a warning) if it is a damaged or stale cache, and refuse it if it
 * is something else.
 *
 * With BDRV_O_NO_IO (e.g. qemu-img info) the base is not read, so its
 * fingerprint cannot be checked, and nothing is written: a valid cache is
 * shown as it is recorded, anything else as empty.  An @inactive node
 * writes nothing either: a cache that needs formatting is formatted when
 * the node is activated, which opens the file again.
 *
 * A node opened without its base (@s->has_base false) uses a valid cache
 * as it is recorded and refuses anything else.
 *
 * @settings holds the checked options; it is completed for the cache's
 * cluster size.  On success the new core is returned in @corep.  Main
 * loop: at open, and in a coroutine at activation.
 */
int coroutine_mixed_fn GRAPH_RDLOCK
ic_cache_open(BlockDriverState *bs, bool inactive, IcSettings *settings,
              IcCore **corep, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    const char *cache_name = bdrv_get_node_name(s->cache->bs);
    IcHeaderInfo want = {
        .cluster_size = s->opts.has_cluster_size ? s->opts.cluster_size : 0,
    };
    IcHeaderInfo found = { 0 };
    IcHeaderStatus status;
    IcOpenAction action;
    IcGeometry g;
    IcCore *core;
    char why[256];
    int64_t base_size;
    int ret = 0;

    if (!s->has_base) {
        /* What the cache records, then that with the requested cluster size */
        ret = ic_check_header(bs, NULL, &found, &status, why, sizeof(why),
                              errp);
        if (ret == 0 && status == IC_HEADER_OK) {
            want.base_size = found.base_size;
            memcpy(want.fingerprint, found.fingerprint, IC_FINGERPRINT_SIZE);
            ret = ic_check_header(bs, &want, &found, &status, why,
                                  sizeof(why), errp);
        }
        if (ret < 0) {
            return ret;
        }
        base_size = found.base_size;
        action = ic_open_decide_without_base(status);
        if (action == IC_OPEN_REFUSE && status != IC_HEADER_FOREIGN) {
            error_setg(errp, "cache-file: node '%s' holds no cache that can "
                       "be used without the base (%s)", cache_name, why);
            error_append_hint(errp, "Give the base image (file) to open "
                              "it.\n");
            return -EINVAL;
        }
    } else {
        base_size = bdrv_getlength(bs->file->bs);
        if (base_size < 0) {
            error_setg_errno(errp, -base_size, "Could not get the size of "
                             "the base image");
            return base_size;
        }
        want.base_size = base_size;
        if (!s->no_io) {
            ic_check_cache_mode(bs, s->cache->bs);
            ret = ic_base_fingerprint(bs, NULL, base_size, want.fingerprint,
                                      errp);
            if (ret < 0) {
                /* Not retried: an open must not hold the main loop. */
                error_append_hint(errp, "A cache file that holds this "
                                  "base's cache can be used without the "
                                  "base: open the node without 'file', and "
                                  "attach the base with blockdev-reopen "
                                  "once it can be read.\n");
                return ret;
            }
        }
        ret = ic_check_header(bs, &want, &found, &status, why, sizeof(why),
                              errp);
        if (ret < 0) {
            return ret;
        }
        action = ic_open_decide(status, !s->no_io, !s->no_io && !inactive);
    }
    switch (action) {
    case IC_OPEN_USE:
        want = found;
        break;
    case IC_OPEN_REFUSE:
        error_setg(errp, "cache-file: node '%s' does not hold an "
                   "intellicache cache (%s); refusing to overwrite it",
                   cache_name, why);
        error_append_hint(errp, "Give an empty file to create a new cache.\n");
        return -EINVAL;
    case IC_OPEN_RESET:
        warn_report("intellicache: '%s': resetting cache '%s': %s",
                    bdrv_get_node_name(bs), cache_name, why);
        break;
    case IC_OPEN_FORMAT:
    case IC_OPEN_EMPTY:
        break;
    }

    if (!want.cluster_size) {
        want.cluster_size = ic_default_cluster_size(base_size);
    }
    if (!ic_geometry_init(&g, base_size, want.cluster_size, why,
                          sizeof(why)) ||
        !ic_settings_resolve(&s->opts, settings, g.cluster_size, why,
                             sizeof(why))) {
        error_setg(errp, "%s", why);
        return -EINVAL;
    }
    ret = ic_check_cache_size(bs, settings, s->pool, s->pool_id, errp);
    if (ret < 0) {
        return ret;
    }
    if (action != IC_OPEN_USE) {
        want.version = IC_FORMAT_VERSION;
        want.instance = ((uint64_t)g_random_int() << 32) | g_random_int();
    }
    core = ic_core_new(&g, want.instance, settings->max_fetch,
                       settings->max_inflight, why, sizeof(why));
    if (!core) {
        error_setg(errp, "cache-file '%s': %s", cache_name, why);
        return -ENOMEM;
    }
    ic_core_apply_settings(core, settings);

    if (action == IC_OPEN_USE) {
        ret = ic_load_metadata(bs, core, errp);
    } else if (action == IC_OPEN_FORMAT || action == IC_OPEN_RESET) {
        ret = ic_format(bs, core, &want, errp);
    }
    if (ret == 0 &&
        !ic_core_set_bound(core, settings, s->pool, bs, why, sizeof(why))) {
        error_setg(errp, "cache-file '%s': %s", cache_name, why);
        ret = -ENOMEM;
    }
    if (ret < 0) {
        ic_core_release(core);
        return ret;
    }
    if (inactive) {
        ic_core_set_active(core, false);
    }
    *corep = core;
    return 0;
}

/*
 * Whether @base may become the node's base (blockdev-reopen with "file"):
 * it must be the base the cache was recorded for, the same size and
 * fingerprint, or the cache would serve another image's data as its own.
 * Main loop, outside the graph lock: the base is read through a
 * BlockBackend of its own, since it is not the node's child yet.
 */
int GRAPH_UNLOCKED
ic_check_new_base(BlockDriverState *bs, BlockDriverState *base, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    BlockBackend *blk;
    IcHeaderInfo want = { 0 }, found;
    IcHeaderStatus status;
    char why[256];
    int64_t size;
    int ret;

    GLOBAL_STATE_CODE();
    blk = blk_new(bdrv_get_aio_context(base), BLK_PERM_CONSISTENT_READ,
                  BLK_PERM_ALL);
    ret = blk_insert_bs(blk, base, errp);
    size = ret < 0 ? ret : blk_getlength(blk);
    if (size >= 0) {
        want.base_size = size;
        want.cluster_size = s->settings.cluster_size;
        bdrv_graph_rdlock_main_loop();
        ret = ic_base_fingerprint(bs, blk, size, want.fingerprint, errp);
        bdrv_graph_rdunlock_main_loop();
    } else if (ret == 0) {
        ret = size;
        error_setg_errno(errp, -ret, "Could not get the size of the base");
    }
    blk_unref(blk);
    if (ret < 0) {
        error_prepend(errp, "file: node '%s': ", bdrv_get_node_name(base));
        return ret;
    }

    GRAPH_RDLOCK_GUARD_MAINLOOP();
    ret = ic_check_header(bs, &want, &found, &status, why, sizeof(why), errp);
    if (ret < 0) {
        return ret;
    }
    if (status != IC_HEADER_OK) {
        error_setg(errp, "file: node '%s' is not the base of cache '%s': %s",
                   bdrv_get_node_name(base), bdrv_get_node_name(s->cache->bs),
                   why);
        return -EINVAL;
    }
    return 0;
}

/* Free @core, with the fetch buffers it still keeps for reuse. */
void ic_core_release(IcCore *core)
{
    void *buf;

    if (!core) {
        return;
    }
    while ((buf = ic_core_buf_reclaim(core))) {
        qemu_vfree(buf);
    }
    ic_core_free(core);
}
