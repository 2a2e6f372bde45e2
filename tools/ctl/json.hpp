/*
 * intellicache-ctl: owning handles and typed lookups over json-c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_JSON_HPP
#define ICCTL_JSON_HPP

#include <json-c/json.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace icctl {

struct JsonDeleter {
    void operator()(json_object *o) const { json_object_put(o); }
};

/* One reference to a json-c value, dropped when the handle goes. */
using JsonPtr = std::unique_ptr<json_object, JsonDeleter>;

/* Parses @text; nullptr (and @error set) if it is not one JSON value. */
JsonPtr json_parse(const std::string &text, std::string &error);

/* A new reference to @o (json-c counts references). */
inline JsonPtr json_ref(json_object *o) {
    return JsonPtr(json_object_get(o));
}

/* @o is a value of type @t (false for nullptr). */
inline bool json_is(json_object *o, json_type t) {
    return o != nullptr && json_object_is_type(o, t) != 0;
}

/* Member @key of the object @o, or nullptr (also when @o is no object). */
json_object *json_member(json_object *o, const char *key);

/* Member @key as an unsigned integer, if it is a non-negative integer. */
std::optional<std::uint64_t> json_u64(json_object *o, const char *key);

/* Member @key as a string, if it is one. */
std::optional<std::string> json_string(json_object *o, const char *key);

/* A JSON number printed as the shortest text that reads back as @v
 * (json-c prints 17 digits: 0.1 as 0.10000000000000001). */
json_object *json_double(double v);

/* @o printed on one line, or pretty with two-space indentation. */
std::string json_dump(json_object *o, bool pretty);

} // namespace icctl

#endif
