// Tests of starling/session/write_queue.hpp: what the writer hands to the socket. The writer writes as
// much as the kernel takes, so any write can end inside a frame; the queue must resume exactly there,
// never write past a close frame, and never drop a frame already begun.
#include <starling/session/write_queue.hpp>

#include <doctest/doctest.h>

#include <cstddef>  // std::size_t
#include <string>   // std::string
#include <vector>   // std::vector

namespace {

using starling::opcode;
using starling::detail::make_shared_frame;
using starling::detail::outbound_frame;
using starling::detail::payload_pool;
using starling::detail::write_queue;

/// The bytes the next write would carry, as one string.
std::string next_write(const write_queue& queue, std::size_t max_buffers = 64, std::size_t max_bytes = 1 << 20) {
    std::vector<asio::const_buffer> buffers;
    const std::size_t bytes = queue.gather(buffers, max_buffers, max_bytes);
    std::string out;
    for (const auto& b : buffers) out.append(static_cast<const char*>(b.data()), b.size());
    CHECK(out.size() == bytes);
    CHECK(buffers.size() <= max_buffers);
    return out;
}

std::string encoded(opcode op, const std::string& payload) { return starling::encode_frame(op, payload); }

/// prefix followed by i, built by appending: g++ 12 at -O3 warns (-Wrestrict, a false positive) about
/// `"m" + std::to_string(i)`, which inserts the literal at the front of the temporary.
std::string numbered(const char* prefix, int i) {
    std::string out = prefix;
    out += std::to_string(i);
    return out;
}

}  // namespace

TEST_CASE("a write of everything queued carries every frame, in order, encoded") {
    write_queue queue;
    payload_pool pool;
    queue.push(outbound_frame::unicast(opcode::text, "hello"));
    queue.push(outbound_frame::broadcast(make_shared_frame(opcode::binary, "shared")));
    queue.push(outbound_frame::unicast(opcode::pong, ""));
    const std::string expected = encoded(opcode::text, "hello") + encoded(opcode::binary, "shared") + encoded(opcode::pong, "");
    CHECK(queue.bytes() == expected.size());
    CHECK(next_write(queue) == expected);
    CHECK_FALSE(queue.consume(expected.size(), pool));
    CHECK(queue.empty());
    CHECK(queue.bytes() == 0);
}

TEST_CASE("a write that ends anywhere is resumed at the next byte") {
    const std::string big(300, 'b');
    const std::string stream = encoded(opcode::text, "first") + encoded(opcode::binary, big) +
                               encoded(opcode::text, "third");
    // Every split point, including inside a header and exactly at frame boundaries.
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
        CAPTURE(cut);
        write_queue queue;
        payload_pool pool;
        queue.push(outbound_frame::unicast(opcode::text, "first"));
        queue.push(outbound_frame::unicast(opcode::binary, big));
        queue.push(outbound_frame::broadcast(make_shared_frame(opcode::text, "third")));
        CHECK_FALSE(queue.consume(cut, pool));
        CHECK(queue.bytes() == stream.size() - cut);
        CHECK(next_write(queue) == stream.substr(cut));
        CHECK_FALSE(queue.consume(stream.size() - cut, pool));
        CHECK(queue.empty());
    }
}

TEST_CASE("a write ends with a close frame, and reports it once it is wholly written") {
    write_queue queue;
    payload_pool pool;
    queue.push(outbound_frame::unicast(opcode::text, "last words"));
    queue.push(outbound_frame::unicast(opcode::close, std::string("\x03\xe8", 2)));
    queue.push(outbound_frame::unicast(opcode::text, "never"));
    const std::string until_close = encoded(opcode::text, "last words") + encoded(opcode::close, std::string("\x03\xe8", 2));
    CHECK(next_write(queue) == until_close);
    CHECK_FALSE(queue.consume(until_close.size() - 1, pool));  // the close frame's last byte is missing
    CHECK(next_write(queue) == until_close.substr(until_close.size() - 1));
    CHECK(queue.consume(1, pool));
}

TEST_CASE("a write is bounded by buffers and bytes, but always carries the first frame") {
    write_queue queue;
    payload_pool pool;
    for (int i = 0; i < 100; ++i) queue.push(outbound_frame::unicast(opcode::text, numbered("message ", i)));
    std::vector<asio::const_buffer> buffers;
    queue.gather(buffers, 64, 1 << 20);
    CHECK(buffers.size() == 64);  // header and payload of 32 frames

    const std::string huge(4096, 'h');
    write_queue big;
    big.push(outbound_frame::unicast(opcode::binary, huge));
    big.push(outbound_frame::unicast(opcode::binary, huge));
    CHECK(next_write(big, 64, 100) == encoded(opcode::binary, huge));
}

TEST_CASE("dropping the unsent backlog keeps a frame already begun") {
    payload_pool pool;
    write_queue queue;
    queue.push(outbound_frame::unicast(opcode::binary, std::string(100, 'a')));
    queue.push(outbound_frame::unicast(opcode::binary, std::string(100, 'b')));
    queue.consume(10, pool);  // the first frame is on the wire in part
    queue.drop_unsent();
    const std::string rest = encoded(opcode::binary, std::string(100, 'a')).substr(10);
    CHECK(queue.bytes() == rest.size());
    CHECK(next_write(queue) == rest);

    write_queue untouched;
    untouched.push(outbound_frame::unicast(opcode::binary, "x"));
    untouched.drop_unsent();
    CHECK(untouched.empty());
    CHECK(untouched.bytes() == 0);
}

TEST_CASE("frames queued behind a partly written one survive the queue's growth") {
    // The queue's storage moves when it grows; buffers are gathered afresh for every write, so what
    // the next write carries is still the right bytes (inline headers included).
    write_queue queue;
    payload_pool pool;
    std::string stream;
    for (int i = 0; i < 3; ++i) {
        queue.push(outbound_frame::unicast(opcode::text, numbered("m", i)));
        stream += encoded(opcode::text, numbered("m", i));
    }
    queue.consume(3, pool);
    for (int i = 3; i < 200; ++i) {
        queue.push(outbound_frame::unicast(opcode::text, numbered("m", i)));
        stream += encoded(opcode::text, numbered("m", i));
    }
    std::string written = stream.substr(0, 3);
    while (!queue.empty()) {
        const std::string next = next_write(queue);
        written += next;
        queue.consume(next.size(), pool);
    }
    CHECK(written == stream);
}

TEST_CASE("the queue counts memory, not only wire bytes: a per-frame overhead and the payload's storage") {
    write_queue queue;
    payload_pool pool;
    for (int i = 0; i < 1000; ++i) queue.push(outbound_frame::unicast(opcode::text, "x"));
    CHECK(queue.bytes() == 1000 * encoded(opcode::text, "x").size());
    CHECK(queue.memory() >= 1000 * sizeof(outbound_frame));  // a 1-byte frame is not 3 bytes of memory

    std::string roomy;
    roomy.reserve(4096);
    roomy = "small";
    write_queue one;
    one.push(outbound_frame::unicast(opcode::binary, std::move(roomy)));
    CHECK(one.memory() >= 4096);  // what the payload holds, not what it says

    // Writing frames whole gives their memory back; a frame written in part still holds all of it.
    const std::size_t frame = encoded(opcode::text, "x").size();
    queue.consume(frame * 999 + 1, pool);
    CHECK(queue.memory() >= sizeof(outbound_frame));
    CHECK(queue.memory() < 2 * sizeof(outbound_frame));
    queue.consume(frame - 1, pool);
    CHECK(queue.memory() == 0);
    CHECK(queue.empty());
}

TEST_CASE("a ping flood leaves few pongs waiting: the first ones answered in order, then only the latest") {
    write_queue queue;
    payload_pool pool;
    const std::size_t cap = write_queue::max_waiting_pongs;
    for (std::size_t i = 0; i < 100000; ++i) queue.push_pong("ping " + std::to_string(i));
    CHECK(queue.waiting_pongs() == cap);
    CHECK(queue.memory() < cap * (sizeof(outbound_frame) + 64));

    std::string expected;
    for (std::size_t i = 0; i + 1 < cap; ++i) expected += encoded(opcode::pong, "ping " + std::to_string(i));
    expected += encoded(opcode::pong, "ping 99999");  // the latest ping's answer, last
    CHECK(next_write(queue) == expected);
    queue.consume(expected.size(), pool);
    CHECK(queue.waiting_pongs() == 0);
    CHECK(queue.empty());
}

TEST_CASE("a pong already on the wire in part is never rewritten: the next ping gets a pong of its own") {
    write_queue queue;
    payload_pool pool;
    for (std::size_t i = 0; i < write_queue::max_waiting_pongs; ++i) queue.push_pong("a");
    // Write all but the last pong, and one byte of it.
    const std::size_t pong = encoded(opcode::pong, "a").size();
    queue.consume(pong * (write_queue::max_waiting_pongs - 1) + 1, pool);
    CHECK(queue.waiting_pongs() == 1);
    queue.push_pong("b");
    CHECK(next_write(queue) == encoded(opcode::pong, "a").substr(1) + encoded(opcode::pong, "b"));
}

TEST_CASE("pongs keep their place among other frames, and dropping the backlog forgets dropped pongs") {
    write_queue queue;
    payload_pool pool;
    queue.push(outbound_frame::unicast(opcode::text, "before"));
    queue.push_pong("p");
    queue.push(outbound_frame::unicast(opcode::text, "after"));
    CHECK(next_write(queue) == encoded(opcode::text, "before") + encoded(opcode::pong, "p") + encoded(opcode::text, "after"));
    queue.consume(3, pool);
    queue.drop_unsent();
    CHECK(queue.waiting_pongs() == 0);
    for (std::size_t i = 0; i < write_queue::max_waiting_pongs + 5; ++i) queue.push_pong(std::to_string(i));
    CHECK(queue.waiting_pongs() == write_queue::max_waiting_pongs);
}

TEST_CASE("a burst's storage is released once the queue drains") {
    write_queue queue;
    payload_pool pool;
    std::size_t wire = 0;
    for (int i = 0; i < 10000; ++i) {
        queue.push(outbound_frame::unicast(opcode::text, "burst"));
        wire += encoded(opcode::text, "burst").size();
    }
    CHECK(queue.storage_slots() >= 10000);
    queue.consume(wire, pool);
    CHECK(queue.empty());
    CHECK(queue.storage_slots() == 0);

    // Ordinary traffic keeps its small ring: no allocation per message in steady state.
    queue.push(outbound_frame::unicast(opcode::text, "one"));
    queue.consume(encoded(opcode::text, "one").size(), pool);
    CHECK(queue.storage_slots() == 8);
}
