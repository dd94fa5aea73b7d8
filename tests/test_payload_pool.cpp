// Tests of starling/session/payload_pool.hpp: spare payload strings, reused by size.
#include <starling/session/payload_pool.hpp>

#include <doctest/doctest.h>

#include <string>  // std::string

using starling::detail::payload_pool;

namespace {

std::string with_capacity(std::size_t n) {
    std::string s;
    s.reserve(n);
    return s;
}

}  // namespace

TEST_CASE("a pooled string is reused only for a message it fits, never for a much smaller one") {
    payload_pool pool(64, 8 * 1024 * 1024);
    pool.give(with_capacity(1024 * 1024));
    pool.give(with_capacity(100));
    CHECK(pool.size() == 2);

    const std::string small = pool.take(10);
    CHECK(small.capacity() >= 100);
    CHECK(small.capacity() < 1024);  // the 100-byte one: a 10-byte message does not pin 1 MiB
    CHECK(pool.take(10).capacity() < 1024);  // none fits now: a new string
    const std::string large = pool.take(900 * 1024);
    CHECK(large.capacity() >= 1024 * 1024);
    CHECK(pool.size() == 0);
    CHECK(pool.bytes() == 0);
    CHECK(pool.take(2 * 1024 * 1024).capacity() < 2 * 1024 * 1024);  // nothing that large: a new string
}

TEST_CASE("the pool is bounded in strings and bytes, and keeps no tiny strings") {
    payload_pool by_count(3, 1024 * 1024);
    for (int i = 0; i < 10; ++i) by_count.give(with_capacity(200));
    CHECK(by_count.size() == 3);

    payload_pool by_bytes(100, 1000);
    for (int i = 0; i < 10; ++i) by_bytes.give(with_capacity(300));
    CHECK(by_bytes.bytes() <= 1000);
    CHECK(by_bytes.size() == 3);

    payload_pool tiny;
    tiny.give(std::string("abc"));
    CHECK(tiny.size() == 0);
}
