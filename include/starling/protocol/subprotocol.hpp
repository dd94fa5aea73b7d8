// Choosing a subprotocol (RFC 6455 sections 1.9 and 4.2.2): the client lists those it speaks in
// Sec-WebSocket-Protocol (one field or several, comma-separated), the server answers with exactly one
// of them, or none. The endpoint's own list is its order of preference: the first of its protocols
// that the client offered wins, wherever the client put it. The client's list is never echoed.
#pragma once

#include <cstddef>      // std::size_t
#include <optional>     // std::optional choice
#include <span>         // std::span of supported protocols
#include <string>       // std::string protocols and messages
#include <string_view>  // std::string_view tokens

#include "starling/http/headers.hpp"

namespace starling {

struct subprotocol_choice {
    bool offered = false;               // the client listed at least one protocol
    std::optional<std::size_t> chosen;  // the index in the endpoint's list, if one matched
};

/// True when the client's Sec-WebSocket-Protocol fields list `protocol` (exactly: protocol names are
/// case-sensitive tokens).
inline bool offers_subprotocol(const http::headers& fields, std::string_view protocol) {
    for (const std::string_view line : fields.get_all("Sec-WebSocket-Protocol")) {
        std::string_view rest = line;
        for (;;) {
            const std::size_t comma = rest.find(',');
            if (http::detail::trim_ows(rest.substr(0, comma)) == protocol) return true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

/// The first of `supported` that the request offers.
inline subprotocol_choice choose_subprotocol(const http::headers& fields, std::span<const std::string> supported) {
    subprotocol_choice choice;
    for (const std::string_view line : fields.get_all("Sec-WebSocket-Protocol"))
        if (!http::detail::trim_ows(line).empty()) choice.offered = true;
    if (!choice.offered) return choice;
    for (std::size_t i = 0; i < supported.size(); ++i) {
        if (offers_subprotocol(fields, supported[i])) {
            choice.chosen = i;
            break;
        }
    }
    return choice;
}

/// The 400 body for a client that offered none of `supported`: it names them, so the client's
/// author can see what to offer.
inline std::string unsupported_subprotocol_message(std::span<const std::string> supported) {
    std::string text = "Unsupported subprotocol: this endpoint speaks ";
    for (std::size_t i = 0; i < supported.size(); ++i) {
        if (i != 0) text += ", ";
        text += supported[i];
    }
    return text;
}

}  // namespace starling
