// The compressor and the bounded decompressor (protocol/deflate_codec.hpp), against the examples of
// RFC 7692 section 7.2.3, and against what a hostile peer sends: bombs and corrupt data.
#include <starling/protocol/deflate_codec.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>

using namespace starling;

namespace {

std::string bytes(std::initializer_list<int> list) {
    std::string out;
    for (const int b : list) out += static_cast<char>(b);
    return out;
}

std::string inflate_one(std::string_view in, inflate_status expect = inflate_status::ok, std::size_t limit = 1 << 20) {
    inflater z;
    std::string out;
    CHECK(z.decompress(in, out, limit, false) == expect);
    return out;
}

}  // namespace

TEST_CASE("RFC 7692 7.2.3.1: 'Hello' compressed, whole and in two fragments' payloads") {
    const std::string hello = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
    CHECK(inflate_one(hello) == "Hello");
    deflater d({15, 8, 6});
    std::string out;
    d.compress("Hello", out, false);
    CHECK(out == hello);
    // The fragments' payloads, joined (the reader reassembles them before inflating).
    CHECK(inflate_one(bytes({0xf2, 0x48, 0xcd}) + bytes({0xc9, 0xc9, 0x07, 0x00})) == "Hello");
}

TEST_CASE("RFC 7692 7.2.3.2: the second 'Hello' with the window shared") {
    deflater d({15, 8, 6});
    std::string first, second;
    d.compress("Hello", first, true);
    d.compress("Hello", second, true);
    CHECK(second == bytes({0xf2, 0x00, 0x11, 0x00, 0x00}));
    inflater z;
    std::string out;
    REQUIRE(z.decompress(first, out, 100, true) == inflate_status::ok);
    CHECK(out == "Hello");
    REQUIRE(z.decompress(second, out, 100, true) == inflate_status::ok);
    CHECK(out == "Hello");
    // Without the window the second message refers to nothing: corrupt.
    inflate_one(second, inflate_status::corrupt);
}

TEST_CASE("RFC 7692 7.2.3.3, 7.2.3.4, 7.2.3.5: a stored block, BFINAL set, two blocks") {
    CHECK(inflate_one(bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})) == "Hello");
    CHECK(inflate_one(bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00})) == "Hello");
    CHECK(inflate_one(bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00})) == "Hello");
}

TEST_CASE("an inflater is reusable after a final block and after a failure") {
    inflater z;
    std::string out;
    CHECK(z.decompress(bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}), out, 100, true) == inflate_status::ok);
    CHECK(z.decompress(bytes({0xff, 0xff, 0xff}), out, 100, false) == inflate_status::corrupt);
    CHECK(z.decompress(bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), out, 100, false) == inflate_status::ok);
    CHECK(out == "Hello");
}

TEST_CASE("round trips: empty, small, large, random; with and without context takeover") {
    std::mt19937 random(7);
    std::string noise(200000, '\0');
    for (char& c : noise) c = static_cast<char>(random());
    std::string text;
    while (text.size() < 300000) text += "the quick brown fox jumps over the lazy dog " + std::to_string(text.size());
    for (const bool keep : {false, true}) {
        deflater d({15, 8, 1});
        inflater z;
        for (const std::string& m : {std::string(), std::string("x"), text, noise, text}) {
            std::string packed, out;
            d.compress(m, packed, keep);
            REQUIRE(z.decompress(packed, out, m.size(), keep) == inflate_status::ok);
            CHECK(out == m);
        }
    }
    for (const int bits : {9, 10, 12, 15}) {
        deflater d({bits, 1, 9});
        std::string packed, out;
        d.compress(text, packed, false);
        inflater z(bits);
        REQUIRE(z.decompress(packed, out, text.size(), false) == inflate_status::ok);
        CHECK(out == text);
    }
}

TEST_CASE("a bomb stops at the limit: one byte over it is too_big, and no more is held") {
    deflater d({15, 8, 9});
    const std::string huge(64 * 1024 * 1024, 'a');
    std::string bomb;
    d.compress(huge, bomb, false);
    CHECK(bomb.size() < 100 * 1024);  // 64 MiB in well under 100 KiB
    for (const std::size_t limit : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, std::size_t{4096}, std::size_t{1 << 20}}) {
        CAPTURE(limit);
        inflater z;
        std::string out;
        CHECK(z.decompress(bomb, out, limit, false) == inflate_status::too_big);
        CHECK(out.size() == limit + 1);
        CHECK(out.capacity() <= std::max<std::size_t>(limit + 1, 256));  // never more room than the limit
    }
    // Exactly at the limit is fine.
    std::string out;
    inflater z;
    CHECK(z.decompress(bomb, out, huge.size(), false) == inflate_status::ok);
    CHECK(out.size() == huge.size());
}

TEST_CASE("corrupt data is corrupt, whatever it is, and never hangs") {
    inflate_one(bytes({0xff}), inflate_status::corrupt);            // reserved block type 3
    inflate_one(bytes({0x00, 0x05, 0x00, 0x00, 0x00}), inflate_status::corrupt);  // stored length check fails
    std::mt19937 random(11);
    for (int i = 0; i < 2000; ++i) {
        std::string junk(random() % 64, '\0');
        for (char& c : junk) c = static_cast<char>(random());
        inflater z;
        std::string out;
        const auto status = z.decompress(junk, out, 4096, false);
        CHECK(out.size() <= 4097);
        if (status == inflate_status::ok) CHECK(out.size() <= 4096);
    }
}
