// Tests of starling/protocol/close.hpp: parsing received close payloads and building ones to send.
#include <starling/protocol/close.hpp>

#include <doctest/doctest.h>

#include <array>         // std::array for the 125-byte output buffer
#include <cstddef>       // std::size_t
#include <cstdint>       // std::uint16_t, std::uint32_t
#include <string>        // std::string
#include <string_view>   // std::string_view
#include <system_error>  // std::error_code

namespace {

std::string payload(std::uint32_t code, std::string_view reason = {}) {
    std::string out;
    out += static_cast<char>(code >> 8 & 0xFF);
    out += static_cast<char>(code & 0xFF);
    out += reason;
    return out;
}

// RFC 6455 7.4 as Autobahn case 7.7 to 7.13 reads it, written out independently of is_valid_close_code.
bool may_be_sent(std::uint32_t code) {
    switch (code) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011:
        return true;
    default:
        return code >= 3000 && code <= 4999;
    }
}

}  // namespace

TEST_CASE("close: empty payload means no status code") {
    starling::close_reason out{1000, "stale"};
    CHECK_FALSE(starling::parse_close_payload("", out));
    CHECK(out.code == 1005);
    CHECK(out.code == static_cast<std::uint16_t>(starling::close_code::no_status));
    CHECK(out.reason.empty());

    starling::close_reason fresh;
    CHECK(fresh.code == 1005);
    CHECK(fresh.reason.empty());
}

TEST_CASE("close: a 1-byte payload is a protocol error") {
    for (unsigned b = 0; b < 256; ++b) {
        starling::close_reason out{1000, "kept"};
        const std::string one(1, static_cast<char>(b));
        const std::error_code ec = starling::parse_close_payload(one, out);
        CHECK(ec == starling::error::bad_close_payload_length);
        CHECK(ec == starling::condition::protocol_violation);
        CHECK(out.code == 1000);
        CHECK(out.reason == "kept");
    }
}

TEST_CASE("close: every code classified") {
    auto check_code = [](std::uint32_t code) {
        INFO("code ", code);
        starling::close_reason out;
        const std::error_code ec = starling::parse_close_payload(payload(code), out);
        if (may_be_sent(code)) {
            CHECK_FALSE(ec);
            CHECK(out.code == code);
            CHECK(out.reason.empty());
        } else {
            CHECK(ec == starling::error::invalid_close_code);
            CHECK(out.code == 1005);  // untouched
        }
    };
    for (std::uint32_t code = 0; code <= 5000; ++code) check_code(code);
    check_code(65535);

    // The whole 16-bit range, tallied.
    std::size_t accepted = 0;
    std::size_t wrong = 0;
    for (std::uint32_t code = 0; code <= 65535; ++code) {
        starling::close_reason out;
        const bool ok = !starling::parse_close_payload(payload(code), out);
        if (ok) ++accepted;
        if (ok != may_be_sent(code)) ++wrong;
    }
    CHECK(wrong == 0);
    CHECK(accepted == 4 + 5 + 2000);

    // The codes that exist only as local notes never travel in a frame.
    starling::close_reason out;
    CHECK(starling::parse_close_payload(payload(1005), out) == starling::error::invalid_close_code);
    CHECK(starling::parse_close_payload(payload(1006), out) == starling::error::invalid_close_code);
    CHECK(starling::parse_close_payload(payload(1015), out) == starling::error::invalid_close_code);
}

TEST_CASE("close: reason must be UTF-8") {
    starling::close_reason out;

    SUBCASE("valid") {
        CHECK_FALSE(starling::parse_close_payload(payload(1000, "bye"), out));
        CHECK(out.code == 1000);
        CHECK(out.reason == "bye");

        const std::string kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xf0\x9f\x98\x80";
        CHECK_FALSE(starling::parse_close_payload(payload(4000, kosme), out));
        CHECK(out.code == 4000);
        CHECK(out.reason == kosme);
    }
    SUBCASE("invalid") {
        for (std::string_view bad : {std::string_view("\xc0\x80"), std::string_view("\xed\xa0\x80"),
                                     std::string_view("ok\xff"), std::string_view("\xf4\x90\x80\x80"),
                                     std::string_view("cut \xe2\x82"), std::string_view("\x80")}) {
            INFO("reason ", bad);
            out = {1001, "kept"};
            const std::error_code ec = starling::parse_close_payload(payload(1000, bad), out);
            CHECK(ec == starling::error::invalid_utf8_in_close_reason);
            CHECK(ec == starling::condition::invalid_payload);
            CHECK(starling::close_code_for(starling::error::invalid_utf8_in_close_reason) ==
                  starling::close_code::invalid_payload);
            CHECK(out.code == 1001);
            CHECK(out.reason == "kept");
        }
    }
    SUBCASE("a bad code is reported before a bad reason") {
        CHECK(starling::parse_close_payload(payload(999, "\xff"), out) == starling::error::invalid_close_code);
    }
    SUBCASE("a reason with an embedded NUL is valid") {
        const std::string nul("a\0b", 3);
        CHECK_FALSE(starling::parse_close_payload(payload(1000, nul), out));
        CHECK(out.reason == nul);
    }
}

TEST_CASE("close: the longest reason, 123 bytes") {
    starling::close_reason out;
    const std::string ascii(123, 'r');
    CHECK_FALSE(starling::parse_close_payload(payload(1000, ascii), out));
    CHECK(out.reason == ascii);

    // 40 three-byte code points and 3 ASCII bytes.
    std::string mixed = "abc";
    for (int i = 0; i < 40; ++i) mixed += "\xe2\x82\xac";
    REQUIRE(mixed.size() == 123);
    CHECK_FALSE(starling::parse_close_payload(payload(3000, mixed), out));
    CHECK(out.code == 3000);
    CHECK(out.reason == mixed);
}

TEST_CASE("close: write_close_payload") {
    std::array<char, 125> buf{};

    SUBCASE("code only, big-endian") {
        REQUIRE(starling::write_close_payload(1000, "", buf) == 2);
        CHECK(static_cast<unsigned char>(buf[0]) == 0x03);
        CHECK(static_cast<unsigned char>(buf[1]) == 0xE8);
        REQUIRE(starling::write_close_payload(4999, "", buf) == 2);
        CHECK(static_cast<unsigned char>(buf[0]) == 0x13);
        CHECK(static_cast<unsigned char>(buf[1]) == 0x87);
        REQUIRE(starling::write_close_payload(0xABCD, "", buf) == 2);
        CHECK(static_cast<unsigned char>(buf[0]) == 0xAB);
        CHECK(static_cast<unsigned char>(buf[1]) == 0xCD);
    }
    SUBCASE("no_status means an empty payload, reason or not") {
        CHECK(starling::write_close_payload(1005, "", buf) == 0);
        CHECK(starling::write_close_payload(1005, "ignored", buf) == 0);
    }
    SUBCASE("round trip") {
        const std::string reasons[] = {"", "going away", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
                                       std::string(123, 'x')};
        for (std::uint16_t code : {std::uint16_t{1000}, std::uint16_t{1001}, std::uint16_t{1011},
                                   std::uint16_t{3000}, std::uint16_t{4999}}) {
            for (const auto& reason : reasons) {
                INFO("code ", code, " reason ", reason);
                const std::size_t n = starling::write_close_payload(code, reason, buf);
                CHECK(n == 2 + reason.size());
                starling::close_reason out;
                CHECK_FALSE(starling::parse_close_payload({buf.data(), n}, out));
                CHECK(out.code == code);
                CHECK(out.reason == reason);
            }
        }
    }
    SUBCASE("long ASCII is cut at 125 bytes") {
        const std::string reason(300, 'y');
        CHECK(starling::write_close_payload(1000, reason, buf) == 125);
        CHECK(std::string_view(buf.data() + 2, 123) == std::string_view(reason).substr(0, 123));
    }
    SUBCASE("truncation never splits a code point") {
        const std::string_view chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
        for (std::string_view ch : chars) {
            // Every alignment of the multi-byte code points against the 123-byte limit.
            for (std::size_t pad = 0; pad < ch.size(); ++pad) {
                std::string reason(pad, '.');
                while (reason.size() < 200) reason += ch;
                INFO("width ", ch.size(), " padding ", pad);
                const std::size_t n = starling::write_close_payload(1000, reason, buf);
                const std::string_view written(buf.data() + 2, n - 2);
                CHECK(n <= 125);
                CHECK(n > 125 - ch.size());  // only the split code point is dropped
                CHECK(starling::is_valid_utf8(written));
                CHECK(written == std::string_view(reason).substr(0, written.size()));
                starling::close_reason out;
                CHECK_FALSE(starling::parse_close_payload({buf.data(), n}, out));
                CHECK(out.reason == written);
            }
        }
    }
    SUBCASE("a reason that fits exactly is not cut") {
        std::string reason = std::string(119, 'z') + "\xf0\x9f\x98\x80";
        REQUIRE(reason.size() == 123);
        CHECK(starling::write_close_payload(1000, reason, buf) == 125);
        reason = std::string(120, 'z') + "\xf0\x9f\x98\x80";
        CHECK(starling::write_close_payload(1000, reason, buf) == 2 + 120);
    }
    static_assert(noexcept(starling::write_close_payload(1000, "", buf)));
}

namespace {

/// The reason write_close_payload writes for `reason` (with code 1000).
std::string written_reason(std::string_view reason) {
    std::array<char, 125> buf{};
    const std::size_t n = starling::write_close_payload(1000, reason, buf);
    REQUIRE(n >= 2);
    REQUIRE(n <= 125);
    return std::string(buf.data() + 2, n - 2);
}

}  // namespace

TEST_CASE("close: write_close_payload never writes a reason that is not UTF-8") {
    const std::string fffd = "\xef\xbf\xbd";

    SUBCASE("each ill-formed piece becomes one U+FFFD, and the text around it stays") {
        CHECK(written_reason("ok\xff") == "ok" + fffd);
        CHECK(written_reason("\xffroom\xfe") == fffd + "room" + fffd);
        CHECK(written_reason("\x80") == fffd);
        CHECK(written_reason("caf\xe9 au lait") == "caf" + fffd + " au lait");  // Latin-1, not UTF-8
        // A sequence cut short is one piece; what follows it is read on its own.
        CHECK(written_reason("cut \xe2\x82 here") == "cut " + fffd + " here");
        CHECK(written_reason("\xf0\x9f\x98") == fffd);
        // Overlong forms, surrogates and values above U+10FFFF: no valid start, byte by byte.
        CHECK(written_reason("\xc0\x80") == fffd + fffd);
        CHECK(written_reason("\xed\xa0\x80") == fffd + fffd + fffd);
        CHECK(written_reason("\xf4\x90\x80\x80") == fffd + fffd + fffd + fffd);
        // Valid multi-byte text passes unchanged next to a bad byte.
        CHECK(written_reason("\xe2\x82\xac\xff\xf0\x9f\x98\x80") == "\xe2\x82\xac" + fffd + "\xf0\x9f\x98\x80");
    }
    SUBCASE("a replacement that does not fit is left out, like a code point that does not") {
        const std::string start(122, 'a');
        CHECK(written_reason(start + "\xff") == start);
        CHECK(written_reason(std::string(120, 'a') + "\xff") == std::string(120, 'a') + fffd);
        CHECK(written_reason(std::string(120, 'a') + "\xff" + "b") == std::string(120, 'a') + fffd);
        // A reason of nothing but bad bytes is 41 replacements (123 bytes), not 123 bytes of junk.
        CHECK(written_reason(std::string(300, '\xff')).size() == 123);
    }
    SUBCASE("whatever the bytes, the payload parses back") {
        // Random byte strings of every length around the limit, from a fixed seed.
        std::uint32_t state = 12345;
        auto next_byte = [&state] {
            state = state * 1664525u + 1013904223u;
            return static_cast<char>(state >> 24);
        };
        for (std::size_t length = 0; length < 300; ++length) {
            std::string reason;
            for (std::size_t i = 0; i < length; ++i) reason += next_byte();
            CAPTURE(length);
            std::array<char, 125> buf{};
            const std::size_t n = starling::write_close_payload(4000, reason, buf);
            REQUIRE(n <= 125);
            starling::close_reason out;
            CHECK_FALSE(starling::parse_close_payload({buf.data(), n}, out));
            CHECK(out.code == 4000);
            CHECK(starling::is_valid_utf8(out.reason));
        }
    }
}
