// The compressor and decompressor of permessage-deflate (RFC 7692 section 7.2), over zlib's raw
// deflate. A message is compressed with a sync flush whose trailing 00 00 FF FF is removed; it is
// inflated with those four bytes put back. Inflation is bounded: it grows its output up to a limit
// and stops there, so a few bytes that would inflate to gigabytes cost no more than the limit.
//
// Without context takeover nothing needs to outlive one message, so the codecs are per thread
// (shared_deflater, shared_inflater), reset between messages: a connection then holds no zlib state.
// With it, the connection owns its codec and its window stays.
//
// With STARLING_NO_DEFLATE defined, zlib is not used: this header declares only deflate_available
// (false), and every offer is declined.
#pragma once

#include <cstddef>      // std::size_t
#include <string>       // std::string output
#include <string_view>  // std::string_view input

#ifndef STARLING_NO_DEFLATE
#include <zlib.h>  // deflate, inflate (Debian: zlib1g-dev; link with -lz)

#include <algorithm>  // std::min, std::max
#include <array>      // std::array of codec settings
#include <cstdint>    // std::uint8_t, SIZE_MAX
#include <memory>     // std::unique_ptr per-thread codecs
#include <new>        // std::bad_alloc
#include <vector>     // std::vector per-thread cache
#endif

namespace starling {

/// How inflating a message ended.
enum class inflate_status { ok, too_big, corrupt };

#ifdef STARLING_NO_DEFLATE
inline constexpr bool deflate_available = false;
#else
inline constexpr bool deflate_available = true;

/// The four bytes a sync flush ends with, which permessage-deflate leaves off the wire.
inline constexpr std::array<std::uint8_t, 4> deflate_sync_tail{0x00, 0x00, 0xFF, 0xFF};

/// What a compressor's output depends on: messages compressed with the same setting and no context
/// takeover are the same bytes, whoever they go to.
struct deflate_setting {
    int window_bits = 15;
    int mem_level = 8;
    int level = 1;
    friend bool operator==(const deflate_setting&, const deflate_setting&) = default;
};

class deflater {
public:
    explicit deflater(deflate_setting setting) : setting_(setting) {
        if (deflateInit2(&z_, setting.level, Z_DEFLATED, -setting.window_bits, setting.mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
    }
    deflater(const deflater&) = delete;
    deflater& operator=(const deflater&) = delete;
    ~deflater() { deflateEnd(&z_); }

    const deflate_setting& setting() const noexcept { return setting_; }

    /// Compresses one message into `out` (replacing what it held). With `keep_context`, the window
    /// carries over to the next message (context takeover); otherwise the next starts afresh.
    void compress(std::string_view in, std::string& out, bool keep_context) {
        out.clear();
        out.resize(deflateBound(&z_, in.size()) + 8);
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        std::size_t produced = 0;
        for (;;) {
            z_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
            z_.avail_out = static_cast<uInt>(out.size() - produced);
            deflate(&z_, Z_SYNC_FLUSH);
            produced = out.size() - z_.avail_out;
            if (z_.avail_out != 0) break;  // the flush is complete
            out.resize(out.size() * 2);
        }
        // A sync flush always ends in the tail; the message goes without it.
        out.resize(produced >= 4 ? produced - 4 : produced);
        if (!keep_context) deflateReset(&z_);
    }

private:
    deflate_setting setting_;
    z_stream z_{};
};

class inflater {
public:
    explicit inflater(int window_bits = 15) {
        if (inflateInit2(&z_, -window_bits) != Z_OK) throw std::bad_alloc();
    }
    inflater(const inflater&) = delete;
    inflater& operator=(const inflater&) = delete;
    ~inflater() { inflateEnd(&z_); }

    /// Inflates one whole message into `out` (replacing what it held), never letting `out` hold more
    /// than `limit` bytes: one more byte of output is too_big, and inflation stops there. Corrupt
    /// input is corrupt. Either way nothing more is done; the inflater is reset for the next message
    /// unless `keep_context` (and the message was good).
    inflate_status decompress(std::string_view in, std::string& out, std::size_t limit, bool keep_context) {
        out.clear();
        if (limit == SIZE_MAX) --limit;  // one byte over it must be representable
        // A first guess at the size from the input (text inflates a few times over), so a small
        // message gets a small buffer, as an uncompressed one would: a larger one than needed, freed
        // while the connection's next allocations are made, would leave holes behind it.
        const std::size_t guess = std::min(limit + 1, std::max<std::size_t>(4 * in.size() + 64, min_chunk));
        if (out.capacity() < guess) grow(out, guess);
        inflate_status status = feed(in, out, limit);
        if (status == inflate_status::ok && !ended_)
            status = feed({reinterpret_cast<const char*>(deflate_sync_tail.data()), deflate_sync_tail.size()}, out, limit);
        if (status != inflate_status::ok || !keep_context || ended_) {
            inflateReset(&z_);
            ended_ = false;
        }
        return status;
    }

private:
    inflate_status feed(std::string_view in, std::string& out, std::size_t limit) {
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        for (;;) {
            const std::size_t produced = out.size();
            if (out.capacity() - produced < 32) {
                // Grow with what has been produced, never past one byte over the limit.
                const std::size_t want = std::min(std::max<std::size_t>(2 * produced, min_chunk), limit + 1);
                if (want > out.capacity()) grow(out, want);
            }
            // At least one byte of room: produced never exceeds the limit here.
            const std::size_t room = std::min(out.capacity(), limit + 1) - produced;
            out.resize(produced + room);
            z_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
            z_.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&z_, Z_SYNC_FLUSH);
            // Drop the room zlib left unused. erase, not resize: resize() has a growing branch, and
            // g++ 12 at -O2 cannot see that avail_out never exceeds the size, so it warns
            // (-Wstringop-overflow) about a memset that never runs, in users' builds too.
            out.erase(out.size() - z_.avail_out);
            if (out.size() > limit) return inflate_status::too_big;
            if (rc == Z_STREAM_END) {
                // A final block ends the stream; whatever follows it is not part of any message.
                ended_ = true;
                return inflate_status::ok;
            }
            if (rc == Z_BUF_ERROR) return inflate_status::ok;  // no progress possible: all input is taken
            if (rc != Z_OK) return inflate_status::corrupt;
            // Done when the input is used up and the output did not fill (nothing is pending).
            if (z_.avail_in == 0 && z_.avail_out != 0) return inflate_status::ok;
        }
    }

    /// Gives `out` room for exactly `capacity` bytes: std::string's reserve() may double instead,
    /// which past half the limit would allocate more than the limit.
    static void grow(std::string& out, std::size_t capacity) {
        std::string bigger;
        bigger.reserve(capacity);
        bigger.assign(out);
        out.swap(bigger);
    }

    static constexpr std::size_t min_chunk = 256;
    z_stream z_{};
    bool ended_ = false;
};

/// This thread's compressor for `setting`, without context takeover: one per setting per thread,
/// shared by every connection on it (a connection without server context takeover holds none).
inline deflater& shared_deflater(const deflate_setting& setting) {
    thread_local std::vector<std::unique_ptr<deflater>> cache;
    for (const auto& d : cache)
        if (d->setting() == setting) return *d;
    cache.push_back(std::make_unique<deflater>(setting));
    return *cache.back();
}

/// This thread's inflater for messages sent without client context takeover, whatever their window.
inline inflater& shared_inflater() {
    thread_local inflater one(15);
    return one;
}
#endif

}  // namespace starling
