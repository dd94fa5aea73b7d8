#include <starling/protocol/framer.hpp>

#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

using namespace starling;

namespace {

std::vector<std::uint8_t> bytes(std::initializer_list<int> list) {
    std::vector<std::uint8_t> out;
    for (int b : list) out.push_back(static_cast<std::uint8_t>(b));
    return out;
}

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

// Feeds `in` to a fresh parser `chunk` bytes at a time until it completes or fails.
struct parse_outcome {
    header_status status;
    std::size_t consumed;
    frame_header header;
    std::error_code error;
};

parse_outcome parse(const std::vector<std::uint8_t>& in, std::size_t chunk,
                    header_limits lim = {role::client, UINT64_MAX}) {
    frame_header_parser p(lim);
    std::size_t consumed = 0;
    header_status st = header_status::need_more;
    while (consumed < in.size()) {
        const std::size_t before = consumed;
        const std::size_t n = std::min(chunk, in.size() - consumed);
        st = p.put(std::span<const std::uint8_t>(in.data() + consumed, n), consumed);
        CHECK(consumed - before <= n);
        if (st != header_status::need_more) break;
    }
    return {st, consumed, p.header(), p.error()};
}

}  // namespace

TEST_CASE("RFC 6455 5.7: single-frame unmasked text 'Hello'") {
    const auto in = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
    for (std::size_t chunk = 1; chunk <= in.size(); ++chunk) {
        const auto r = parse(in, chunk);
        REQUIRE(r.status == header_status::complete);
        CHECK(r.consumed == 2);  // the header only; the payload stays with the caller
        CHECK(r.header.fin);
        CHECK(r.header.op == opcode::text);
        CHECK_FALSE(r.header.masked);
        CHECK(r.header.payload_length == 5);
    }
    CHECK(encode_frame(opcode::text, "Hello") == std::string("\x81\x05Hello"));
}

TEST_CASE("RFC 6455 5.7: single-frame masked text 'Hello'") {
    const auto in = bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
    for (std::size_t chunk = 1; chunk <= in.size(); ++chunk) {
        const auto r = parse(in, chunk, {role::server, UINT64_MAX});
        REQUIRE(r.status == header_status::complete);
        CHECK(r.consumed == 6);
        CHECK(r.header.masked);
        CHECK(r.header.key == masking_key{0x37, 0xfa, 0x21, 0x3d});
        std::string payload(in.begin() + 6, in.end());
        apply_mask(payload, r.header.key);
        CHECK(payload == "Hello");
    }
    const masking_key key{0x37, 0xfa, 0x21, 0x3d};
    CHECK(bytes(encode_frame(opcode::text, "Hello", true, &key)) == in);
}

TEST_CASE("RFC 6455 5.7: fragmented text, ping and masked pong") {
    CHECK(encode_frame(opcode::text, "Hel", false) == std::string("\x01\x03Hel"));
    CHECK(encode_frame(opcode::continuation, "lo") == std::string("\x80\x02lo"));
    CHECK(encode_frame(opcode::ping, "Hello") == std::string("\x89\x05Hello"));
    const masking_key key{0x37, 0xfa, 0x21, 0x3d};
    CHECK(bytes(encode_frame(opcode::pong, "Hello", true, &key)) ==
          bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));

    const auto first = parse(bytes({0x01, 0x03}), 1);
    CHECK_FALSE(first.header.fin);
    CHECK(first.header.op == opcode::text);
    const auto last = parse(bytes({0x80, 0x02}), 1);
    CHECK(last.header.fin);
    CHECK(last.header.op == opcode::continuation);
}

TEST_CASE("RFC 6455 5.7: 256-byte and 64 KiB binary lengths") {
    const auto r16 = parse(bytes({0x82, 0x7E, 0x01, 0x00}), 1);
    REQUIRE(r16.status == header_status::complete);
    CHECK(r16.header.payload_length == 256);
    const auto r64 = parse(bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}), 3);
    REQUIRE(r64.status == header_status::complete);
    CHECK(r64.header.payload_length == 65536);

    CHECK(encode_frame(opcode::binary, std::string(256, 'x')).substr(0, 4) == std::string("\x82\x7E\x01\x00", 4));
    CHECK(encode_frame(opcode::binary, std::string(65536, 'x')).substr(0, 10) ==
          std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST_CASE("length encodings: boundaries serialise in their shortest form and round-trip") {
    for (std::uint64_t len : {0ull, 1ull, 125ull, 126ull, 127ull, 65535ull, 65536ull, (1ull << 32) + 7, (1ull << 63) - 1}) {
        for (bool masked : {false, true}) {
            frame_header h;
            h.op = opcode::binary;
            h.payload_length = len;
            h.masked = masked;
            h.key = {1, 2, 3, 4};
            std::array<std::uint8_t, max_frame_header_size> out{};
            const std::size_t n = write_frame_header(h, out);
            const std::size_t expected = (len < 126 ? 2 : len <= 65535 ? 4 : 10) + (masked ? 4 : 0);
            CHECK(n == expected);
            const auto r = parse(std::vector<std::uint8_t>(out.begin(), out.begin() + static_cast<long>(n)), 1,
                                 {masked ? role::server : role::client, UINT64_MAX});
            REQUIRE(r.status == header_status::complete);
            CHECK(r.header.payload_length == len);
            CHECK(r.header.masked == masked);
            if (masked) CHECK(r.header.key == h.key);
        }
    }
}

TEST_CASE("header errors, each with its close code 1002 or 1009") {
    struct bad_case {
        const char* name;
        std::vector<std::uint8_t> in;
        header_limits lim;
        error expected;
        close_code code;
    };
    const header_limits client{role::client, UINT64_MAX};
    const header_limits server{role::server, UINT64_MAX};
    const header_limits compressing{role::client, UINT64_MAX, true};
    const std::vector<bad_case> cases = {
        {"RSV1", bytes({0xC1, 0x00}), client, error::reserved_bits_set, close_code::protocol_error},
        {"RSV2", bytes({0xA1, 0x00}), client, error::reserved_bits_set, close_code::protocol_error},
        {"RSV3", bytes({0x91, 0x00}), client, error::reserved_bits_set, close_code::protocol_error},
        {"opcode 3", bytes({0x83, 0x00}), client, error::reserved_opcode, close_code::protocol_error},
        {"opcode 7", bytes({0x87, 0x00}), client, error::reserved_opcode, close_code::protocol_error},
        {"opcode B", bytes({0x8B, 0x00}), client, error::reserved_opcode, close_code::protocol_error},
        {"opcode F", bytes({0x8F, 0x00}), client, error::reserved_opcode, close_code::protocol_error},
        {"unmasked client frame", bytes({0x81, 0x00}), server, error::unmasked_client_frame, close_code::protocol_error},
        {"masked server frame", bytes({0x81, 0x80, 1, 2, 3, 4}), client, error::masked_server_frame, close_code::protocol_error},
        {"fragmented ping", bytes({0x09, 0x00}), client, error::fragmented_control_frame, close_code::protocol_error},
        {"fragmented close", bytes({0x08, 0x00}), client, error::fragmented_control_frame, close_code::protocol_error},
        {"ping of 126", bytes({0x89, 0x7E, 0x00, 0x7E}), client, error::control_frame_too_large, close_code::protocol_error},
        {"16-bit length under 126", bytes({0x82, 0x7E, 0x00, 0x7D}), client, error::non_minimal_length, close_code::protocol_error},
        {"64-bit length under 65536", bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}), client, error::non_minimal_length, close_code::protocol_error},
        {"64-bit length top bit", bytes({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}), client, error::length_top_bit_set, close_code::protocol_error},
        {"over the frame limit", bytes({0x82, 0x7E, 0x01, 0x01}), {role::client, 256}, error::frame_too_big, close_code::message_too_big},
        {"2^62 bytes announced", bytes({0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}), {role::server, 1 << 20}, error::frame_too_big, close_code::message_too_big},
        // permessage-deflate negotiated: RSV1 is still wrong on control frames and continuations.
        {"RSV1 on a ping, compression on", bytes({0xC9, 0x00}), compressing, error::compressed_control_or_continuation, close_code::protocol_error},
        {"RSV1 on a close, compression on", bytes({0xC8, 0x00}), compressing, error::compressed_control_or_continuation, close_code::protocol_error},
        {"RSV1 on a continuation, compression on", bytes({0x40, 0x00}), compressing, error::compressed_control_or_continuation, close_code::protocol_error},
        {"RSV2 with compression on", bytes({0xE1, 0x00}), compressing, error::reserved_bits_set, close_code::protocol_error},
    };
    for (const auto& c : cases) {
        for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{64}}) {
            CAPTURE(c.name);
            CAPTURE(chunk);
            const auto r = parse(c.in, chunk, c.lim);
            REQUIRE(r.status == header_status::failed);
            CHECK(r.error == c.expected);
            CHECK(close_code_for(static_cast<error>(r.error.value())) == c.code);
        }
    }
}

TEST_CASE("frame size limit is inclusive") {
    const auto at = parse(bytes({0x82, 0x7E, 0x01, 0x00}), 1, {role::client, 256});
    CHECK(at.status == header_status::complete);
    // Control frames are not subject to the data-frame size limit.
    const auto ping = parse(bytes({0x89, 0x7D}), 1, {role::client, 10});
    CHECK(ping.status == header_status::complete);
}

TEST_CASE("the parser stops at the end of the header and can parse the next one") {
    frame_header_parser p({role::client, UINT64_MAX});
    const auto in = bytes(encode_frame(opcode::text, "ab") + encode_frame(opcode::binary, "c"));
    std::size_t consumed = 0;
    REQUIRE(p.put(in, consumed) == header_status::complete);
    CHECK(consumed == 2);
    consumed += 2;  // skip "ab"
    REQUIRE(p.put(std::span<const std::uint8_t>(in).subspan(consumed), consumed) == header_status::complete);
    CHECK(p.header().op == opcode::binary);
    CHECK(consumed == 6);
}

TEST_CASE("apply_mask matches a byte-by-byte reference at every offset and length") {
    const masking_key key{0xA1, 0x02, 0xF3, 0x44};
    for (std::size_t len = 0; len < 70; ++len) {
        for (std::uint64_t offset = 0; offset < 8; ++offset) {
            std::string data;
            for (std::size_t i = 0; i < len; ++i) data.push_back(static_cast<char>(i * 7 + 3));
            std::string expected = data;
            for (std::size_t i = 0; i < len; ++i)
                expected[i] = static_cast<char>(static_cast<std::uint8_t>(expected[i]) ^ key[(offset + i) % 4]);
            apply_mask(data, key, offset);
            REQUIRE(data == expected);
        }
    }
}

TEST_CASE("masking in pieces equals masking at once") {
    const masking_key key{9, 8, 7, 6};
    std::string whole(1000, 'q');
    std::string pieces = whole;
    apply_mask(whole, key);
    std::size_t pos = 0;
    for (std::size_t step : {1, 3, 5, 8, 13, 100, 870}) {
        apply_mask(std::span<char>(pieces).subspan(pos, step), key, pos);
        pos += step;
    }
    CHECK(pos == pieces.size());
    CHECK(pieces == whole);
}

TEST_CASE("RFC 7692 section 6: with compression negotiated, RSV1 marks a message's first frame") {
    const header_limits compressing{role::client, UINT64_MAX, true};
    for (const int first : {0xC1, 0x42, 0xC2}) {
        const auto r = parse(bytes({first, 0x00}), 1, compressing);
        REQUIRE(r.status == header_status::complete);
        CHECK(r.header.rsv1);
    }
}
