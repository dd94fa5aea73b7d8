// The TLS single header as a downstream project uses it: single_include/starling_tls.hpp (which brings
// starling.hpp with it; including both is fine), linked with -lssl -lcrypto. README: "Using Starling".
//   a.out --port N --tls-cert FILE --tls-key FILE   prints "listening on N", serves wss:// /echo until
//                                                   SIGINT or SIGTERM
#include <starling.hpp>
#include <starling_tls.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

int main(int argc, char** argv) {
    starling::server_options options;
    options.host = "127.0.0.1";
    options.workers = 2;
    starling::tls_options tls;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view flag = argv[i];
        if (flag == "--port") options.port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
        if (flag == "--tls-cert") tls.certificate_chain_file = argv[i + 1];
        if (flag == "--tls-key") tls.private_key_file = argv[i + 1];
    }
    options.transport = starling::tls(tls);

    starling::app app;
    app.websocket("/echo", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            starling::message m = co_await ws.receive();
            if (m.is_text())
                co_await ws.send_text(std::move(m.data));
            else
                co_await ws.send_bytes(std::move(m.data));
        }
    });
    const std::uint16_t port = app.listen(options);
    std::printf("listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    app.run();
    return 0;
}
