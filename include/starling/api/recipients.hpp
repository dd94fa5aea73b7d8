// Who a broadcast reaches. The fan-out itself (one shared frame, delivered to each receiver on its
// own thread, in order) is websocket::broadcast; the frame sharing is detail/write_queue.hpp.
#pragma once

namespace starling {

/// Recipients of websocket::broadcast: every open connection of the endpoint, or all but the sender.
enum class recipients { everyone, others };

}  // namespace starling
