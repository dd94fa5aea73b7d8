// One connection's side of permessage-deflate: what the handshake agreed, and the codecs it needs.
// Without context takeover (the default, both ways) it holds no zlib state at all: it borrows its
// thread's compressor and inflater for one message at a time (protocol/deflate_codec.hpp). With
// context takeover it owns them, made on first use and kept for the connection's life, because the
// window must carry over from one message to the next.
#pragma once

#include <cstddef>      // std::size_t
#include <memory>       // std::unique_ptr owned codecs
#include <optional>     // std::optional agreement
#include <string>       // std::string payloads
#include <string_view>  // std::string_view input
#include <utility>      // std::swap

#include "starling/protocol/deflate_codec.hpp"
#include "starling/protocol/permessage_deflate.hpp"
#include "starling/session/payload_pool.hpp"
#include "starling/session/write_queue.hpp"

namespace starling::detail {

class message_compression {
public:
    /// The handshake agreed to `agreement`, under the endpoint's `options`.
    void agree(const deflate_agreement& agreement, const compression_options& options) {
        if constexpr (deflate_available) {
            agreed_ = agreement;
            threshold_ = options.threshold;
            level_ = options.level;
            mem_level_ = options.mem_level;
        }
    }

    /// Compression was negotiated: RSV1 may arrive, and our messages may be compressed.
    bool active() const noexcept { return agreed_.has_value(); }
    const std::optional<deflate_agreement>& agreement() const noexcept { return agreed_; }

    /// Whether a payload of `size` bytes is sent compressed.
    bool worth_compressing(std::size_t size) const noexcept { return active() && size >= threshold_; }

#ifndef STARLING_NO_DEFLATE
    /// What our compressor's output depends on, for sharing a broadcast's compressed form.
    deflate_setting setting() const noexcept { return {agreed_ ? agreed_->server_max_window_bits : 15, mem_level_, level_}; }
    /// True when this connection can take a broadcast compressed once for everyone with its setting:
    /// no server context takeover, so each message stands alone.
    bool shares_compressed_broadcasts() const noexcept { return active() && agreed_->server_no_context_takeover; }

    /// Compresses `payload` (replacing it; its old storage goes to `pool`).
    void compress(std::string& payload, payload_pool& pool) {
        std::string out = pool.take(payload.size() / 2 + 64);
        const bool keep = !agreed_->server_no_context_takeover;
        if (keep) {
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
        if (agreed_->client_no_context_takeover) return shared_inflater().decompress(in, out, limit, false);
        if (!own_inflater_) own_inflater_ = std::make_unique<inflater>(agreed_->client_max_window_bits);
        return own_inflater_->decompress(in, out, limit, true);
    }
#else
    void compress(std::string&, payload_pool&) {}
    inflate_status inflate(std::string_view, std::string&, std::size_t) { return inflate_status::corrupt; }
#endif

private:
    std::optional<deflate_agreement> agreed_;
    std::size_t threshold_ = 0;
    int level_ = 1;
    int mem_level_ = 8;
#ifndef STARLING_NO_DEFLATE
    std::unique_ptr<deflater> own_deflater_;  // with server context takeover only
    std::unique_ptr<inflater> own_inflater_;  // with client context takeover only
#endif
};

}  // namespace starling::detail
