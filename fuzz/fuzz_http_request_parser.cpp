// libFuzzer target for the request-head parser and what consumes its output. The parser must reach
// the same end, at the same byte, whether the input arrives whole or in chunks; must never report
// consuming bytes it was not given; and a complete request must survive the handshake checks, the
// response builders and query parsing.
//
// Input layout (as in fuzz/seeds/http_request_parser): byte 0 picks the chunking and the limit, the
// rest is the request. The chunks alternate between 1 + (byte 0 & 0x0F) and 1 + 9 * ((byte 0 >> 4) & 7)
// bytes; with the top bit set the byte limit is 16 * (byte 0 & 0x7F), reaching header_too_large and
// its boundary with short inputs, otherwise the default 8 KiB.
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <string>       // std::string responses
#include <string_view>  // std::string_view input
#include <system_error> // std::error_code

#include "starling/protocol/handshake.hpp"
#include "starling/http/request_parser.hpp"
#include "starling/protocol/query.hpp"

namespace {

void require(bool condition) {
    if (!condition) __builtin_trap();
}

bool same_request(const starling::http::request& a, const starling::http::request& b) {
    if (a.method != b.method || a.target != b.target || a.version != b.version) return false;
    if (a.fields.size() != b.fields.size()) return false;
    auto it = b.fields.begin();
    for (const auto& field : a.fields) {
        if (field != *it) return false;
        ++it;
    }
    return true;
}

/// Exercises everything downstream of a complete parse; results are only checked for consistency.
void use_request(const starling::http::request& req) {
    const std::error_code ec = starling::validate_upgrade_request(req);
    if (!ec) {
        require(starling::is_websocket_upgrade(req));
        const std::string response = starling::make_accept_response(*req.fields.get("Sec-WebSocket-Key"));
        require(response.size() == 129);  // the accept key is always 28 characters
    } else {
        const std::string response = starling::make_error_response(ec);
        require(response.ends_with(ec.message()));
    }
    require(req.target.starts_with('/'));
    require(req.path().size() <= req.target.size());
    const starling::query_params params = starling::query_params::parse(req.query_string());
    require(params.size() <= req.query_string().size());
    for (const auto& [key, value] : params) require(params.get_first(key).has_value());
    require(starling::percent_decode(req.path(), false).size() <= req.path().size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t control = data[0];
    const std::string_view input{reinterpret_cast<const char*>(data + 1), size - 1};
    const std::size_t chunk_sizes[2] = {1u + (control & 0x0Fu), 1u + 9u * ((control >> 4) & 0x07u)};
    const std::size_t limit =
        (control & 0x80) != 0 ? 16u * (control & 0x7Fu) : starling::http::request_parser::default_max_header_bytes;

    starling::http::request_parser whole{limit};
    const starling::http::parse_result w = whole.put(input);
    require(w.consumed <= input.size());
    require(w.status != starling::http::parse_status::need_more || w.consumed == input.size());
    require((w.status == starling::http::parse_status::failed) == static_cast<bool>(whole.error()));

    starling::http::request_parser chunked{limit};
    starling::http::parse_result c{starling::http::parse_status::need_more, 0};
    std::size_t consumed = 0;
    std::size_t offset = 0;
    for (std::size_t n = 0; offset < input.size(); ++n) {
        const std::size_t want = chunk_sizes[n % 2];
        const std::string_view chunk = input.substr(offset, want);
        offset += chunk.size();
        const starling::http::parse_result r = chunked.put(chunk);
        require(r.consumed <= chunk.size());
        if (c.status != starling::http::parse_status::need_more) {
            // Done already: nothing more is consumed and the status holds.
            require(r.consumed == 0 && r.status == c.status);
            continue;
        }
        require(r.status != starling::http::parse_status::need_more || r.consumed == chunk.size());
        consumed += r.consumed;
        c = r;
    }
    require(c.status == w.status);
    require(consumed == w.consumed);
    require(chunked.error() == whole.error());
    if (w.status == starling::http::parse_status::complete) require(same_request(whole.get(), chunked.get()));

    // Finished parsers take nothing more.
    if (w.status != starling::http::parse_status::need_more) {
        const starling::http::parse_result again = whole.put(input);
        require(again.consumed == 0 && again.status == w.status);
    }

    if (w.status == starling::http::parse_status::complete) use_request(whole.get());
    if (w.status == starling::http::parse_status::failed) {
        require(starling::make_error_response(whole.error()).starts_with("HTTP/1.1 4"));
    }
    return 0;
}
