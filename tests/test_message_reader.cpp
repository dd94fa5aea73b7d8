#include <starling/protocol/message_reader.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace starling;

namespace {

const masking_key test_key{0x37, 0xfa, 0x21, 0x3d};

// A frame as a client sends it: masked.
std::string client_frame(opcode op, std::string_view payload, bool fin = true) {
    return encode_frame(op, payload, fin, &test_key);
}

std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return p;
}

struct event {
    read_status status = read_status::need_more;
    opcode type = opcode::text;
    std::string payload;
    close_reason close;
    std::error_code error;
};

// Feeds `wire` to `reader` `chunk` bytes at a time, as a socket would deliver it, and records every event.
std::vector<event> feed(message_reader& reader, const std::string& wire, std::size_t chunk) {
    std::vector<event> events;
    std::string pending;
    for (std::size_t pos = 0; pos < wire.size(); pos += chunk) {
        pending.append(wire, pos, chunk);
        for (;;) {
            const read_result r = reader.read(pending);
            REQUIRE(r.consumed <= pending.size());
            if (r.status != read_status::need_more) {
                event e;
                e.status = r.status;
                e.type = reader.message_type();
                e.payload = std::string(reader.payload());
                e.close = reader.close_frame();
                e.error = reader.error();
                events.push_back(e);
            }
            pending.erase(0, r.consumed);
            if (r.status == read_status::need_more) {
                CHECK(pending.empty());  // need_more means everything given was taken
                break;
            }
            if (r.status == read_status::failed) return events;
        }
    }
    return events;
}

std::vector<event> feed_all_chunkings(const std::string& wire, reader_options options,
                                      const std::vector<event>* expected_reference = nullptr) {
    std::vector<event> first;
    for (std::size_t chunk : {wire.size(), std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}}) {
        if (chunk == 0) continue;
        message_reader reader(options);
        auto events = feed(reader, wire, chunk);
        if (first.empty() && expected_reference == nullptr) {
            first = events;
            continue;
        }
        REQUIRE(events.size() == first.size());
        for (std::size_t i = 0; i < events.size(); ++i) {
            CHECK(events[i].status == first[i].status);
            CHECK(events[i].payload == first[i].payload);
            CHECK(events[i].error == first[i].error);
        }
    }
    return first;
}

reader_options client_side() { return {role::client, default_max_message_size, 0}; }

}  // namespace

TEST_CASE("RFC 6455 5.7 frames read as messages") {
    const auto one = feed_all_chunkings("\x81\x05Hello", client_side());
    REQUIRE(one.size() == 1);
    CHECK(one[0].status == read_status::message);
    CHECK(one[0].type == opcode::text);
    CHECK(one[0].payload == "Hello");

    const auto masked = feed_all_chunkings("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", {});
    REQUIRE(masked.size() == 1);
    CHECK(masked[0].payload == "Hello");

    const auto fragmented = feed_all_chunkings("\x01\x03Hel\x80\x02lo", client_side());
    REQUIRE(fragmented.size() == 1);
    CHECK(fragmented[0].payload == "Hello");

    const auto ping = feed_all_chunkings("\x89\x05Hello", client_side());
    REQUIRE(ping.size() == 1);
    CHECK(ping[0].status == read_status::ping);
    CHECK(ping[0].payload == "Hello");

    const auto pong = feed_all_chunkings("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", {});
    REQUIRE(pong.size() == 1);
    CHECK(pong[0].status == read_status::pong);
    CHECK(pong[0].payload == "Hello");

    std::string binary256 = std::string("\x82\x7E\x01\x00", 4) + std::string(256, '\xAB');
    const auto b = feed_all_chunkings(binary256, client_side());
    REQUIRE(b.size() == 1);
    CHECK(b[0].type == opcode::binary);
    CHECK(b[0].payload == std::string(256, '\xAB'));
}

TEST_CASE("control frames interleaved in a fragmented message, every chunking") {
    const std::string wire = client_frame(opcode::text, "frag", false) + client_frame(opcode::ping, "p1") +
                             client_frame(opcode::continuation, "men", false) + client_frame(opcode::pong, "") +
                             client_frame(opcode::continuation, "ted") + client_frame(opcode::binary, std::string("\xFF\x00", 2));
    const auto events = feed_all_chunkings(wire, {});
    REQUIRE(events.size() == 4);
    CHECK(events[0].status == read_status::ping);
    CHECK(events[0].payload == "p1");
    CHECK(events[1].status == read_status::pong);
    CHECK(events[2].status == read_status::message);
    CHECK(events[2].payload == "fragmented");
    CHECK(events[2].type == opcode::text);
    CHECK(events[3].type == opcode::binary);
    CHECK(events[3].payload == std::string("\xFF\x00", 2));
}

TEST_CASE("an unfragmented message inside the buffer is returned in place, without a copy") {
    message_reader reader;
    std::string wire = client_frame(opcode::binary, "payload-bytes") + client_frame(opcode::text, "next");
    const auto r = reader.read(wire);
    REQUIRE(r.status == read_status::message);
    CHECK(reader.payload() == "payload-bytes");
    CHECK(reader.payload().data() >= wire.data());
    CHECK(reader.payload().data() < wire.data() + wire.size());
    const auto r2 = reader.read(std::span<char>(wire).subspan(r.consumed));
    REQUIRE(r2.status == read_status::message);
    CHECK(reader.payload() == "next");
    CHECK(r.consumed + r2.consumed == wire.size());
}

TEST_CASE("take_payload hands over reassembled buffers by swapping them") {
    message_reader reader;
    std::string wire = client_frame(opcode::text, std::string(1000, 'a'), false) +
                       client_frame(opcode::continuation, std::string(1000, 'b'));
    REQUIRE(reader.read(wire).status == read_status::message);
    std::string out;
    reader.take_payload(out);
    CHECK(out.size() == 2000);
    CHECK(reader.payload().data() == out.data());
}

TEST_CASE("empty messages and empty fragments") {
    const auto events = feed_all_chunkings(client_frame(opcode::text, "") + client_frame(opcode::binary, "", false) +
                                               client_frame(opcode::continuation, "", false) +
                                               client_frame(opcode::continuation, ""),
                                           {});
    REQUIRE(events.size() == 2);
    CHECK(events[0].payload.empty());
    CHECK(events[1].type == opcode::binary);
    CHECK(events[1].payload.empty());
}

TEST_CASE("a UTF-8 code point split across fragments is valid") {
    const std::string euro = "\xE2\x82\xAC";
    for (std::size_t cut = 0; cut <= euro.size(); ++cut) {
        const auto events = feed_all_chunkings(client_frame(opcode::text, euro.substr(0, cut), false) +
                                                   client_frame(opcode::continuation, euro.substr(cut)),
                                               {});
        REQUIRE(events.size() == 1);
        CHECK(events[0].status == read_status::message);
        CHECK(events[0].payload == euro);
    }
}

TEST_CASE("binary messages are not checked as UTF-8") {
    const auto events = feed_all_chunkings(client_frame(opcode::binary, "\xC0\xFF\xFE"), {});
    REQUIRE(events.size() == 1);
    CHECK(events[0].status == read_status::message);
}

namespace {

// Feeds `wire` whole and byte by byte; both must fail with `expected` and its close code.
void check_fails(const std::string& wire, error expected, close_code code, reader_options options = {}) {
    for (std::size_t chunk : {wire.size(), std::size_t{1}}) {
        message_reader reader(options);
        const auto events = feed(reader, wire, chunk);
        REQUIRE_FALSE(events.empty());
        CHECK(events.back().status == read_status::failed);
        CHECK(events.back().error == expected);
        CHECK(close_code_for(static_cast<error>(events.back().error.value())) == code);
        // A failed reader stays failed and takes nothing more.
        std::string more = client_frame(opcode::text, "x");
        const auto again = reader.read(more);
        CHECK(again.status == read_status::failed);
        CHECK(again.consumed == 0);
    }
}

}  // namespace

TEST_CASE("fragmentation errors close with 1002") {
    check_fails(client_frame(opcode::continuation, "x"), error::continuation_without_start, close_code::protocol_error);
    check_fails(client_frame(opcode::text, "a", false) + client_frame(opcode::text, "b"),
                error::data_frame_in_open_message, close_code::protocol_error);
    check_fails(client_frame(opcode::binary, "a", false) + client_frame(opcode::binary, "b", false),
                error::data_frame_in_open_message, close_code::protocol_error);
    check_fails(client_frame(opcode::text, "a") + client_frame(opcode::continuation, "b"),
                error::continuation_without_start, close_code::protocol_error);
    check_fails(client_frame(opcode::ping, "a", false), error::fragmented_control_frame, close_code::protocol_error);
    check_fails(client_frame(opcode::ping, std::string(126, 'p')), error::control_frame_too_large,
                close_code::protocol_error);
    check_fails(client_frame(opcode::text, "a", false) + client_frame(opcode::close, "", false),
                error::fragmented_control_frame, close_code::protocol_error);
}

TEST_CASE("reserved bits, reserved opcodes and unmasked frames close with 1002") {
    std::string rsv = client_frame(opcode::text, "a");
    rsv[0] = static_cast<char>(rsv[0] | 0x40);
    check_fails(rsv, error::reserved_bits_set, close_code::protocol_error);
    for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
        std::string f = client_frame(opcode::text, "a");
        f[0] = static_cast<char>(0x80 | op);
        check_fails(f, error::reserved_opcode, close_code::protocol_error);
    }
    check_fails(encode_frame(opcode::text, "a"), error::unmasked_client_frame, close_code::protocol_error);
}

TEST_CASE("invalid UTF-8 closes with 1007, failing fast before the final fragment") {
    check_fails(client_frame(opcode::text, "ok\xC0\xAF"), error::invalid_utf8, close_code::invalid_payload);
    // Fail fast: the first fragment already rules the message out; the reader must not wait for the rest.
    message_reader reader;
    std::string first = client_frame(opcode::text, "valid then \xF4\x90", false);
    const auto r = reader.read(first);
    CHECK(r.status == read_status::failed);
    CHECK(reader.error() == error::invalid_utf8);
    // A message that ends inside a code point is invalid too.
    check_fails(client_frame(opcode::text, "cut \xE2\x82", false) + client_frame(opcode::continuation, ""),
                error::invalid_utf8, close_code::invalid_payload);
}

TEST_CASE("message size limit: inclusive, enforced from the header before buffering, 1009") {
    reader_options small{role::server, 100, 0};
    const auto ok = feed_all_chunkings(client_frame(opcode::binary, std::string(100, 'x')), small);
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].status == read_status::message);

    // With no separate frame limit, a single frame over the message limit is reported as what it is:
    // a message over the message limit (the close reason names the limit the user set).
    check_fails(client_frame(opcode::binary, std::string(101, 'x')), error::message_too_big,
                close_code::message_too_big, small);
    // Over the limit across fragments: refused at the header of the fragment that crosses it.
    check_fails(client_frame(opcode::text, std::string(60, 'x'), false) +
                    client_frame(opcode::continuation, std::string(41, 'x')),
                error::message_too_big, close_code::message_too_big, small);

    // A header announcing 2^62 bytes fails at once, having consumed only the header.
    message_reader reader;
    std::string huge("\x82\xFF\x40\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04", 14);
    const auto r = reader.read(huge);
    CHECK(r.status == read_status::failed);
    CHECK(r.consumed == 14);
    CHECK(reader.error() == error::message_too_big);
    CHECK(close_code_for(static_cast<error>(reader.error().value())) == close_code::message_too_big);
}

TEST_CASE("a separate frame limit below the message limit") {
    reader_options opts{role::server, 1000, 10};
    const auto ok = feed_all_chunkings(client_frame(opcode::text, "0123456789", false) +
                                           client_frame(opcode::continuation, "0123456789"),
                                       opts);
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].payload.size() == 20);
    check_fails(client_frame(opcode::text, "0123456789A"), error::frame_too_big, close_code::message_too_big, opts);
}

TEST_CASE("close frames: parsed code and reason, and every malformed form") {
    const auto normal = feed_all_chunkings(client_frame(opcode::close, close_payload(1000, "bye")), {});
    REQUIRE(normal.size() == 1);
    CHECK(normal[0].status == read_status::close);
    CHECK(normal[0].close.code == 1000);
    CHECK(normal[0].close.reason == "bye");

    const auto empty = feed_all_chunkings(client_frame(opcode::close, ""), {});
    REQUIRE(empty.size() == 1);
    CHECK(empty[0].close.code == 1005);

    const auto app = feed_all_chunkings(client_frame(opcode::close, close_payload(4321)), {});
    CHECK(app[0].close.code == 4321);

    check_fails(client_frame(opcode::close, "\x03"), error::bad_close_payload_length, close_code::protocol_error);
    for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1012, 1016, 2000, 2999, 5000, 65535})
        check_fails(client_frame(opcode::close, close_payload(code)), error::invalid_close_code,
                    close_code::protocol_error);
    check_fails(client_frame(opcode::close, close_payload(1000, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80")),
                error::invalid_utf8_in_close_reason, close_code::invalid_payload);
}

TEST_CASE("several events in one buffer are returned one at a time") {
    message_reader reader;
    std::string wire = client_frame(opcode::text, "a") + client_frame(opcode::ping, "b") +
                       client_frame(opcode::close, close_payload(1001));
    std::span<char> rest(wire);
    std::vector<read_status> seen;
    while (!rest.empty()) {
        const auto r = reader.read(rest);
        seen.push_back(r.status);
        rest = rest.subspan(r.consumed);
    }
    CHECK(seen == std::vector<read_status>{read_status::message, read_status::ping, read_status::close});
}

TEST_CASE("payload() holds nothing stale after an event that has no payload") {
    // Found by fuzzing: after a failure, payload() still viewed the previous message's bytes, inside a
    // buffer the caller had already reused.
    message_reader reader;
    std::string wire = client_frame(opcode::text, "Hello") + std::string("\x81\x02", 2);  // then unmasked
    const auto first = reader.read(wire);
    REQUIRE(first.status == read_status::message);
    CHECK(reader.payload() == "Hello");
    const auto second = reader.read(std::span<char>(wire).subspan(first.consumed));
    REQUIRE(second.status == read_status::failed);
    CHECK(reader.payload().empty());
}

namespace {

/// Feeds `wire` the way the server does for large frames: read() until the frame's payload is
/// pending, then the rest through direct_buffer() / commit_direct() in pieces of `piece` bytes.
read_result feed_direct(message_reader& reader, std::string wire, std::size_t header_and_some, std::size_t piece) {
    std::span<char> first(wire.data(), header_and_some);
    read_result r = reader.read(first);
    REQUIRE(r.status == read_status::need_more);
    REQUIRE(r.consumed == header_and_some);
    std::size_t at = header_and_some;
    while (at < wire.size()) {
        REQUIRE(reader.data_payload_remaining() == wire.size() - at);
        const std::span<char> into = reader.direct_buffer(piece);
        const std::size_t n = std::min(into.size(), wire.size() - at);
        std::copy_n(wire.data() + at, n, into.data());  // what a read from the socket would put there
        at += n;
        r = reader.commit_direct(n);
        if (r.status != read_status::need_more) return r;
    }
    return r;
}

}  // namespace

TEST_CASE("direct input: a large frame's payload read straight into the message") {
    std::string payload(200000, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
    const std::string wire = client_frame(opcode::text, payload);
    for (const std::size_t piece : {std::size_t{1000}, std::size_t{65536}, std::size_t{1} << 20}) {
        message_reader reader;
        const read_result r = feed_direct(reader, wire, 14 + 100, piece);  // 14: header with 64-bit length and mask
        REQUIRE(r.status == read_status::message);
        CHECK(reader.message_type() == opcode::text);
        CHECK(reader.payload() == payload);
        CHECK(reader.data_payload_remaining() == 0);
        std::string taken;
        reader.take_payload(taken);
        CHECK(taken == payload);
    }
}

TEST_CASE("direct input: fragments, invalid UTF-8 and the next frame") {
    // A fragmented message whose first fragment arrives directly, then an ordinary final fragment.
    const std::string first_part(100000, 'x');
    const std::string wire = client_frame(opcode::text, first_part, false);
    message_reader reader;
    REQUIRE(feed_direct(reader, wire, 14, 4096).status == read_status::need_more);
    CHECK(reader.data_payload_remaining() == 0);
    std::string tail = client_frame(opcode::continuation, "end");
    const read_result r = reader.read(tail);
    REQUIRE(r.status == read_status::message);
    CHECK(reader.payload() == first_part + "end");

    // Invalid UTF-8 arriving directly fails with 1007 at once.
    std::string bad(100000, 'y');
    bad[70000] = static_cast<char>(0xFF);
    message_reader strict;
    const read_result failed = feed_direct(strict, client_frame(opcode::text, bad), 14, 65536);
    CHECK(failed.status == read_status::failed);
    CHECK(strict.error() == error::invalid_utf8);
}

TEST_CASE("direct input: the room offered follows the bytes that arrived, not the length announced") {
    // The header of a 1 MiB frame and a few bytes: a peer that stops there must not have made the
    // reader commit the frame.
    const std::string payload(1024 * 1024, 'z');
    std::string wire = client_frame(opcode::binary, payload);
    message_reader reader;
    std::span<char> start(wire.data(), 14 + 10);
    REQUIRE(reader.read(start).status == read_status::need_more);
    std::span<char> room = reader.direct_buffer(256 * 1024);
    CHECK(room.size() == message_reader::min_direct_room);

    // As the bytes come, the room grows with them, up to what the caller asks for.
    std::size_t at = 14 + 10;
    std::size_t previous = 0;
    while (at < wire.size()) {
        room = reader.direct_buffer(256 * 1024);
        const std::size_t received = at - 14;
        if (received < message_reader::proven_sender)
            CHECK(room.size() <= std::max(message_reader::min_direct_room, received));
        if (wire.size() - at > room.size()) CHECK(room.size() >= previous);
        previous = std::max(previous, room.size());
        const std::size_t n = std::min(room.size(), wire.size() - at);
        std::copy_n(wire.data() + at, n, room.data());
        at += n;
        const read_result r = reader.commit_direct(n);
        if (at < wire.size()) REQUIRE(r.status == read_status::need_more);
        else REQUIRE(r.status == read_status::message);
    }
    CHECK(previous == 256 * 1024);
    CHECK(reader.payload() == payload);
}

TEST_CASE("compression negotiated: a compressed message is handed out as it came, unvalidated") {
    // RFC 7692 7.2.3.1, fragmented: RSV1 on the first frame only. The payload is deflate data, not
    // UTF-8, and is not checked until inflated.
    std::string first = client_frame(opcode::text, "\xf2\x48\xcd", false);
    first[0] = static_cast<char>(first[0] | 0x40);
    const std::string wire = first + client_frame(opcode::continuation, std::string("\xc9\xc9\x07\x00", 4));
    std::string data = wire;
    message_reader reader({role::server, 1 << 20, 0, true});
    std::span<char> in(data);
    auto r = reader.read(in);
    REQUIRE(r.status == read_status::message);
    CHECK(reader.message_compressed());
    CHECK(reader.payload() == std::string_view("\xf2\x48\xcd\xc9\xc9\x07\x00", 7));
    // The next message, uncompressed, is validated as usual.
    std::string plain = client_frame(opcode::text, "\xff");
    r = reader.read(std::span<char>(plain));
    REQUIRE(r.status == read_status::failed);
    CHECK(reader.error() == error::invalid_utf8);
}

TEST_CASE("compression negotiated: RSV1 on a continuation fails with 1002") {
    std::string cont = client_frame(opcode::continuation, "b");
    cont[0] = static_cast<char>(cont[0] | 0x40);
    std::string data = client_frame(opcode::text, "a", false) + cont;
    message_reader reader({role::server, 1 << 20, 0, true});
    const auto r = reader.read(std::span<char>(data));
    REQUIRE(r.status == read_status::failed);
    CHECK(reader.error() == error::compressed_control_or_continuation);
    CHECK(close_code_for(error::compressed_control_or_continuation) == close_code::protocol_error);
}

TEST_CASE("compression negotiated: a compressed message may exceed the limit on the wire by a little") {
    // Incompressible data grows slightly when deflated; its limit is on what it inflates to.
    const std::uint64_t limit = 4096;
    std::string compressed = client_frame(opcode::binary, std::string(limit + 64 + limit / 16, 'c'));
    compressed[0] = static_cast<char>(compressed[0] | 0x40);
    message_reader reader({role::server, limit, 0, true});
    auto r = reader.read(std::span<char>(compressed));
    CHECK(r.status == read_status::message);
    // One byte more is refused from the header; so is an uncompressed message over the limit itself.
    std::string over = client_frame(opcode::binary, std::string(limit + 65 + limit / 16, 'c'));
    over[0] = static_cast<char>(over[0] | 0x40);
    r = reader.read(std::span<char>(over));
    REQUIRE(r.status == read_status::failed);
    CHECK(reader.error() == error::message_too_big);
    message_reader plain_reader({role::server, limit, 0, true});
    std::string plain = client_frame(opcode::binary, std::string(limit + 1, 'p'));
    r = plain_reader.read(std::span<char>(plain));
    REQUIRE(r.status == read_status::failed);
    CHECK(plain_reader.error() == error::message_too_big);
}
