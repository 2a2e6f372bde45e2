/*
 * intellicache: recording boot profiles.
 *
 * While a node records, each user read notes the clusters it touches; the
 * core's recorder keeps the order in which clusters were first read and
 * when.  The profile is written into its file at intellicache-profile-stop
 * or, if the node is closed while it records, at close.  The file is
 * created when the recording starts, so that a file that cannot be written
 * is refused at once; it records the base's size and fingerprint, read
 * from the cache file's header, which ties the profile to the base.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "block/block-io.h"
#include "intellicache-int.h"

struct IcProfileRec {
    IcProfileRecorder *rec;
    char *filename;
    int fd;
};

/* The base's size and fingerprint, as the cache file's header records. */
static int GRAPH_RDLOCK ic_cache_header(BlockDriverState *bs,
                                        IcHeaderInfo *found, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    g_autofree uint8_t *buf = g_malloc0(IC_HEADER_SIZE);
    int64_t len = bdrv_getlength(s->cache->bs);
    char why[256];
    int ret;

    if (len < 0) {
        error_setg_errno(errp, -len, "Cannot get the size of the cache file");
        return len;
    }
    ret = bdrv_pread(s->cache, 0, MIN(len, IC_HEADER_SIZE), buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Cannot read the cache file's header");
        return ret;
    }
    if (ic_header_check(buf, MIN(len, IC_HEADER_SIZE), len, NULL, found, why,
                        sizeof(why)) != IC_HEADER_OK) {
        error_setg(errp, "The cache file has no valid header yet (%s)", why);
        return -EINVAL;
    }
    return 0;
}

int GRAPH_RDLOCK ic_node_base_id(BlockDriverState *bs, IcProfileHeader *id,
                                 Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcHeaderInfo h;
    uint64_t base_size;
    int ret = ic_cache_header(bs, &h, errp);

    if (ret < 0) {
        return ret;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        base_size = ic_core_geometry(s->core)->base_size;
    }
    if (h.base_size != base_size) {
        error_setg(errp, "The cache file's header records a base of %" PRIu64
                   " bytes, the node has %" PRIu64, h.base_size, base_size);
        return -EINVAL;
    }
    *id = (IcProfileHeader) {
        .cluster_size = h.cluster_size,
        .base_size = h.base_size,
    };
    memcpy(id->fingerprint, h.fingerprint, IC_FINGERPRINT_SIZE);
    return 0;
}

static void ic_profile_rec_free(IcProfileRec *p)
{
    ic_profile_recorder_free(p->rec);
    if (p->fd >= 0) {
        qemu_close(p->fd);
    }
    g_free(p->filename);
    g_free(p);
}

void GRAPH_RDLOCK ic_profile_start(BlockDriverState *bs, const char *filename,
                                   Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcProfileHeader id;
    IcProfileRec *p;
    IcGeometry g;
    bool busy;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        busy = s->profile;
    }
    if (busy) {
        error_setg(errp, "Node '%s' is recording a profile already",
                   bdrv_get_node_name(bs));
        return;
    }
    if (ic_node_base_id(bs, &id, errp) < 0) {
        return;
    }
    p = g_new0(IcProfileRec, 1);
    p->filename = g_strdup(filename);
    p->fd = qemu_create(filename, O_WRONLY | O_TRUNC, 0644, errp);
    if (p->fd < 0) {
        error_prepend(errp, "Cannot write the profile: ");
        ic_profile_rec_free(p);
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        g = *ic_core_geometry(s->core);
        if (!s->profile) {
            p->rec = ic_profile_recorder_new(
                &g, id.fingerprint, qemu_clock_get_ms(QEMU_CLOCK_REALTIME));
            if (p->rec) {
                s->profile = p;
                qatomic_set(&s->profiling, true);
                p = NULL;
            }
        }
    }
    if (p) {
        error_setg(errp, "Cannot allocate the profile recorder");
        ic_profile_rec_free(p);
        return;
    }
}

/* Write the recording @p into its file. */
static int ic_profile_write(IcProfileRec *p, Error **errp)
{
    size_t len = ic_profile_recorder_size(p->rec);
    g_autofree uint8_t *buf = g_try_malloc(len);
    size_t done = 0;

    if (!buf) {
        error_setg(errp, "Cannot allocate %zu bytes for the profile", len);
        return -ENOMEM;
    }
    ic_profile_recorder_encode(p->rec, buf);
    while (done < len) {
        ssize_t n = write(p->fd, buf + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "Cannot write the profile '%s'",
                             p->filename);
            return -errno;
        }
        done += n;
    }
    if (qemu_fdatasync(p->fd) < 0) {
        error_setg_errno(errp, errno, "Cannot write the profile '%s'",
                         p->filename);
        return -errno;
    }
    return 0;
}

/* Take the recording off the node: the caller writes and frees it. */
static IcProfileRec *ic_profile_take(BDRVIntellicacheState *s)
{
    IcProfileRec *p;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        p = s->profile;
        s->profile = NULL;
        qatomic_set(&s->profiling, false);
    }
    return p;
}

void ic_profile_stop(BlockDriverState *bs, Error **errp)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcProfileRec *p = ic_profile_take(s);

    if (!p) {
        error_setg(errp, "Node '%s' is not recording a profile",
                   bdrv_get_node_name(bs));
        return;
    }
    if (ic_profile_recorder_dropped(p->rec)) {
        warn_report("intellicache: the profile of node '%s' lists its first "
                    "%" PRIu64 " clusters read; %" PRIu64 " more were read",
                    bdrv_get_node_name(bs),
                    ic_profile_recorder_entries(p->rec),
                    ic_profile_recorder_dropped(p->rec));
    }
    ic_profile_write(p, errp);
    ic_profile_rec_free(p);
}

void ic_profile_close(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    IcProfileRec *p = ic_profile_take(s);
    Error *local_err = NULL;

    if (!p) {
        return;
    }
    if (ic_profile_write(p, &local_err) < 0) {
        warn_reportf_err(local_err, "intellicache: node '%s' closed while "
                         "recording a profile: ", bdrv_get_node_name(bs));
    }
    ic_profile_rec_free(p);
}

void ic_profile_note(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (!qatomic_read(&s->profiling)) {
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (s->profile) {
            ic_profile_recorder_note(s->profile->rec, offset, bytes,
                                     qemu_clock_get_ms(QEMU_CLOCK_REALTIME));
        }
    }
}
