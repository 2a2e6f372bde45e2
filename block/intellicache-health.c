/*
 * intellicache: the health of the base.
 *
 * Cached data never depends on the base.  Misses do, and a base on the
 * network can fail (a server restarting, a connection lost) or stop
 * answering (a blackhole, an NFS server gone).  The core's BaseHealth says
 * what the node's reads tell about the base (up, retrying, down); this
 * file reports its changes (a QMP event and a log line) and runs the
 * health timer, which
 *
 *   - marks the base retrying when a base read has been pending
 *     IC_BASE_SLOW_MS (a base that does not answer fails nothing),
 *   - wakes the readers waiting for base reads (IcBaseOp: fetches and
 *     block status queries), so that each one can stop at its own deadline
 *     even if the base read never ends,
 *   - probes a base that is down, once no other read of it is pending.
 *
 * The timer runs only while it is needed: while base reads are pending or
 * the base is not up.  It runs in the node's AioContext on
 * QEMU_CLOCK_REALTIME, and not while the node is drained.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "qapi/qapi-events-intellicache.h"
#include "block/block-io.h"
#include "intellicache-int.h"

/* Bytes a probe reads from the start of the base. */
#define IC_PROBE_BYTES 4096

IntellicacheBaseState ic_qapi_base_state(IcBaseState state)
{
    switch (state) {
    case IC_BASE_UP:
        return INTELLICACHE_BASE_STATE_UP;
    case IC_BASE_RETRYING:
        return INTELLICACHE_BASE_STATE_RETRYING;
    case IC_BASE_DOWN:
        return INTELLICACHE_BASE_STATE_DOWN;
    }
    g_assert_not_reached();
}

/*
 * Note @ev in the base's health; if the state changes, say why (@fmt)
 * in a QMP event and on stderr.  Called with @lock, so that the events of
 * one node are emitted in the order of its changes.
 */
void ic_health_note_locked(BlockDriverState *bs, IcBaseEvent ev,
                           const char *fmt, ...)
{
    BDRVIntellicacheState *s = bs->opaque;
    g_autofree char *reason = NULL;
    IcBaseState old, new;
    va_list ap;

    if (!ic_health_note(s->health, ev, &old)) {
        return;
    }
    new = ic_health_state(s->health);
    va_start(ap, fmt);
    reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_intellicache_base_state(bs, ic_base_state_name(old),
                                  ic_base_state_name(new), reason);

    qapi_event_send_intellicache_base_state_change(bdrv_get_node_name(bs),
                                                   ic_qapi_base_state(old),
                                                   ic_qapi_base_state(new),
                                                   reason);
    if (new == IC_BASE_UP) {
        info_report("intellicache: node '%s': base is up again: %s",
                    bdrv_get_node_name(bs), reason);
    } else {
        warn_report("intellicache: node '%s': base is %s: %s",
                    bdrv_get_node_name(bs), ic_base_state_name(new), reason);
    }
    /* A base that is not up needs the timer even with nothing pending. */
    ic_health_arm_locked(bs);
}

/*
 * A base read that readers will wait for: pending from now, watched by the
 * health timer.  Its coroutine sets @start_ms when it reads the base.
 * Called with @lock.
 */
void ic_base_op_init_locked(BlockDriverState *bs, IcBaseOp *op)
{
    BDRVIntellicacheState *s = bs->opaque;

    op->ret = -EINPROGRESS;
    qemu_co_queue_init(&op->waiters);
    op->waiting = 0;
    op->abandoned = false;
    op->start_ms = 0;
    QLIST_INSERT_HEAD(&s->base_ops, op, next);
    ic_health_arm_locked(bs);
}

/* @op ended with @ret: wake its waiters.  Called with @lock. */
void ic_base_op_end_locked(IcBaseOp *op, int ret)
{
    QLIST_REMOVE(op, next);
    op->ret = ret;
    qemu_co_queue_restart_all(&op->waiters);
}

/*
 * Wait until @op ends, or until @deadline_ns (QEMU_CLOCK_REALTIME; 0: no
 * deadline).  Returns the op's result, or -EIO with @timed_out set at the
 * deadline: the health timer wakes waiters so that they look at the clock.
 */
int coroutine_fn ic_co_base_op_wait(BDRVIntellicacheState *s, IcBaseOp *op,
                                    int64_t deadline_ns, bool *timed_out)
{
    QEMU_LOCK_GUARD(&s->lock);
    while (op->ret == -EINPROGRESS) {
        if (deadline_ns &&
            qemu_clock_get_ns(QEMU_CLOCK_REALTIME) >= deadline_ns) {
            op->abandoned = true;
            *timed_out = true;
            return -EIO;
        }
        op->waiting++;
        qemu_co_queue_wait(&op->waiters, &s->lock);
        op->waiting--;
    }
    return op->ret;
}

/* Read the start of a down base: if it answers, it is back. */
static void coroutine_fn ic_probe_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;
    uint64_t bytes;
    void *buf;
    int ret = -ENOMEM;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        bytes = MIN(IC_PROBE_BYTES, ic_core_geometry(s->core)->base_size);
    }
    bdrv_graph_co_rdlock();
    buf = qemu_try_blockalign(bs->file->bs, bytes);
    if (buf) {
        ret = bdrv_co_pread(bs->file, 0, bytes, buf, 0);
    }
    bdrv_graph_co_rdunlock();
    qemu_vfree(buf);
    trace_intellicache_probe(bs, ret);

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->probe_running = false;
        if (ret == 0) {
            ic_health_note_locked(bs, IC_BASE_READ_OK,
                                  "a probe read of the base succeeded");
        } else if (ic_base_error_transient(-ret)) {
            ic_health_note_locked(bs, IC_BASE_READ_FAILED,
                                  "a probe read of the base failed: %s",
                                  strerror(-ret));
        }
        ic_health_arm_locked(bs);
    }
    bdrv_dec_in_flight(bs);
}

/*
 * The work of the health timer, in a coroutine: waking waiters from a
 * coroutine queues them to run after it, whereas from the timer callback
 * they would run at once, in this thread, and block on the lock that the
 * callback holds.  It never yields.
 */
static void coroutine_fn ic_health_tick_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVIntellicacheState *s = bs->opaque;
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    Coroutine *probe = NULL;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        int64_t oldest = 0;
        bool pending = false;
        IcHealthTick tick;
        IcBaseOp *op;

        s->health_armed = false;
        if (qatomic_read(&bs->quiesce_counter)) {
            break; /* drained: drain end arms the timer again */
        }
        QLIST_FOREACH(op, &s->base_ops, next) {
            if (op->start_ms && (!pending || op->start_ms < oldest)) {
                pending = true;
                oldest = op->start_ms;
            }
            /* Each waiter checks its own deadline and waits on. */
            if (op->waiting) {
                qemu_co_queue_restart_all(&op->waiters);
            }
        }
        tick = ic_health_tick(s->health, now, pending, oldest,
                              s->probe_running);
        if (tick.slow) {
            ic_health_note_locked(bs, IC_BASE_READ_SLOW,
                                  "a read of the base has not answered "
                                  "for %u ms", IC_BASE_SLOW_MS);
        }
        if (tick.probe) {
            s->probe_running = true;
            ic_health_probe_started(s->health, now);
            ic_health_count(s->health, IC_HEALTH_PROBES);
            bdrv_inc_in_flight(bs);
            probe = qemu_coroutine_create(ic_probe_entry, bs);
        }
        ic_health_arm_locked(bs);
    }
    if (probe) {
        aio_co_enter(bdrv_get_aio_context(bs), probe);
    }
}

static void ic_health_timer_cb(void *opaque)
{
    BlockDriverState *bs = opaque;

    aio_co_enter(bdrv_get_aio_context(bs),
                 qemu_coroutine_create(ic_health_tick_entry, bs));
}

/* Arm the health timer if it is needed and not armed.  With @lock. */
void ic_health_arm_locked(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;
    bool busy = !QLIST_EMPTY(&s->base_ops) || s->probe_running;

    /* A node without a base has nothing to probe and no base reads. */
    if (s->has_base && s->health_timer && !s->health_armed &&
        ic_health_timer_needed(s->health, busy)) {
        s->health_armed = true;
        timer_mod(s->health_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + IC_HEALTH_TICK_MS);
    }
}

/* Stop the timer (drain): ic_health_arm_locked() starts it again. */
void ic_health_disarm(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->health_timer) {
        timer_del(s->health_timer);
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->health_armed = false;
    }
}

void ic_health_timer_new(BlockDriverState *bs, AioContext *ctx)
{
    BDRVIntellicacheState *s = bs->opaque;

    s->health_timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                    ic_health_timer_cb, bs);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->health_armed = false;
        ic_health_arm_locked(bs);
    }
}

void ic_health_timer_free(BlockDriverState *bs)
{
    BDRVIntellicacheState *s = bs->opaque;

    if (s->health_timer) {
        timer_free(s->health_timer);
        s->health_timer = NULL;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->health_armed = false;
    }
}
