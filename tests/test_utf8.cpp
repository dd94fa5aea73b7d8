// Tests of starling/protocol/utf8.hpp: the Autobahn testsuite's family 6 cases fed whole, byte by byte and split
// in two everywhere; exhaustive comparison with a reference decoder; fail-fast positions; big buffers.
#include <starling/protocol/utf8.hpp>

#include <doctest/doctest.h>

#include <cstddef>           // std::size_t
#include <cstdint>           // std::uint32_t, std::uint64_t
#include <initializer_list>  // std::initializer_list for byte lists
#include <string>            // std::string, std::to_string
#include <string_view>       // std::string_view
#include <utility>           // std::pair, std::move
#include <vector>            // std::vector

namespace {

constexpr std::size_t npos = std::string_view::npos;

// What a text is: the index of the first byte after which no valid UTF-8 can follow (npos if none),
// and whether it ends on a code point boundary.
struct verdict {
    std::size_t fail_at = npos;
    bool complete = true;
    bool operator==(const verdict&) const = default;
};

constexpr verdict valid{npos, true};
constexpr verdict truncated{npos, false};  // every byte could begin valid UTF-8, but the end cuts a code point
constexpr verdict fails_at(std::size_t index) { return {index, false}; }

// Reference decoder, deliberately unlike the validator: it tracks the interval of code points that the
// bytes of a sequence read so far still allow, and gives up when that interval holds no scalar value
// of the sequence's length.
bool can_complete(std::uint32_t bits, int length, int read) {
    static constexpr std::uint32_t lowest[] = {0, 0, 0x80, 0x800, 0x10000};
    static constexpr std::uint32_t highest[] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    const int missing_bits = 6 * (length - read);
    std::uint32_t low = bits << missing_bits;
    std::uint32_t high = low + ((std::uint32_t{1} << missing_bits) - 1);
    if (low < lowest[length]) low = lowest[length];
    if (high > highest[length]) high = highest[length];
    if (low > high) return false;
    return !(low >= 0xD800 && high <= 0xDFFF);  // surrogates are the one hole inside the range
}

verdict reference_check(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        int length = 0;
        std::uint32_t bits = 0;
        if (lead < 0x80) {
            length = 1;
            bits = lead;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2;
            bits = lead & 0x1F;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            bits = lead & 0x0F;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            bits = lead & 0x07;
        } else {
            return fails_at(i);
        }
        for (int read = 1;; ++read) {
            if (!can_complete(bits, length, read)) return fails_at(i + static_cast<std::size_t>(read) - 1);
            if (read == length) break;
            const std::size_t next = i + static_cast<std::size_t>(read);
            if (next == text.size()) return truncated;
            const auto byte = static_cast<unsigned char>(text[next]);
            if ((byte & 0xC0) != 0x80) return fails_at(next);
            bits = bits << 6 | (byte & 0x3Fu);
        }
        i += static_cast<std::size_t>(length);
    }
    return valid;
}

// Plain encoder that also produces the 4-byte form of values above U+10FFFF and of surrogates.
std::string encode(std::uint32_t cp) {
    std::string out;
    auto put = [&](std::uint32_t byte) { out += static_cast<char>(byte); };
    if (cp < 0x80) {
        put(cp);
    } else if (cp < 0x800) {
        put(0xC0 | cp >> 6);
        put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        put(0xE0 | cp >> 12);
        put(0x80 | (cp >> 6 & 0x3F));
        put(0x80 | (cp & 0x3F));
    } else {
        put(0xF0 | cp >> 18);
        put(0x80 | (cp >> 12 & 0x3F));
        put(0x80 | (cp >> 6 & 0x3F));
        put(0x80 | (cp & 0x3F));
    }
    return out;
}

std::string bytes(std::initializer_list<unsigned> values) {
    std::string out;
    for (unsigned v : values) out += static_cast<char>(v);
    return out;
}

std::string hex(std::string_view text) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (char c : text) {
        const auto b = static_cast<unsigned char>(c);
        out += digits[b >> 4];
        out += digits[b & 15];
        out += ' ';
    }
    return out;
}

// Feeds text cut at the given offsets (ascending, inside the text) and checks each answer: write() is
// true up to the piece that holds byte expected.fail_at and false from that piece on.
void check_pieces(std::string_view text, const std::vector<std::size_t>& cuts, verdict expected) {
    INFO("text: ", hex(text));
    starling::utf8_validator validator;
    std::size_t start = 0;
    for (std::size_t k = 0; k <= cuts.size(); ++k) {
        const std::size_t end = k < cuts.size() ? cuts[k] : text.size();
        INFO("piece [", start, ", ", end, ")");
        const bool want = expected.fail_at == npos || expected.fail_at >= end;
        CHECK(validator.write(text.substr(start, end - start)) == want);
        start = end;
    }
    CHECK(validator.finish() == (expected == valid));
}

// Case (a) whole, (b) one byte at a time, (c) split in two at every position.
void check_all_ways(std::string_view text, verdict expected) {
    CHECK(starling::is_valid_utf8(text) == (expected == valid));
    check_pieces(text, {}, expected);
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < text.size(); ++i) every.push_back(i);
    check_pieces(text, every, expected);
    for (std::size_t i = 0; i <= text.size(); ++i) check_pieces(text, {i}, expected);
}

struct utf8_case {
    std::string id;
    std::string text;
    verdict expected;
};

// The Autobahn testsuite's family 6 (cases 6.1 to 6.23), built from Markus Kuhn's UTF-8 stress test,
// each with where a fail-fast validator must stop.
std::vector<utf8_case> autobahn_cases() {
    std::vector<utf8_case> cases;
    auto add = [&](std::string id, std::string text, verdict expected) {
        cases.push_back({std::move(id), std::move(text), expected});
    };
    const std::string kosme = bytes({0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5});

    add("6.1", "", valid);
    add("6.2", "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", valid);
    add("6.3", kosme, valid);
    add("6.4", kosme + bytes({0xf4, 0x90, 0x80, 0x80}) + "edited", fails_at(12));

    add("6.5.1", "hello\x24world", valid);
    add("6.5.2", "hello\xc2\xa2world", valid);
    add("6.5.3", "hello\xe2\x82\xacworld", valid);
    add("6.5.4", "hello\xf0\xa4\xad\xa2world", valid);
    add("6.5.5", kosme, valid);

    // Every prefix of kosme: the ones that stop inside a code point are truncated.
    for (std::size_t n = 1; n <= kosme.size(); ++n) {
        const bool boundary = n == 2 || n == 5 || n == 7 || n == 9 || n == 11;
        add("6.6." + std::to_string(n), kosme.substr(0, n), boundary ? valid : truncated);
    }

    add("6.7.1", std::string(1, '\0'), valid);  // U+0000
    add("6.7.2", bytes({0xc2, 0x80}), valid);  // U+0080
    add("6.7.3", bytes({0xe0, 0xa0, 0x80}), valid);  // U+0800
    add("6.7.4", bytes({0xf0, 0x90, 0x80, 0x80}), valid);  // U+10000

    add("6.8.1", bytes({0xf8, 0x88, 0x80, 0x80, 0x80}), fails_at(0));  // 5-byte form
    add("6.8.2", bytes({0xfc, 0x84, 0x80, 0x80, 0x80, 0x80}), fails_at(0));  // 6-byte form

    add("6.9.1", "\x7f", valid);  // U+007F
    add("6.9.2", bytes({0xdf, 0xbf}), valid);  // U+07FF
    add("6.9.3", bytes({0xef, 0xbf, 0xbf}), valid);  // U+FFFF
    add("6.9.4", bytes({0xf4, 0x8f, 0xbf, 0xbf}), valid);  // U+10FFFF

    add("6.10.1", bytes({0xf7, 0xbf, 0xbf, 0xbf}), fails_at(0));  // U+1FFFFF
    add("6.10.2", bytes({0xfb, 0xbf, 0xbf, 0xbf, 0xbf}), fails_at(0));
    add("6.10.3", bytes({0xfd, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf}), fails_at(0));

    add("6.11.1", bytes({0xed, 0x9f, 0xbf}), valid);  // U+D7FF
    add("6.11.2", bytes({0xee, 0x80, 0x80}), valid);  // U+E000
    add("6.11.3", bytes({0xef, 0xbf, 0xbd}), valid);  // U+FFFD
    add("6.11.4", bytes({0xf4, 0x8f, 0xbf, 0xbf}), valid);  // U+10FFFF
    add("6.11.5", bytes({0xf4, 0x90, 0x80, 0x80}), fails_at(1));  // U+110000

    // Lone continuation bytes.
    add("6.12.1", bytes({0x80}), fails_at(0));
    add("6.12.2", bytes({0xbf}), fails_at(0));
    add("6.12.3", bytes({0x80, 0xbf}), fails_at(0));
    add("6.12.4", bytes({0x80, 0xbf, 0x80}), fails_at(0));
    add("6.12.5", bytes({0x80, 0xbf, 0x80, 0xbf}), fails_at(0));
    add("6.12.6", bytes({0x80, 0xbf, 0x80, 0xbf, 0x80}), fails_at(0));
    add("6.12.7", bytes({0x80, 0xbf, 0x80, 0xbf, 0x80, 0xbf}), fails_at(0));
    std::string continuations;
    for (unsigned b = 0x80; b < 0xbf; ++b) continuations += static_cast<char>(b);
    add("6.12.8", continuations, fails_at(0));

    // Lead bytes each followed by a space. C0 and F8/FC fail at once; E0 and F0 need to see the space.
    auto lonely = [](unsigned first, unsigned last) {
        std::string s;
        for (unsigned b = first; b < last; ++b) {
            s += static_cast<char>(b);
            s += ' ';
        }
        return s;
    };
    add("6.13.1", lonely(0xc0, 0xdf), fails_at(0));
    add("6.13.2", lonely(0xe0, 0xef), fails_at(1));
    add("6.13.3", lonely(0xf0, 0xf7), fails_at(1));
    add("6.13.4", lonely(0xf8, 0xfb), fails_at(0));
    add("6.13.5", lonely(0xfc, 0xfd), fails_at(0));

    // Sequences with the last continuation byte missing.
    const std::vector<std::pair<std::string, verdict>> cut_short = {
        {bytes({0xc0}), fails_at(0)},
        {bytes({0xe0, 0x80}), fails_at(1)},
        {bytes({0xf0, 0x80, 0x80}), fails_at(1)},
        {bytes({0xf8, 0x80, 0x80, 0x80}), fails_at(0)},
        {bytes({0xfc, 0x80, 0x80, 0x80, 0x80}), fails_at(0)},
        {bytes({0xdf}), truncated},
        {bytes({0xef, 0xbf}), truncated},
        {bytes({0xf7, 0xbf, 0xbf}), fails_at(0)},
        {bytes({0xfb, 0xbf, 0xbf, 0xbf}), fails_at(0)},
        {bytes({0xfd, 0xbf, 0xbf, 0xbf, 0xbf}), fails_at(0)},
    };
    std::string all_cut_short;
    for (std::size_t k = 0; k < cut_short.size(); ++k) {
        add("6.14." + std::to_string(k + 1), cut_short[k].first, cut_short[k].second);
        all_cut_short += cut_short[k].first;
    }
    add("6.15.1", all_cut_short, fails_at(0));

    add("6.16.1", bytes({0xfe}), fails_at(0));
    add("6.16.2", bytes({0xff}), fails_at(0));
    add("6.16.3", bytes({0xfe, 0xfe, 0xff, 0xff}), fails_at(0));

    // Overlong '/'.
    add("6.17.1", bytes({0xc0, 0xaf}), fails_at(0));
    add("6.17.2", bytes({0xe0, 0x80, 0xaf}), fails_at(1));
    add("6.17.3", bytes({0xf0, 0x80, 0x80, 0xaf}), fails_at(1));
    add("6.17.4", bytes({0xf8, 0x80, 0x80, 0x80, 0xaf}), fails_at(0));
    add("6.17.5", bytes({0xfc, 0x80, 0x80, 0x80, 0x80, 0xaf}), fails_at(0));

    // Largest overlong value of each length.
    add("6.18.1", bytes({0xc1, 0xbf}), fails_at(0));
    add("6.18.2", bytes({0xe0, 0x9f, 0xbf}), fails_at(1));
    add("6.18.3", bytes({0xf0, 0x8f, 0xbf, 0xbf}), fails_at(1));
    add("6.18.4", bytes({0xf8, 0x87, 0xbf, 0xbf, 0xbf}), fails_at(0));
    add("6.18.5", bytes({0xfc, 0x83, 0xbf, 0xbf, 0xbf, 0xbf}), fails_at(0));

    // Overlong NUL.
    add("6.19.1", bytes({0xc0, 0x80}), fails_at(0));
    add("6.19.2", bytes({0xe0, 0x80, 0x80}), fails_at(1));
    add("6.19.3", bytes({0xf0, 0x80, 0x80, 0x80}), fails_at(1));
    add("6.19.4", bytes({0xf8, 0x80, 0x80, 0x80, 0x80}), fails_at(0));
    add("6.19.5", bytes({0xfc, 0x80, 0x80, 0x80, 0x80, 0x80}), fails_at(0));

    // Single and paired UTF-16 surrogates: the second byte (A0..BF after ED) gives them away.
    const std::vector<std::string> surrogates = {
        bytes({0xed, 0xa0, 0x80}), bytes({0xed, 0xad, 0xbf}), bytes({0xed, 0xae, 0x80}),
        bytes({0xed, 0xaf, 0xbf}), bytes({0xed, 0xb0, 0x80}), bytes({0xed, 0xbe, 0x80}),
        bytes({0xed, 0xbf, 0xbf}),
    };
    for (std::size_t k = 0; k < surrogates.size(); ++k) {
        add("6.20." + std::to_string(k + 1), surrogates[k], fails_at(1));
    }
    const std::string high[] = {surrogates[0], surrogates[1], surrogates[2], surrogates[3]};
    const std::string low[] = {surrogates[4], surrogates[6]};
    int paired = 0;
    for (const auto& h : high) {
        for (const auto& l : low) add("6.21." + std::to_string(++paired), h + l, fails_at(1));
    }

    // Noncharacters are valid UTF-8.
    add("6.22.1", bytes({0xef, 0xbf, 0xbe}), valid);
    add("6.22.2", bytes({0xef, 0xbf, 0xbf}), valid);
    int nonchar = 2;
    for (unsigned lead = 0xf0; lead <= 0xf4; ++lead) {
        for (unsigned second : {0x8fu, 0x9fu, 0xafu, 0xbfu}) {
            if (lead == 0xf4 && second != 0x8f) continue;  // above U+10FFFF
            if (lead == 0xf0 && second == 0x8f) continue;  // overlong
            for (unsigned last : {0xbeu, 0xbfu}) {
                add("6.22." + std::to_string(++nonchar), bytes({lead, second, 0xbf, last}), valid);
            }
        }
    }

    // The Specials block, replacement character included.
    for (unsigned last = 0xb9; last <= 0xbf; ++last) {
        add("6.23." + std::to_string(last - 0xb8), bytes({0xef, 0xbf, last}), valid);
    }
    return cases;
}

}  // namespace

TEST_CASE("utf8: the reference decoder agrees with the hand-written Autobahn expectations") {
    const auto cases = autobahn_cases();
    CHECK(cases.size() == 4 + 5 + 11 + 4 + 2 + 4 + 3 + 5 + 8 + 5 + 10 + 1 + 3 + 5 + 5 + 5 + 7 + 8 + 34 + 7);
    for (const auto& c : cases) {
        INFO(c.id, ": ", hex(c.text));
        const verdict got = reference_check(c.text);
        CHECK(got.fail_at == c.expected.fail_at);
        CHECK(got.complete == c.expected.complete);
    }
}

TEST_CASE("utf8: Autobahn family 6, whole, byte by byte and split in two everywhere") {
    for (const auto& c : autobahn_cases()) {
        INFO("case ", c.id);
        check_all_ways(c.text, c.expected);
    }
}

TEST_CASE("utf8: code point boundaries") {
    struct boundary {
        std::uint32_t cp;
        verdict expected;
    };
    const boundary boundaries[] = {
        {0x0000, valid},      {0x007F, valid},       {0x0080, valid},       {0x07FF, valid},
        {0x0800, valid},      {0xD7FF, valid},       {0xD800, fails_at(1)}, {0xDBFF, fails_at(1)},
        {0xDC00, fails_at(1)}, {0xDFFF, fails_at(1)}, {0xE000, valid},       {0xFFFD, valid},
        {0xFFFF, valid},      {0x10000, valid},      {0x10FFFF, valid},     {0x110000, fails_at(1)},
        {0x13FFFF, fails_at(1)}, {0x140000, fails_at(0)}, {0x1FFFFF, fails_at(0)},
    };
    for (const auto& b : boundaries) {
        INFO("U+", b.cp);
        const std::string text = encode(b.cp);
        CHECK(reference_check(text) == b.expected);
        check_all_ways(text, b.expected);
        // The same code point between other text, so it is not at the start or end of a piece.
        const std::string padded = "ab\xc3\xa9" + text + "cd";
        verdict shifted = b.expected;
        if (shifted.fail_at != npos) shifted.fail_at += 4;
        check_all_ways(padded, shifted);
    }
}

TEST_CASE("utf8: fail fast across pieces") {
    starling::utf8_validator v;

    SUBCASE("Autobahn 6.4.1: the bad code point arrives in the second of three fragments") {
        CHECK(v.write("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));
        CHECK_FALSE(v.write("\xf4\x90\x80\x80"));
        CHECK_FALSE(v.write("edited"));
        CHECK_FALSE(v.finish());
    }
    SUBCASE("Autobahn 6.4.2: F4 ends the first fragment, 90 alone is the second") {
        CHECK(v.write("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4"));
        CHECK_FALSE(v.write("\x90"));
        CHECK_FALSE(v.write("\x80\x80"
                            "edited"));
    }
    SUBCASE("E0 80 is hopeless before its third byte arrives") {
        CHECK_FALSE(v.write("abc\xe0\x80"));
    }
    SUBCASE("ED A0 at the end of a piece is a surrogate already") {
        CHECK_FALSE(v.write("abc\xed\xa0"));
    }
    SUBCASE("F0 8F at the end of a piece is overlong already") {
        CHECK_FALSE(v.write("abc\xf0\x8f"));
    }
    SUBCASE("F5 at the end of a piece is out of range already") {
        CHECK_FALSE(v.write("abc\xf5"));
    }
    SUBCASE("a sequence completed over three pieces") {
        CHECK(v.write("\xf0"));
        CHECK_FALSE(v.finish());
        CHECK(v.write("\x9f"));
        CHECK(v.write("\x98"));
        CHECK_FALSE(v.finish());
        CHECK(v.write("\x80"));
        CHECK(v.finish());
    }
    SUBCASE("a carried sequence interrupted by ASCII") {
        CHECK(v.write("\xe2\x82"));
        CHECK_FALSE(v.write("a"));
    }
    SUBCASE("a carried sequence followed by a lone continuation byte") {
        CHECK(v.write("\xc3"));
        CHECK_FALSE(v.write("\xa9\xa9"));
    }
}

TEST_CASE("utf8: validator state") {
    starling::utf8_validator v;
    CHECK(v.finish());  // an empty message is valid
    CHECK(v.write(""));
    CHECK(v.write(std::string_view{}));
    CHECK(v.finish());

    CHECK(v.write("\xe2\x82"));
    CHECK(v.write(""));  // an empty piece keeps the carried bytes
    CHECK_FALSE(v.finish());
    CHECK(v.write("\xac"));
    CHECK(v.finish());

    CHECK_FALSE(v.write("\xff"));
    CHECK_FALSE(v.write("valid text"));  // failure sticks
    CHECK_FALSE(v.write(""));
    CHECK_FALSE(v.finish());

    v.reset();
    CHECK(v.finish());
    CHECK(v.write("valid text"));
    CHECK(v.finish());

    CHECK(v.write("\xf0\x9f"));
    v.reset();  // reset drops carried bytes too
    CHECK(v.finish());
    CHECK(v.write("a"));
    CHECK(v.finish());

    static_assert(noexcept(v.write("")));
    static_assert(noexcept(v.finish()));
    static_assert(noexcept(v.reset()));
    static_assert(noexcept(starling::is_valid_utf8("")));
}

TEST_CASE("utf8: every 1-, 2- and 3-byte sequence against the reference decoder") {
    std::size_t checked = 0;
    std::size_t mismatches = 0;
    std::string first_mismatch;
    auto compare = [&](std::string_view text) {
        ++checked;
        const verdict want = reference_check(text);
        bool ok = starling::is_valid_utf8(text) == (want == valid);

        starling::utf8_validator whole;
        ok = ok && whole.write(text) == (want.fail_at == npos) && whole.finish() == (want == valid);

        starling::utf8_validator bytewise;
        for (std::size_t i = 0; i < text.size(); ++i) {
            ok = ok && bytewise.write(text.substr(i, 1)) == (want.fail_at == npos || want.fail_at > i);
        }
        ok = ok && bytewise.finish() == (want == valid);

        if (!ok && mismatches++ == 0) first_mismatch = hex(text);
    };
    char buf[3];
    for (unsigned a = 0; a < 256; ++a) {
        buf[0] = static_cast<char>(a);
        compare({buf, 1});
        for (unsigned b = 0; b < 256; ++b) {
            buf[1] = static_cast<char>(b);
            compare({buf, 2});
            for (unsigned c = 0; c < 256; ++c) {
                buf[2] = static_cast<char>(c);
                compare({buf, 3});
            }
        }
    }
    INFO("first mismatch: ", first_mismatch);
    CHECK(checked == 256u + 256u * 256u + 256u * 256u * 256u);
    CHECK(mismatches == 0);
}

TEST_CASE("utf8: 4-byte sequences, sampled, against the reference decoder") {
    std::size_t mismatches = 0;
    std::string first_mismatch;
    auto compare = [&](std::string_view text) {
        const verdict want = reference_check(text);
        bool ok = starling::is_valid_utf8(text) == (want == valid);
        for (std::size_t cut = 0; cut <= text.size(); ++cut) {
            starling::utf8_validator v;
            const bool first_ok = want.fail_at == npos || want.fail_at >= cut;
            ok = ok && v.write(text.substr(0, cut)) == first_ok;
            ok = ok && v.write(text.substr(cut)) == (want.fail_at == npos);
            ok = ok && v.finish() == (want == valid);
        }
        if (!ok && mismatches++ == 0) first_mismatch = hex(text);
    };
    // Every first and second byte with the bytes around each class boundary in third and fourth place.
    const unsigned edges[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff};
    char buf[4];
    for (unsigned a = 0; a < 256; ++a) {
        for (unsigned b = 0; b < 256; ++b) {
            for (unsigned c : edges) {
                for (unsigned d : edges) {
                    buf[0] = static_cast<char>(a);
                    buf[1] = static_cast<char>(b);
                    buf[2] = static_cast<char>(c);
                    buf[3] = static_cast<char>(d);
                    compare({buf, 4});
                }
            }
        }
    }
    // Every 4-byte lead with every second, third and fourth byte, continuation or not.
    for (unsigned a = 0xf0; a <= 0xf4; ++a) {
        for (unsigned b = 0x70; b <= 0xc4; ++b) {
            for (unsigned c = 0x70; c <= 0xc4; c += 3) {
                for (unsigned d = 0x70; d <= 0xc4; d += 5) {
                    buf[0] = static_cast<char>(a);
                    buf[1] = static_cast<char>(b);
                    buf[2] = static_cast<char>(c);
                    buf[3] = static_cast<char>(d);
                    compare({buf, 4});
                }
            }
        }
    }
    INFO("first mismatch: ", first_mismatch);
    CHECK(mismatches == 0);
}

TEST_CASE("utf8: random mixtures of good and bad sequences in random pieces") {
    std::uint64_t state = 0x9E3779B97F4A7C15u;  // fixed seed: failures reproduce
    auto next = [&]() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    auto below = [&](std::uint64_t n) { return static_cast<std::size_t>(next() % n); };

    std::size_t mismatches = 0;
    std::string first_mismatch;
    for (int round = 0; round < 20000; ++round) {
        std::string text;
        const std::size_t tokens = below(40);
        const bool allow_bad = below(2) == 0;
        for (std::size_t t = 0; t < tokens; ++t) {
            switch (below(allow_bad ? 7 : 5)) {
            case 0: text += static_cast<char>('a' + below(26)); break;
            case 1: text += encode(0x80 + static_cast<std::uint32_t>(below(0x780))); break;
            case 2: {
                auto cp = 0x800 + static_cast<std::uint32_t>(below(0xF800));
                if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800;
                text += encode(cp);
                break;
            }
            case 3: text += encode(0x10000 + static_cast<std::uint32_t>(below(0x100000))); break;
            case 4: text += std::string(below(70), 'x'); break;  // long enough to reach simdjson
            case 5: text += static_cast<char>(below(256)); break;
            default: {
                const std::string whole = encode(0x80 + static_cast<std::uint32_t>(below(0x10FF80)));
                text += whole.substr(0, 1 + below(whole.size() - 1));  // a cut sequence
                break;
            }
            }
        }
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < text.size(); ++i) {
            if (below(4) == 0) cuts.push_back(i);
        }
        const verdict want = reference_check(text);
        bool ok = starling::is_valid_utf8(text) == (want == valid);
        starling::utf8_validator v;
        std::size_t start = 0;
        for (std::size_t k = 0; k <= cuts.size(); ++k) {
            const std::size_t end = k < cuts.size() ? cuts[k] : text.size();
            ok = ok && v.write(std::string_view(text).substr(start, end - start)) ==
                           (want.fail_at == npos || want.fail_at >= end);
            start = end;
        }
        ok = ok && v.finish() == (want == valid);
        if (!ok && mismatches++ == 0) first_mismatch = hex(text);
    }
    INFO("first mismatch: ", first_mismatch);
    CHECK(mismatches == 0);
}

TEST_CASE("utf8: a large message with a bad byte near the end") {
    // Over 1 MiB of 1-, 2-, 3- and 4-byte code points.
    std::string text;
    const std::string unit = "ascii \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 ";  // 17 bytes
    while (text.size() < (std::size_t{1} << 20) + 1000) text += unit;
    REQUIRE(starling::is_valid_utf8(text));

    // Piece sizes that cut code points everywhere, and one that holds it all.
    for (std::size_t piece : {std::size_t{1000}, std::size_t{4093}, std::size_t{65537}, text.size()}) {
        INFO("piece size ", piece);
        starling::utf8_validator v;
        bool all = true;
        for (std::size_t at = 0; at < text.size(); at += piece) all = all && v.write(std::string_view(text).substr(at, piece));
        CHECK(all);
        CHECK(v.finish());
    }

    const std::size_t bad = text.size() - 37;
    for (char bad_byte : {'\xff', '\x80', '\xc0'}) {
        std::string broken = text;
        broken[bad] = bad_byte;
        const verdict want = reference_check(broken);
        REQUIRE(want.fail_at != npos);
        REQUIRE(want.fail_at >= bad);
        CHECK_FALSE(starling::is_valid_utf8(broken));
        for (std::size_t piece : {std::size_t{1000}, std::size_t{4093}, std::size_t{65537}, broken.size()}) {
            INFO("piece size ", piece, ", bad byte ", hex(std::string(1, bad_byte)));
            starling::utf8_validator v;
            std::size_t first_false = npos;
            for (std::size_t at = 0; at < broken.size(); at += piece) {
                if (!v.write(std::string_view(broken).substr(at, piece)) && first_false == npos) first_false = at;
            }
            CHECK(first_false == want.fail_at / piece * piece);
            CHECK_FALSE(v.finish());
        }
    }

    // A surrogate in the middle of a 1 MiB piece.
    std::string surrogate = text;
    surrogate.replace(text.size() / 2 - text.size() / 2 % unit.size(), 3, "\xed\xa0\x80");
    CHECK_FALSE(starling::is_valid_utf8(surrogate));
}
