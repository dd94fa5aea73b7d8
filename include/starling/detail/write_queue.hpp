// A connection's outbound frames, waiting for its one writer. Broadcast frames are shared, encoded
// once for every receiver; unicast frames keep their header inline and own their payload, so a send
// copies nothing it does not have to, and the writer hands header and payload to one gathered write.
#pragma once

#include <array>          // std::array inline frame header
#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/buffer.hpp>  // asio::const_buffer for gathered writes
#include <cstddef>        // std::size_t
#include <cstdint>        // std::uint8_t
#include <memory>         // std::shared_ptr shared broadcast frames
#include <string>         // std::string payloads
#include <utility>        // std::move
#include <vector>         // std::vector buffer list

#include "starling/detail/payload_pool.hpp"
#include "starling/detail/ring.hpp"
#include "starling/framer.hpp"

namespace starling::detail {

/// A whole encoded frame, shared by every connection that sends it.
using shared_frame = std::shared_ptr<const std::string>;

inline shared_frame make_shared_frame(opcode op, std::string_view payload) {
    return std::make_shared<const std::string>(encode_frame(op, payload));
}

struct outbound_frame {
    std::array<std::uint8_t, max_frame_header_size> header{};
    std::uint8_t header_size = 0;
    std::string payload;   // owned payload of a unicast frame
    shared_frame shared;   // or: a whole frame shared with other connections
    bool is_close = false;

    static outbound_frame unicast(opcode op, std::string payload) {
        outbound_frame f;
        frame_header h;
        h.op = op;
        h.payload_length = payload.size();
        f.header_size = static_cast<std::uint8_t>(write_frame_header(h, f.header));
        f.payload = std::move(payload);
        f.is_close = op == opcode::close;
        return f;
    }

    static outbound_frame broadcast(shared_frame frame) {
        outbound_frame f;
        f.shared = std::move(frame);
        return f;
    }

    std::size_t size() const noexcept { return shared ? shared->size() : header_size + payload.size(); }
};

class write_queue {
public:
    void push(outbound_frame frame) {
        bytes_ += frame.size();
        frames_.push_back(std::move(frame));
    }

    bool empty() const noexcept { return frames_.empty(); }
    /// Bytes queued and not yet written: what backpressure limits.
    std::size_t bytes() const noexcept { return bytes_; }

    /// What gather() put in one write.
    struct batch {
        std::size_t frames = 0;
        bool ends_with_close = false;  // nothing may be written after it
    };

    /// Appends the buffers of up to `max_frames` queued frames, and of no more than `max_bytes` (at
    /// least one frame, however big), to `out`: one gathered write sends many frames in one system
    /// call. A close frame ends a batch. The byte bound keeps a batch, which is released only when
    /// wholly written, small against the queue's high-water mark.
    batch gather(std::vector<asio::const_buffer>& out, std::size_t max_frames, std::size_t max_bytes) const {
        std::size_t n = 0;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < frames_.size(); ++i) {
            const outbound_frame& f = frames_[i];
            if (n == max_frames || (n > 0 && bytes + f.size() > max_bytes)) break;
            if (f.shared) {
                out.emplace_back(f.shared->data(), f.shared->size());
            } else {
                out.emplace_back(f.header.data(), f.header_size);
                if (!f.payload.empty()) out.emplace_back(f.payload.data(), f.payload.size());
            }
            bytes += f.size();
            ++n;
            if (f.is_close) return {n, true};
        }
        return {n, false};
    }

    /// Removes the first `n` frames (written); their owned payloads go back to `pool` for reuse.
    void pop(std::size_t n, payload_pool& pool) {
        for (std::size_t i = 0; i < n; ++i) {
            outbound_frame& f = frames_.front();
            bytes_ -= f.size();
            if (!f.shared) pool.give(std::move(f.payload));
            frames_.pop_front();
        }
    }

    /// Drops every frame after the first `keep` (those handed to a write in progress).
    void drop_unsent(std::size_t keep) {
        while (frames_.size() > keep) {
            bytes_ -= frames_.back().size();
            frames_.pop_back();
        }
    }

    void clear() {
        frames_.clear();
        bytes_ = 0;
    }

private:
    ring<outbound_frame> frames_;
    std::size_t bytes_ = 0;
};

}  // namespace starling::detail
