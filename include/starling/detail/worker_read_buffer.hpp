// One receive buffer per event loop, shared by every connection on that loop. A connection reads into
// it only when it can parse what arrives at once, and keeps for itself only what it cannot parse yet
// (bytes behind a message its handler has no room for). So an idle connection, or one between
// messages, holds no receive buffer of its own: what a connection costs follows what it is doing,
// not how many connections there are.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/execution_context.hpp>       // asio::execution_context::service: state per event loop
#include <cstddef>                          // std::size_t
#include <span>                             // std::span view of the buffer
#include <vector>                           // std::vector storage

namespace starling::detail {

/// Found with `asio::use_service<worker_read_buffer>(context)`. Everything on one loop runs on one
/// thread, and a connection uses the buffer only between two suspensions, so one buffer serves all.
class worker_read_buffer : public asio::execution_context::service {
public:
    using key_type = worker_read_buffer;
    static inline asio::execution_context::id id;

    explicit worker_read_buffer(asio::execution_context& context) : asio::execution_context::service(context) {}

    /// The buffer, allocated on first use. Its contents are only good until the user's next
    /// suspension: another connection of the loop may read into it then.
    std::span<char> get() {
        if (bytes_.empty()) bytes_.resize(size);
        return bytes_;
    }

    /// Big enough for many small frames, or a large frame's first 64 KiB, per read.
    static constexpr std::size_t size = 64 * 1024;

private:
    void shutdown() override {}

    std::vector<char> bytes_;
};

}  // namespace starling::detail
