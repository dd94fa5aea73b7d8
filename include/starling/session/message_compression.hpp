// One connection's side of permessage-deflate, on a server or a client: what the handshake agreed,
// seen as what we send and what we receive, and the codecs that needs. Without context takeover
// (the server's default, both ways) it holds no zlib state at all: it borrows its thread's
// compressor and inflater for one message at a time (protocol/deflate_codec.hpp). With context
// takeover it owns them, made on first use and kept for the connection's life, because the window
// must carry over from one message to the next.
#pragma once

#include <algorithm>    // std::max window
#include <cstddef>      // std::size_t
#include <memory>       // std::unique_ptr owned codecs
#include <string>       // std::string payloads
#include <string_view>  // std::string_view input
#include <utility>      // std::swap

#include "starling/protocol/deflate_codec.hpp"
#include "starling/protocol/framer.hpp"  // role
#include "starling/protocol/permessage_deflate.hpp"
#include "starling/session/payload_pool.hpp"
#include "starling/session/write_queue.hpp"

namespace starling::detail {

/// What our compressor is tuned with beyond what was negotiated: the endpoint's or the client's
/// settings.
struct compressor_tuning {
    std::size_t threshold = 256;
    int level = 1;
    int mem_level = 8;
};
inline compressor_tuning tuning_of(const compression_options& o) noexcept { return {o.threshold, o.level, o.mem_level}; }
inline compressor_tuning tuning_of(const client_compression_options& o) noexcept { return {o.threshold, o.level, o.mem_level}; }

class message_compression {
public:
    /// The handshake agreed to `agreement`, and this end of the connection is `local`: the server's
    /// parameters are our compressor's on a server and our inflater's on a client.
    void agree(const deflate_agreement& agreement, role local, const compressor_tuning& tuning) {
        if constexpr (deflate_available) {
            const direction server{agreement.server_max_window_bits, agreement.server_no_context_takeover};
            const direction client{agreement.client_max_window_bits, agreement.client_no_context_takeover};
            sending_ = local == role::server ? server : client;
            receiving_ = local == role::server ? client : server;
            active_ = true;
            threshold_ = tuning.threshold;
            level_ = tuning.level;
            mem_level_ = tuning.mem_level;
        }
    }

    /// Compression was negotiated: RSV1 may arrive, and our messages may be compressed.
    bool active() const noexcept { return active_; }

    /// Whether a payload of `size` bytes is sent compressed. Never when we were held to an 8-bit
    /// window: zlib cannot keep to one, and a message may always go uncompressed.
    bool worth_compressing(std::size_t size) const noexcept {
        return active_ && size >= threshold_ && sending_.window_bits >= 9;
    }

#ifndef STARLING_NO_DEFLATE
    /// What our compressor's output depends on, for sharing a broadcast's compressed form.
    deflate_setting setting() const noexcept { return {sending_.window_bits, mem_level_, level_}; }
    /// True when this connection can take a broadcast compressed once for everyone with its setting:
    /// no context takeover on our side, so each message stands alone.
    bool shares_compressed_broadcasts() const noexcept { return active_ && sending_.no_context_takeover; }

    /// Compresses `payload` (replacing it; its old storage goes to `pool`).
    void compress(std::string& payload, payload_pool& pool) {
        std::string out = pool.take(payload.size() / 2 + 64);
        if (!sending_.no_context_takeover) {
            if (!own_deflater_) own_deflater_ = std::make_unique<deflater>(setting());
            own_deflater_->compress(payload, out, true);
        } else {
            shared_deflater(setting()).compress(payload, out, false);
        }
        std::swap(payload, out);
        pool.give(std::move(out));
    }

    /// Inflates a compressed message into `out`, at most `limit` bytes.
    inflate_status inflate(std::string_view in, std::string& out, std::size_t limit) {
        if (receiving_.no_context_takeover) return shared_inflater().decompress(in, out, limit, false);
        // Asked for 8 bits, zlib's compressors use 9: an inflater of 9 reads both.
        if (!own_inflater_) own_inflater_ = std::make_unique<inflater>(std::max(receiving_.window_bits, 9));
        return own_inflater_->decompress(in, out, limit, true);
    }
#else
    void compress(std::string&, payload_pool&) {}
    inflate_status inflate(std::string_view, std::string&, std::size_t) { return inflate_status::corrupt; }
#endif

private:
    /// One way of the connection: the window its compressor keeps to, and whether each message stands
    /// alone.
    struct direction {
        int window_bits = 15;
        bool no_context_takeover = true;
    };
    bool active_ = false;
    direction sending_;
    direction receiving_;
    std::size_t threshold_ = 0;
    int level_ = 1;
    int mem_level_ = 8;
#ifndef STARLING_NO_DEFLATE
    std::unique_ptr<deflater> own_deflater_;  // with context takeover on our side only
    std::unique_ptr<inflater> own_inflater_;  // with context takeover on the peer's side only
#endif
};

}  // namespace starling::detail
