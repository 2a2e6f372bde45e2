/*
 * intellicache-ctl: owning handles and typed lookups over json-c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "json.hpp"

#include <charconv>
#include <cmath>

namespace icctl {

JsonPtr json_parse(const std::string &text, std::string &error) {
    json_tokener *tok = json_tokener_new();
    if (tok == nullptr) {
        error = "out of memory";
        return nullptr;
    }
    JsonPtr value(json_tokener_parse_ex(tok, text.c_str(),
                                        static_cast<int>(text.size())));
    const json_tokener_error err = json_tokener_get_error(tok);
    if (err != json_tokener_success) {
        error = json_tokener_error_desc(err);
        value.reset();
    } else if (json_tokener_get_parse_end(tok) < text.size()) {
        error = "trailing data after the JSON value";
        value.reset();
    }
    json_tokener_free(tok);
    return value;
}

json_object *json_member(json_object *o, const char *key) {
    json_object *member = nullptr;
    if (o == nullptr || !json_is(o, json_type_object) ||
        json_object_object_get_ex(o, key, &member) == 0) {
        return nullptr;
    }
    return member;
}

std::optional<std::uint64_t> json_u64(json_object *o, const char *key) {
    json_object *member = json_member(o, key);
    if (member == nullptr || !json_is(member, json_type_int)) {
        return std::nullopt;
    }
    /* json-c keeps integers above INT64_MAX as unsigned. */
    if (json_object_get_int64(member) < 0 &&
        json_object_get_uint64(member) == 0) {
        return std::nullopt;
    }
    return json_object_get_uint64(member);
}

std::optional<std::string> json_string(json_object *o, const char *key) {
    json_object *member = json_member(o, key);
    if (member == nullptr || !json_is(member, json_type_string)) {
        return std::nullopt;
    }
    return std::string(
        json_object_get_string(member),
        static_cast<std::size_t>(json_object_get_string_len(member)));
}

json_object *json_double(double v) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf) - 1, v);
    if (ec != std::errc() || !std::isfinite(v)) {
        return json_object_new_double(v);
    }
    *end = '\0';
    return json_object_new_double_s(v, buf);
}

std::string json_dump(json_object *o, bool pretty) {
    const int flags =
        pretty ? (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                  JSON_C_TO_STRING_NOSLASHESCAPE)
               : (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    return json_object_to_json_string_ext(o, flags);
}

} // namespace icctl
