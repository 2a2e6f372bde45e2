/*
 * intellicache-ctl: a node_exporter textfile, or HTTP.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "metrics_export.hpp"

#include <httplib.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

namespace icctl {

namespace {

constexpr const char *kContentType = "text/plain; version=0.0.4; charset=utf-8";

} // namespace

std::string TextfileWriter::write(const std::string &dir,
                                  const std::string &text) {
    std::string target = dir + "/" + kFileName;
    /* node_exporter reads only *.prom: the temporary file is ignored. */
    const std::string tmp =
        dir + "/." + kFileName + ".tmp." + std::to_string(getpid());
    const int fd =
        open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw ExportError("cannot write into textfile directory " + dir + ": " +
                          std::strerror(errno));
    }
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int err = errno;
            close(fd);
            unlink(tmp.c_str());
            throw ExportError("cannot write " + tmp + ": " +
                              std::strerror(err));
        }
        done += static_cast<std::size_t>(n);
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        const int err = errno;
        unlink(tmp.c_str());
        throw ExportError("cannot write " + tmp + ": " + std::strerror(err));
    }
    if (rename(tmp.c_str(), target.c_str()) < 0) {
        const int err = errno;
        unlink(tmp.c_str());
        throw ExportError("cannot rename " + tmp + " to " + target + ": " +
                          std::strerror(err));
    }
    return target;
}

void MetricsServer::serve(const ListenAddress &where) {
    /* Signals go to one thread that stops the server: block them before
     * httplib starts its workers, which inherit the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    httplib::Server server;
    std::mutex scrape; /* one QMP session at a time */
    server.Get("/metrics", [&](const httplib::Request &,
                               httplib::Response &res) {
        const std::lock_guard<std::mutex> lock(scrape);
        try {
            res.set_content(render_(), kContentType);
        } catch (const std::exception &e) {
            res.status = 503;
            res.set_content(std::string("intellicache-ctl: ") + e.what() + "\n",
                            "text/plain; charset=utf-8");
        }
    });
    server.Get("/", [](const httplib::Request &, httplib::Response &res) {
        res.set_content("intellicache-ctl: metrics at /metrics\n",
                        "text/plain; charset=utf-8");
    });

    int port = where.port;
    if (port == 0) {
        port = server.bind_to_any_port(where.host);
        if (port < 0) {
            throw ExportError("cannot listen on " + where.host + ":0");
        }
    } else if (!server.bind_to_port(where.host, port)) {
        throw ExportError("cannot listen on " + where.host + ":" +
                          std::to_string(port) +
                          " (address in use or not local?)");
    }
    const bool v6 = where.host.find(':') != std::string::npos;
    std::cout << "listening on http://" << (v6 ? "[" : "") << where.host
              << (v6 ? "]" : "") << ":" << port << "/metrics" << std::endl;

    std::thread waiter([&server, &stop_signals]() {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        server.stop();
    });
    server.listen_after_bind();
    /* Wake the waiter in case the server stopped by itself; after a stop
     * by signal this one stays pending, blocked, until the exit. */
    kill(getpid(), SIGUSR1);
    waiter.join();
}

} // namespace icctl
