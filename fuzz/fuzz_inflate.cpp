// Fuzzes the permessage-deflate decompressor: the input (after one control byte) is a peer's
// compressed message. Whatever it is, inflation must end (no hang), never hold more than the limit
// plus one byte, say too_big exactly when the output would pass the limit, and leave the inflater
// usable: a known message inflates correctly right after. The control byte picks the limit and
// whether the input is inflated whole or split in two messages with context kept.
#include <starling/protocol/deflate_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t control = data[0];
    const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    const std::size_t limit = std::size_t{1} << (control & 0x0F);  // 1 byte to 32 KiB
    const bool keep = (control & 0x10) != 0;

    starling::inflater z;
    std::string out;
    auto check = [&](starling::inflate_status status) {
        if (out.size() > limit + 1) __builtin_trap();
        if (status == starling::inflate_status::too_big && out.size() != limit + 1) __builtin_trap();
        if (status == starling::inflate_status::ok && out.size() > limit) __builtin_trap();
    };
    if (keep) {
        const std::size_t half = input.size() / 2;
        check(z.decompress(input.substr(0, half), out, limit, true));
        check(z.decompress(input.substr(half), out, limit, false));
    } else {
        check(z.decompress(input, out, limit, false));
    }
    // Reset after whatever happened: RFC 7692's "Hello" inflates.
    static constexpr char hello[] = {'\xf2', '\x48', '\xcd', '\xc9', '\xc9', '\x07', '\x00'};
    if (z.decompress(std::string_view(hello, sizeof hello), out, 100, false) != starling::inflate_status::ok ||
        out != "Hello")
        __builtin_trap();
    return 0;
}
