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

    /// Appends to `out` the buffers of the bytes not yet written, front first: at most `max_buffers`
    /// buffers (what one system call takes) and, past the first frame, no more than `max_bytes`. A
    /// close frame ends the list, since nothing may be written after it. Returns the bytes listed.
    /// The buffers point into the queue: they are valid until the next push, consume or drop.
    std::size_t gather(std::vector<asio::const_buffer>& out, std::size_t max_buffers, std::size_t max_bytes) const {
        std::size_t bytes = 0;
        std::size_t skip = front_written_;  // only the front frame can be partly written
        for (std::size_t i = 0; i < frames_.size(); ++i) {
            const outbound_frame& f = frames_[i];
            const std::size_t buffers = f.shared || f.payload.empty() ? 1 : 2;
            if (out.size() + buffers > max_buffers || (i > 0 && bytes + f.size() > max_bytes)) break;
            if (f.shared) {
                add(out, bytes, skip, f.shared->data(), f.shared->size());
            } else {
                add(out, bytes, skip, f.header.data(), f.header_size);
                add(out, bytes, skip, f.payload.data(), f.payload.size());
            }
            if (f.is_close) break;
        }
        return bytes;
    }

    /// Records that the first `n` gathered bytes were written. Frames written whole leave the queue
    /// (their owned payloads go back to `pool` for reuse); a frame written in part stays at the front
    /// and the next gather starts where it stopped. Returns true when a close frame was completed.
    bool consume(std::size_t n, payload_pool& pool) {
        bytes_ -= n;
        n += front_written_;
        front_written_ = 0;
        bool closed = false;
        while (n != 0) {
            outbound_frame& f = frames_.front();
            const std::size_t size = f.size();
            if (n < size) {
                front_written_ = n;
                break;
            }
            n -= size;
            closed = closed || f.is_close;
            if (!f.shared) pool.give(std::move(f.payload));
            frames_.pop_front();
        }
        return closed;
    }

    /// Drops every frame not yet begun on the wire; a frame written in part stays, since a frame
    /// cut short would corrupt the stream.
    void drop_unsent() {
        const std::size_t keep = front_written_ != 0 ? 1 : 0;
        while (frames_.size() > keep) {
            bytes_ -= frames_.back().size();
            frames_.pop_back();
        }
    }

    void clear() {
        frames_.clear();
        bytes_ = 0;
        front_written_ = 0;
    }

private:
    /// Appends [data, data + size) less its first `skip` bytes (those already written).
    static void add(std::vector<asio::const_buffer>& out, std::size_t& bytes, std::size_t& skip, const void* data,
                    std::size_t size) {
        if (skip >= size) {
            skip -= size;
            return;
        }
        out.emplace_back(static_cast<const char*>(data) + skip, size - skip);
        bytes += size - skip;
        skip = 0;
    }

    ring<outbound_frame> frames_;
    std::size_t bytes_ = 0;
    std::size_t front_written_ = 0;  // bytes of the front frame already written
};

}  // namespace starling::detail
