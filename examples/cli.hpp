// The command line every example shares: `--port N [--workers N]`, and, in a program that includes
// <starling/tls.hpp> first (echo and chat do), `--tls-cert FILE --tls-key FILE` to serve wss:// (and
// https) on that port instead, reloading both files on SIGHUP. Once the server listens, the example
// prints `listening on N` (the real port, also when N was 0) and flushes stdout, which is what tests
// and benchmarks wait for.
#pragma once

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <starling.hpp>

namespace example {

inline starling::server_options parse_command_line(int argc, char** argv) {
    starling::server_options options;
    options.host = "127.0.0.1";
    auto usage = [&] {
#ifdef STARLING_TLS
        std::fprintf(stderr, "usage: %s --port N [--workers N] [--tls-cert FILE --tls-key FILE]\n", argv[0]);
#else
        std::fprintf(stderr, "usage: %s --port N [--workers N]\n", argv[0]);
#endif
        std::exit(2);
    };
    auto number = [&](int& i) -> unsigned {
        if (i + 1 >= argc) usage();
        const std::string_view text = argv[++i];
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size()) usage();
        return value;
    };
    [[maybe_unused]] auto text = [&](int& i) -> std::string {
        if (i + 1 >= argc) usage();
        return argv[++i];
    };
#ifdef STARLING_TLS
    starling::tls_options tls;
#endif
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--port") {
            const unsigned port = number(i);
            if (port > 65535) usage();
            options.port = static_cast<std::uint16_t>(port);
        } else if (arg == "--workers") {
            options.workers = number(i);
#ifdef STARLING_TLS
        } else if (arg == "--tls-cert") {
            tls.certificate_chain_file = text(i);
        } else if (arg == "--tls-key") {
            tls.private_key_file = text(i);
#endif
        } else {
            usage();
        }
    }
#ifdef STARLING_TLS
    if (tls.certificate_chain_file.empty() != tls.private_key_file.empty()) usage();
    if (!tls.certificate_chain_file.empty()) options.transport = starling::tls(tls);
#endif
    return options;
}

/// app.listen(options), or a message on stderr and exit status 1 when it cannot (the port is taken, a
/// certificate or key file is missing or unusable: the message names it).
inline std::uint16_t listen(starling::app& app, const starling::server_options& options) {
    try {
        return app.listen(options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", "cannot listen", e.what());
        std::exit(1);
    }
}

/// Listens, announces the port, and serves until SIGINT / SIGTERM. With TLS, SIGHUP reloads the
/// certificate and key: new connections get them, open ones keep theirs, and a reload that fails
/// keeps the old ones (the app logs why).
inline int serve(starling::app& app, const starling::server_options& options) {
#ifdef SIGHUP
    if (options.transport) {
        app.on_signal(SIGHUP, [&app] {
            try {
                app.reload_tls();
                std::fprintf(stderr, "reloaded the TLS certificate and key\n");
            } catch (const std::exception&) {
                // app.reload_tls() logged why; the previous certificate stays in use.
            }
        });
    }
#endif
    const std::uint16_t port = listen(app, options);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
/// The same with the options of the command line.
inline int serve(starling::app& app, int argc, char** argv) { return serve(app, parse_command_line(argc, argv)); }

}  // namespace example
