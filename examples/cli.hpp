// The command line every example shares: `--port N [--workers N]`. Once the server listens, the
// example prints `listening on N` (the real port, also when N was 0) and flushes stdout, which is what
// tests and benchmarks wait for.
#pragma once

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <starling.hpp>

namespace example {

inline starling::server_options parse_command_line(int argc, char** argv) {
    starling::server_options options;
    options.host = "127.0.0.1";
    auto usage = [&] {
        std::fprintf(stderr, "usage: %s --port N [--workers N]\n", argv[0]);
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
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--port") {
            const unsigned port = number(i);
            if (port > 65535) usage();
            options.port = static_cast<std::uint16_t>(port);
        } else if (arg == "--workers") {
            options.workers = number(i);
        } else {
            usage();
        }
    }
    return options;
}

/// Listens, announces the port, and serves until SIGINT / SIGTERM.
inline int serve(starling::app& app, int argc, char** argv) {
    const std::uint16_t port = app.listen(parse_command_line(argc, argv));
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}

}  // namespace example
