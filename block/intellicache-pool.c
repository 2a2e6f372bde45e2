/*
 * intellicache: the intellicache-pool object, a host-wide budget that
 * several intellicache nodes share (their option "pool").
 *
 *   --object intellicache-pool,id=pool0,size=200G
 *   --blockdev driver=intellicache,...,pool=pool0
 *
 * Together the caches of its members hold at most @size bytes of data.
 * The object lives in every binary that loads block modules (as
 * throttle-group does), since --object needs its type before any module
 * is loaded; the budget itself, and the decisions, are the module's core
 * (ic_pool_*() in intellicache-core.h), made when the first member joins
 * and freed with the object.
 *
 * Copyright (c) 2026 The intellicache authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/cutils.h"
#include "qom/object_interfaces.h"
#include "intellicache-module.h"
#include "trace/trace-block_intellicache.h"

struct IntellicachePool {
    Object parent_obj;

    /* Main loop (BQL). */
    uint64_t size;
    bool complete;
    unsigned members;
    void *budget;                  /* the module's, once a member joined */
    const IntellicachePoolBudgetOps *ops; /* the module's, with @budget */
};

OBJECT_DECLARE_SIMPLE_TYPE(IntellicachePool, INTELLICACHE_POOL)

static void ic_pool_get_size(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    IntellicachePool *pool = INTELLICACHE_POOL(obj);

    visit_type_size(v, name, &pool->size, errp);
}

/* Read-only: bytes the members hold now (0 before the first joins). */
static void ic_pool_get_used(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    IntellicachePool *pool = INTELLICACHE_POOL(obj);
    uint64_t used = pool->budget ? pool->ops->budget_used(pool->budget) : 0;

    visit_type_size(v, name, &used, errp);
}

static void ic_pool_get_members(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    uint32_t members = INTELLICACHE_POOL(obj)->members;

    visit_type_uint32(v, name, &members, errp);
}

static void ic_pool_set_size(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    IntellicachePool *pool = INTELLICACHE_POOL(obj);
    uint64_t size;

    if (pool->complete) {
        error_setg(errp, "intellicache-pool '%s': size cannot change once "
                   "the pool is made",
                   object_get_canonical_path_component(obj));
        return;
    }
    if (!visit_type_size(v, name, &size, errp)) {
        return;
    }
    pool->size = size;
}

static void ic_pool_complete(UserCreatable *uc, Error **errp)
{
    IntellicachePool *pool = INTELLICACHE_POOL(uc);

    if (!pool->size) {
        error_setg(errp, "intellicache-pool: size must be given, and more "
                   "than 0");
        return;
    }
    pool->complete = true;
}

/* Not while nodes use it: they hold a reference each. */
static bool ic_pool_can_be_deleted(UserCreatable *uc)
{
    return INTELLICACHE_POOL(uc)->members == 0;
}

static void ic_pool_finalize(Object *obj)
{
    IntellicachePool *pool = INTELLICACHE_POOL(obj);

    assert(!pool->members);
    if (pool->budget) {
        pool->ops->budget_free(pool->budget);
    }
}

static void ic_pool_class_init(ObjectClass *klass, void *class_data)
{
    UserCreatableClass *ucc = USER_CREATABLE_CLASS(klass);

    ucc->complete = ic_pool_complete;
    ucc->can_be_deleted = ic_pool_can_be_deleted;
    object_class_property_add(klass, "size", "size", ic_pool_get_size,
                              ic_pool_set_size, NULL, NULL);
    object_class_property_set_description(klass, "size",
        "most bytes of cached data the member nodes hold together");
    object_class_property_add(klass, "used", "size", ic_pool_get_used,
                              NULL, NULL, NULL);
    object_class_property_set_description(klass, "used",
        "bytes of cached data the member nodes hold now (read-only)");
    object_class_property_add(klass, "members", "uint32",
                              ic_pool_get_members, NULL, NULL, NULL);
    object_class_property_set_description(klass, "members",
        "how many intellicache nodes are in the pool (read-only)");
}

static const TypeInfo ic_pool_info = {
    .name = TYPE_INTELLICACHE_POOL,
    .parent = TYPE_OBJECT,
    .class_init = ic_pool_class_init,
    .instance_size = sizeof(IntellicachePool),
    .instance_finalize = ic_pool_finalize,
    .interfaces = (InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void ic_pool_register_types(void)
{
    type_register_static(&ic_pool_info);
}

type_init(ic_pool_register_types);

IntellicachePool *intellicache_pool_find(const char *id, Error **errp)
{
    Object *obj = object_resolve_path_component(object_get_objects_root(),
                                                id);
    IntellicachePool *pool;

    GLOBAL_STATE_CODE();
    if (!obj) {
        error_setg(errp, "pool: there is no object '%s'; create it first "
                   "with --object intellicache-pool,id=%s,size=SIZE "
                   "(or object-add)", id, id);
        return NULL;
    }
    pool = (IntellicachePool *)object_dynamic_cast(obj,
                                                   TYPE_INTELLICACHE_POOL);
    if (!pool) {
        error_setg(errp, "pool: object '%s' is a %s, not an "
                   "intellicache-pool", id, object_get_typename(obj));
        return NULL;
    }
    return pool;
}

void *intellicache_pool_join(IntellicachePool *pool,
                             const IntellicachePoolBudgetOps *ops,
                             Error **errp)
{
    GLOBAL_STATE_CODE();
    if (!pool->budget) {
        pool->budget = ops->budget_new(pool->size);
        pool->ops = ops;
        if (!pool->budget) {
            error_setg(errp, "pool '%s': cannot allocate its state",
                       object_get_canonical_path_component(OBJECT(pool)));
            return NULL;
        }
    }
    pool->members++;
    object_ref(OBJECT(pool));
    trace_intellicache_pool_join(
        object_get_canonical_path_component(OBJECT(pool)), pool->size,
        pool->members);
    return pool->budget;
}

void intellicache_pool_leave(IntellicachePool *pool)
{
    GLOBAL_STATE_CODE();
    assert(pool->members > 0);
    pool->members--;
    trace_intellicache_pool_leave(
        object_get_canonical_path_component(OBJECT(pool)), pool->members);
    object_unref(OBJECT(pool));
}

uint64_t intellicache_pool_size(IntellicachePool *pool)
{
    return pool->size;
}
