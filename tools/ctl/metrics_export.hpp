/*
 * intellicache-ctl: where metrics go: a node_exporter textfile, or HTTP.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ICCTL_METRICS_EXPORT_HPP
#define ICCTL_METRICS_EXPORT_HPP

#include "args.hpp"

#include <functional>
#include <stdexcept>
#include <string>

namespace icctl {

class ExportError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/* Writes DIR/intellicache.prom atomically: a temporary file in DIR,
 * flushed, then renamed over the old one, so the collector never reads a
 * partial file. */
class TextfileWriter {
public:
    static constexpr const char *kFileName = "intellicache.prom";
    /* Returns the path written; throws ExportError. */
    static std::string write(const std::string &dir, const std::string &text);
};

/*
 * Serves GET /metrics over HTTP (cpp-httplib) until SIGTERM or SIGINT.
 * Each scrape calls @render, which may throw: the scrape then gets a 503
 * with the error's line.  Prints "listening on http://ADDR:PORT/metrics"
 * on standard output once bound.
 */
class MetricsServer {
public:
    explicit MetricsServer(std::function<std::string()> render)
        : render_(std::move(render)) {}
    /* Returns when a signal stopped the server; throws ExportError if
     * the address cannot be bound. */
    void serve(const ListenAddress &where);

private:
    std::function<std::string()> render_;
};

} // namespace icctl

#endif
