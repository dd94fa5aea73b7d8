// permessage-deflate negotiation (RFC 7692 section 7.1): which offer is accepted, what the response
// names, and which offers are declined so the connection goes on uncompressed.
#include <starling/protocol/permessage_deflate.hpp>

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace starling;

namespace {

/// The response line for these field values under `options`, or "declined".
std::string answer(std::vector<std::string_view> fields, compression_options options = {}) {
    const auto agreed = negotiate_deflate(fields, options);
    return agreed ? deflate_response_field(*agreed) : std::string("declined");
}

std::string line(std::string_view params) { return "Sec-WebSocket-Extensions: permessage-deflate" + std::string(params) + "\r\n"; }

constexpr std::string_view both = "; server_no_context_takeover; client_no_context_takeover";

}  // namespace

TEST_CASE("a plain offer is accepted without context takeover either way (the default)") {
    CHECK(answer({"permessage-deflate"}) == line(both));
    // What browsers send, and Python's websockets client.
    CHECK(answer({"permessage-deflate; client_max_window_bits"}) == line(both));
    const auto a = negotiate_deflate({"permessage-deflate; client_max_window_bits"}, {});
    REQUIRE(a);
    CHECK(a->server_max_window_bits == 15);
    CHECK(a->client_max_window_bits == 15);
}

TEST_CASE("no offer, other extensions only, or compression off: nothing is agreed") {
    CHECK(answer({}) == "declined");
    CHECK(answer({"x-webkit-deflate-frame", "foo; bar=1"}) == "declined");
    compression_options off;
    off.enabled = false;
    CHECK(answer({"permessage-deflate"}, off) == "declined");
}

TEST_CASE("with context takeover allowed, the response names only what the client asked for") {
    compression_options keep;
    keep.server_context_takeover = true;
    keep.client_context_takeover = true;
    CHECK(answer({"permessage-deflate"}, keep) == line(""));
    CHECK(answer({"permessage-deflate; server_no_context_takeover"}, keep) == line("; server_no_context_takeover"));
    CHECK(answer({"permessage-deflate; client_no_context_takeover"}, keep) == line("; client_no_context_takeover"));
    const auto a = negotiate_deflate({"permessage-deflate"}, keep);
    REQUIRE(a);
    CHECK_FALSE(a->server_no_context_takeover);
    CHECK_FALSE(a->client_no_context_takeover);
}

TEST_CASE("server_max_window_bits: the response keeps to the offer's value or less") {
    CHECK(answer({"permessage-deflate; server_max_window_bits=10"}) == line(std::string(both) + "; server_max_window_bits=10"));
    CHECK(answer({"permessage-deflate; server_max_window_bits=15"}) == line(std::string(both) + "; server_max_window_bits=15"));
    compression_options small;
    small.server_max_window_bits = 11;
    CHECK(answer({"permessage-deflate; server_max_window_bits=13"}, small) == line(std::string(both) + "; server_max_window_bits=11"));
    CHECK(answer({"permessage-deflate; server_max_window_bits=9"}, small) == line(std::string(both) + "; server_max_window_bits=9"));
    // Not offered: a server may still name a smaller window of its own.
    CHECK(answer({"permessage-deflate"}, small) == line(std::string(both) + "; server_max_window_bits=11"));
    // A quoted value is the same value.
    CHECK(answer({"permessage-deflate; server_max_window_bits=\"12\""}) == line(std::string(both) + "; server_max_window_bits=12"));
}

TEST_CASE("server_max_window_bits=8 cannot be honoured with zlib: that offer is declined, the next taken") {
    CHECK(answer({"permessage-deflate; server_max_window_bits=8"}) == "declined");
    CHECK(answer({"permessage-deflate; server_max_window_bits=8, permessage-deflate"}) == line(both));
}

TEST_CASE("client_max_window_bits: named only when the client offered it") {
    compression_options small;
    small.client_max_window_bits = 10;
    CHECK(answer({"permessage-deflate"}, small) == line(both));  // may not limit a client that did not offer it
    CHECK(answer({"permessage-deflate; client_max_window_bits"}, small) == line(std::string(both) + "; client_max_window_bits=10"));
    CHECK(answer({"permessage-deflate; client_max_window_bits=9"}, small) == line(std::string(both) + "; client_max_window_bits=9"));
    CHECK(answer({"permessage-deflate; client_max_window_bits=12"}) == line(std::string(both) + "; client_max_window_bits=12"));
    const auto a = negotiate_deflate({"permessage-deflate; client_max_window_bits=8"}, {});
    REQUIRE(a);
    CHECK(a->client_max_window_bits == 8);  // inflating an 8-bit window is fine
}

TEST_CASE("offers with bad parameters are declined, and the next offer is judged") {
    for (const std::string_view bad : {
             "permessage-deflate; server_max_window_bits",        // a value is required in an offer
             "permessage-deflate; server_max_window_bits=16",     // out of range
             "permessage-deflate; server_max_window_bits=7",
             "permessage-deflate; server_max_window_bits=010",    // leading zero
             "permessage-deflate; client_max_window_bits=1x",
             "permessage-deflate; client_max_window_bits=\"\"",
             "permessage-deflate; server_no_context_takeover=1",  // takes no value
             "permessage-deflate; client_no_context_takeover=yes",
             "permessage-deflate; server_no_context_takeover; server_no_context_takeover",  // twice
             "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
             "permessage-deflate; mystery",                       // unknown parameter
             "permessage-deflate=1",
             "permessage-deflate; server_max_window_bits=10 11",
         }) {
        CAPTURE(bad);
        CHECK(answer({bad}) == "declined");
        CHECK(answer({std::string(bad) + ", permessage-deflate; client_max_window_bits"}) == line(both));
    }
}

TEST_CASE("an unterminated quoted value takes the rest of its field with it, not the next field") {
    CHECK(answer({"permessage-deflate; server_max_window_bits=\"10, permessage-deflate"}) == "declined");
    CHECK(answer({"permessage-deflate; server_max_window_bits=\"10", "permessage-deflate"}) == line(both));
}

TEST_CASE("several offers in one field, and several fields, read as one list in order") {
    CHECK(answer({"foo, permessage-deflate; server_max_window_bits=12, permessage-deflate"}) ==
          line(std::string(both) + "; server_max_window_bits=12"));
    CHECK(answer({"foo; a=1", "permessage-deflate; mystery", "permessage-deflate; server_max_window_bits=11"}) ==
          line(std::string(both) + "; server_max_window_bits=11"));
    // Spaces around separators, empty list elements and letter case of the parameter names as sent.
    CHECK(answer({" ,  permessage-deflate ;  client_max_window_bits = 10 , "}) ==
          line(std::string(both) + "; client_max_window_bits=10"));
    CHECK(answer({"Permessage-Deflate"}) == "declined");  // extension tokens are compared as sent
}

TEST_CASE("a quoted value may hold separators only as a value, which then is no token") {
    CHECK(answer({"permessage-deflate; client_max_window_bits=\"1,0\", permessage-deflate"}) == line(both));
    CHECK(answer({"foo; x=\"a;b,c\", permessage-deflate"}) == line(both));
}
