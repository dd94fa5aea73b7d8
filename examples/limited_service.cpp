// A connection limit: /limited_service admits at most 5 open connections per client IP; the
// 6th gets "Connection limit exceeded" and is closed (1008). Admitted clients get "Processed: msg".
//   build/examples/limited_service --port 8080 [--workers N]
#include <map>     // per-IP counts
#include <mutex>   // the counts are shared by all worker threads
#include <string>
#include <utility>  // std::move

#include "cli.hpp"

namespace {

constexpr int max_connections_per_ip = 5;

// Python's module-level dict is safe because one event loop runs every handler; here handlers run on
// several worker threads, so the check and the increment happen under one lock.
std::mutex counts_mutex;
std::map<std::string, int> connection_counts;

/// Takes one of `ip`'s slots; false if it has none left.
bool try_acquire(const std::string& ip) {
    std::lock_guard lock(counts_mutex);
    int& count = connection_counts[ip];
    if (count >= max_connections_per_ip) return false;
    ++count;
    return true;
}

/// Python's `finally:` — gives the slot back however the handler ends (return, disconnect, error).
class slot_guard {
public:
    explicit slot_guard(std::string ip) : ip_(std::move(ip)) {}
    slot_guard(const slot_guard&) = delete;
    slot_guard& operator=(const slot_guard&) = delete;
    ~slot_guard() {
        std::lock_guard lock(counts_mutex);
        if (--connection_counts[ip_] == 0) connection_counts.erase(ip_);  // forget idle IPs
    }

private:
    std::string ip_;
};

}  // namespace

int main(int argc, char** argv) {
    starling::app app;

    app.websocket("/limited_service", [](starling::websocket& ws) -> starling::task<> {
        std::string client_ip = ws.client().ip;
        if (client_ip.empty()) client_ip = "unknown";

        // Check connection limit
        if (!try_acquire(client_ip)) {
            co_await ws.send_text("Connection limit exceeded");
            // Robyn's close() sends 1000; 1008 (policy violation) says the refusal was deliberate.
            co_await ws.close(starling::close_code::policy_violation, "too many connections");
            co_return;
        }
        const slot_guard slot(client_ip);

        for (;;) {
            const std::string message = co_await ws.receive_text();
            co_await ws.send_text("Processed: " + message);
        }
    });

    return example::serve(app, argc, argv);
}
