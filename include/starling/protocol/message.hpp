// A received WebSocket message with its type.
#pragma once

#include <string>       // std::string payload
#include <string_view>  // std::string_view accessors

namespace starling {

enum class message_type { text, binary };

struct message {
    message_type type = message_type::text;
    std::string data;

    bool is_text() const noexcept { return type == message_type::text; }
    bool is_binary() const noexcept { return type == message_type::binary; }
    std::string_view view() const noexcept { return data; }
};

}  // namespace starling
