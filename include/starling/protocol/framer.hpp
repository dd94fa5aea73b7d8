// RFC 6455 section 5: the frame header, its incremental parser and serialiser, and payload masking.
// Pure: bytes in, bytes out, no sockets. The message layer on top is message_reader.hpp.
#pragma once

#include <array>    // std::array masking key and header buffer
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint8_t, std::uint64_t
#include <cstring>  // std::memcpy for unaligned word access
#include <span>     // std::span input and output views
#include <string>   // std::string encode_frame result
#include <string_view>  // std::string_view payloads
#include <system_error> // std::error_code

#include "starling/protocol/error.hpp"

namespace starling {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

/// Opcodes 0x3-0x7 and 0xB-0xF have no meaning without an extension.
constexpr bool is_reserved_opcode(std::uint8_t raw) noexcept {
    return (raw >= 0x3 && raw <= 0x7) || raw >= 0xB;
}

/// Which end of the connection we are: a server requires masked frames, a client requires unmasked ones.
enum class role { server, client };

/// Largest control frame payload (RFC 6455 5.5).
inline constexpr std::size_t max_control_payload = 125;
/// Largest frame header: 2 fixed bytes, 8 bytes of extended length, 4 bytes of masking key.
inline constexpr std::size_t max_frame_header_size = 14;

using masking_key = std::array<std::uint8_t, 4>;

struct frame_header {
    bool fin = true;
    bool rsv1 = false;
    bool rsv2 = false;
    bool rsv3 = false;
    opcode op = opcode::text;
    bool masked = false;
    masking_key key{};
    std::uint64_t payload_length = 0;
};

/// XORs `data` with the masking key, as if `data` started `offset` bytes into the frame's payload (so a
/// payload can be unmasked in pieces). Works eight bytes at a time; the compiler vectorises the loop.
inline void apply_mask(std::span<char> data, const masking_key& key, std::uint64_t offset = 0) noexcept {
    std::array<std::uint8_t, 8> rotated{};
    for (std::size_t i = 0; i < 8; ++i) rotated[i] = key[(offset + i) % 4];
    std::uint64_t word_key = 0;
    std::memcpy(&word_key, rotated.data(), sizeof word_key);

    char* p = data.data();
    std::size_t n = data.size();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, p + i, 8);
        word ^= word_key;
        std::memcpy(p + i, &word, 8);
    }
    for (; i < n; ++i) p[i] = static_cast<char>(static_cast<std::uint8_t>(p[i]) ^ rotated[i % 8]);
}

/// Serialises `h` into `out` in its shortest length encoding; returns the header's size (2 to 14).
inline std::size_t write_frame_header(const frame_header& h,
                                      std::span<std::uint8_t, max_frame_header_size> out) noexcept {
    out[0] = static_cast<std::uint8_t>((h.fin ? 0x80 : 0) | (h.rsv1 ? 0x40 : 0) | (h.rsv2 ? 0x20 : 0) |
                                       (h.rsv3 ? 0x10 : 0) | static_cast<std::uint8_t>(h.op));
    const std::uint8_t mask_bit = h.masked ? 0x80 : 0;
    std::size_t size = 2;
    if (h.payload_length < 126) {
        out[1] = static_cast<std::uint8_t>(mask_bit | h.payload_length);
    } else if (h.payload_length <= 0xFFFF) {
        out[1] = mask_bit | 126;
        out[2] = static_cast<std::uint8_t>(h.payload_length >> 8);
        out[3] = static_cast<std::uint8_t>(h.payload_length);
        size = 4;
    } else {
        out[1] = mask_bit | 127;
        for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::uint8_t>(h.payload_length >> (56 - 8 * i));
        size = 10;
    }
    if (h.masked) {
        std::memcpy(out.data() + size, h.key.data(), 4);
        size += 4;
    }
    return size;
}

/// A whole frame as bytes: header then payload, masked when `key` is given (clients mask, servers don't).
inline std::string encode_frame(opcode op, std::string_view payload, bool fin = true,
                                const masking_key* key = nullptr) {
    frame_header h;
    h.fin = fin;
    h.op = op;
    h.payload_length = payload.size();
    if (key != nullptr) {
        h.masked = true;
        h.key = *key;
    }
    std::array<std::uint8_t, max_frame_header_size> header{};
    const std::size_t header_size = write_frame_header(h, header);
    std::string frame;
    frame.resize(header_size + payload.size());
    std::memcpy(frame.data(), header.data(), header_size);
    if (!payload.empty()) std::memcpy(frame.data() + header_size, payload.data(), payload.size());
    if (key != nullptr) apply_mask(std::span<char>(frame).subspan(header_size), *key);
    return frame;
}

enum class header_status { need_more, complete, failed };

/// What the header parser checks a header against.
struct header_limits {
    role local_role = role::server;
    /// Largest data frame payload accepted, inclusive.
    std::uint64_t max_frame_size = UINT64_MAX;
    /// permessage-deflate was negotiated: RSV1 marks the first frame of a compressed message, and is
    /// still an error on a control frame or a continuation (RFC 7692 section 6).
    bool allow_rsv1 = false;
};

/// Incremental frame-header parser. Feed it bytes in any chunking; it stops at the end of a header and
/// checks everything the header alone can tell (reserved bits and opcodes, masking for the role,
/// control frame rules, length encoding, the frame size limit), so an oversized frame is refused before
/// a byte of its payload is buffered.
class frame_header_parser {
public:
    explicit frame_header_parser(header_limits lim = {}) noexcept : limits_(lim) {}

    /// Consumes header bytes from the front of `in` and adds their number to `consumed`.
    header_status put(std::span<const std::uint8_t> in, std::size_t& consumed) noexcept {
        // Fast path: the whole header is in `in` and nothing is buffered.
        if (buffered_ == 0 && in.size() >= 2) {
            const std::size_t need = header_size(in[1]);
            if (in.size() >= need) {
                consumed += need;
                return decode(in.first(need));
            }
        }
        std::size_t need = buffered_ >= 2 ? header_size(buffer_[1]) : 2;
        std::size_t i = 0;
        while (buffered_ < need && i < in.size()) {
            buffer_[buffered_++] = in[i++];
            if (buffered_ == 2) need = header_size(buffer_[1]);
        }
        consumed += i;
        if (buffered_ < need) return header_status::need_more;
        const std::size_t size = buffered_;
        buffered_ = 0;
        return decode(std::span<const std::uint8_t>(buffer_.data(), size));
    }

    const frame_header& header() const noexcept { return header_; }
    std::error_code error() const noexcept { return error_; }
    void reset() noexcept { buffered_ = 0; error_ = {}; }

private:
    /// The header's full size, known from its second byte.
    static std::size_t header_size(std::uint8_t b1) noexcept {
        const std::uint8_t len7 = b1 & 0x7F;
        return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
    }

    header_status fail(starling::error e) noexcept {
        error_ = make_error_code(e);
        return header_status::failed;
    }

    header_status decode(std::span<const std::uint8_t> bytes) noexcept {
        frame_header& h = header_;
        const std::uint8_t b0 = bytes[0];
        const std::uint8_t b1 = bytes[1];
        h.fin = (b0 & 0x80) != 0;
        h.rsv1 = (b0 & 0x40) != 0;
        h.rsv2 = (b0 & 0x20) != 0;
        h.rsv3 = (b0 & 0x10) != 0;
        const std::uint8_t raw_op = b0 & 0x0F;
        h.masked = (b1 & 0x80) != 0;
        const std::uint8_t len7 = b1 & 0x7F;

        if ((h.rsv1 && !limits_.allow_rsv1) || h.rsv2 || h.rsv3) return fail(starling::error::reserved_bits_set);
        if (is_reserved_opcode(raw_op)) return fail(starling::error::reserved_opcode);
        h.op = static_cast<opcode>(raw_op);
        if (h.rsv1 && (is_control(h.op) || h.op == opcode::continuation))
            return fail(starling::error::compressed_control_or_continuation);
        if (limits_.local_role == role::server && !h.masked) return fail(starling::error::unmasked_client_frame);
        if (limits_.local_role == role::client && h.masked) return fail(starling::error::masked_server_frame);

        std::size_t pos = 2;
        if (len7 < 126) {
            h.payload_length = len7;
        } else if (len7 == 126) {
            h.payload_length = (std::uint64_t{bytes[2]} << 8) | bytes[3];
            pos = 4;
            if (h.payload_length < 126) return fail(starling::error::non_minimal_length);
        } else {
            std::uint64_t len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | bytes[2 + i];
            pos = 10;
            if (len >> 63) return fail(starling::error::length_top_bit_set);
            if (len <= 0xFFFF) return fail(starling::error::non_minimal_length);
            h.payload_length = len;
        }
        if (is_control(h.op)) {
            if (!h.fin) return fail(starling::error::fragmented_control_frame);
            if (h.payload_length > max_control_payload) return fail(starling::error::control_frame_too_large);
        }
        if (h.masked) std::memcpy(h.key.data(), bytes.data() + pos, 4);
        // Control frames are bounded by the 125-byte rule above; the size limit is for data frames.
        if (!is_control(h.op) && h.payload_length > limits_.max_frame_size) return fail(starling::error::frame_too_big);
        return header_status::complete;
    }

    header_limits limits_;
    frame_header header_{};
    std::array<std::uint8_t, max_frame_header_size> buffer_{};
    std::size_t buffered_ = 0;
    std::error_code error_{};
};

}  // namespace starling
