// Fuzzes the frame parser and message reader: the input (after two control bytes) is a byte stream
// from a peer. It is read three times: whole; in chunks whose size comes from the control bytes; and
// in such chunks with every data frame's pending payload going through the direct input
// (direct_buffer / commit_direct), as the server reads large frames. All readings must produce the
// same events, never consume more than given, and never crash.
#include <starling/protocol/message_reader.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

struct event {
    starling::read_status status;
    std::string payload;
    std::uint16_t close_code;
    int error;
    bool operator==(const event&) const = default;
};

std::vector<event> read_all(std::string wire, std::size_t chunk, starling::reader_options options) {
    starling::message_reader reader(options);
    std::vector<event> events;
    std::string pending;
    for (std::size_t pos = 0; pos < wire.size(); pos += chunk) {
        pending.append(wire, pos, chunk);
        for (;;) {
            const auto r = reader.read(pending);
            if (r.consumed > pending.size()) __builtin_trap();
            if (r.status != starling::read_status::need_more)
                events.push_back({r.status, std::string(reader.payload()), reader.close_frame().code,
                                  reader.error().value()});
            pending.erase(0, r.consumed);
            if (r.status == starling::read_status::failed) return events;
            if (r.status == starling::read_status::need_more) {
                if (!pending.empty()) __builtin_trap();
                break;
            }
        }
    }
    return events;
}

std::vector<event> read_direct(const std::string& wire, std::size_t chunk, starling::reader_options options) {
    starling::message_reader reader(options);
    std::vector<event> events;
    std::string pending;
    std::size_t pos = 0;
    auto record = [&](const starling::read_result& r) {
        events.push_back({r.status, std::string(reader.payload()), reader.close_frame().code, reader.error().value()});
    };
    while (pos < wire.size()) {
        if (pending.empty() && reader.data_payload_remaining() > 0) {
            const auto into = reader.direct_buffer(chunk);
            const std::size_t n = std::min(into.size(), wire.size() - pos);
            if (into.size() == 0 || into.size() > chunk) __builtin_trap();
            wire.copy(into.data(), n, pos);
            pos += n;
            const auto r = reader.commit_direct(n);
            if (r.status != starling::read_status::need_more) record(r);
            if (r.status == starling::read_status::failed) return events;
            continue;
        }
        pending.append(wire, pos, chunk);
        pos += std::min(chunk, wire.size() - pos);
        for (;;) {
            const auto r = reader.read(pending);
            if (r.consumed > pending.size()) __builtin_trap();
            if (r.status != starling::read_status::need_more) record(r);
            pending.erase(0, r.consumed);
            if (r.status == starling::read_status::failed) return events;
            if (r.status == starling::read_status::need_more) break;
        }
    }
    return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t chunk = 1 + data[0] % 64;
    starling::reader_options options;
    options.local_role = (data[1] & 1) ? starling::role::server : starling::role::client;
    options.max_message_size = (data[1] & 2) ? 4096 : 64;
    const std::string wire(reinterpret_cast<const char*>(data) + 2, size - 2);
    const auto whole = read_all(wire, wire.empty() ? 1 : wire.size(), options);
    if (whole != read_all(wire, chunk, options)) __builtin_trap();
    if (whole != read_direct(wire, chunk, options)) __builtin_trap();
    return 0;
}
