// RFC 7692: the permessage-deflate extension's negotiation, sans I/O and without zlib. The server
// reads the client's offers from its Sec-WebSocket-Extensions fields, accepts the first one it can
// honour, and answers with exactly what was agreed; an offer it cannot honour (an unknown parameter,
// a bad value, a parameter twice) is declined, and the connection goes on uncompressed. The client
// makes one offer and holds the server's answer to it: anything it did not offer, or cannot keep
// to, fails the handshake (a client cannot decline). The compression itself is
// protocol/deflate_codec.hpp.
#pragma once

#include <algorithm>    // std::min of window sizes
#include <cstddef>      // std::size_t
#include <optional>     // std::optional agreement
#include <string>       // std::string response line
#include <string_view>  // std::string_view header values
#include <vector>       // std::vector of field values

#include "starling/http/headers.hpp"  // tokens and optional whitespace, as HTTP defines them

namespace starling {

/// Per-endpoint compression settings (websocket_options::compression).
struct compression_options {
    /// Accept permessage-deflate when the client offers it (every browser does, and Python's
    /// websockets client): on by default. Messages below `threshold` go uncompressed anyway.
    bool enabled = true;
    /// Keep the server's compression state between messages: better ratio on similar messages, at
    /// the cost of a zlib compressor held per connection (see README's memory table). Off by default:
    /// then no state is held between messages, and a broadcast is compressed once for every receiver.
    bool server_context_takeover = false;
    /// Let the client keep its compression state between messages: the server then holds an
    /// inflater per connection. Off by default (the response says client_no_context_takeover).
    bool client_context_takeover = false;
    /// LZ77 window of the server's compressor, 9 to 15 (zlib cannot make 8-bit raw streams); the
    /// client may ask for less.
    int server_max_window_bits = 15;
    /// The window the client is asked to keep to, 8 to 15, when its offer allows asking. Only worth
    /// lowering with client context takeover (it bounds the inflater each connection keeps).
    int client_max_window_bits = 15;
    /// zlib's memLevel for the compressor, 1 to 9: memory of its hash tables (8 is zlib's default).
    int mem_level = 8;
    /// zlib's compression level, 1 (fastest) to 9 (smallest).
    int level = 1;
    /// Messages shorter than this many bytes are sent uncompressed (RSV1 clear): compressing a few
    /// bytes costs more time than it saves on the wire.
    std::size_t threshold = 256;
};

/// What a client offers (client_options::compression). Its defaults make the offer browsers and
/// Python's websockets client make, `permessage-deflate; client_max_window_bits`: the server decides
/// the rest.
struct client_compression_options {
    /// Offer permessage-deflate. The server may decline it; messages below `threshold` go
    /// uncompressed anyway.
    bool enabled = true;
    /// Offer client_no_context_takeover: each of our messages is compressed on its own, so no
    /// compressor is kept between them (a thread's shared one is borrowed), whatever the server says.
    bool client_no_context_takeover = false;
    /// Offer server_no_context_takeover: the server must compress each message on its own, so no
    /// inflater is kept between them. A server that does not agree fails the handshake.
    bool server_no_context_takeover = false;
    /// The window our compressor keeps to, 9 to 15 (zlib cannot make 8-bit raw streams), offered as
    /// client_max_window_bits (a value only below 15); the server may ask for less.
    int client_max_window_bits = 15;
    /// Whether client_max_window_bits is in the offer at all. Without it, the server may not ask us
    /// for a smaller window: an answer that does fails the handshake.
    bool offer_client_max_window_bits = true;
    /// The window the server is asked to keep to, 8 to 15 (15: nothing asked). A smaller window is a
    /// smaller inflater when the server keeps its context.
    int server_max_window_bits = 15;
    /// zlib's memLevel (1 to 9) and compression level (1 to 9) for our compressor.
    int mem_level = 8;
    int level = 1;
    /// Messages shorter than this many bytes are sent uncompressed.
    std::size_t threshold = 256;
};

/// What one connection agreed to.
struct deflate_agreement {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    int server_max_window_bits = 15;  // our compressor's window
    int client_max_window_bits = 15;  // the client's, which our inflater needs
    /// Whether server_max_window_bits / client_max_window_bits appear in the response.
    bool server_window_named = false;
    bool client_window_named = false;
};

namespace detail {

/// One parameter of an extension offer: a name, and a value if it had one.
struct extension_param {
    std::string name;
    std::optional<std::string> value;
};

/// One element of an extension list (RFC 6455 section 9.1): a token, then ;-separated parameters,
/// each `token [= (token | quoted-string)]`. A quoted value's content must itself be a token.
struct extension_offer {
    std::string name;
    std::vector<extension_param> params;
    bool well_formed = true;
};

/// Splits a quoted-string's content out of `s` (which starts with '"'), advancing `s` past it.
inline std::optional<std::string> take_quoted(std::string_view& s) {
    std::string out;
    for (std::size_t i = 1; i < s.size(); ++i) {
        if (s[i] == '\\') {
            if (++i == s.size()) return std::nullopt;
            out += s[i];
        } else if (s[i] == '"') {
            s.remove_prefix(i + 1);
            return out;
        } else {
            out += s[i];
        }
    }
    return std::nullopt;
}

/// Parses a whole Sec-WebSocket-Extensions value into its offers, in order. A malformed element
/// comes back marked so (it is declined, like an offer with a bad parameter); the rest stand.
inline std::vector<extension_offer> parse_extension_list(std::string_view value) {
    std::vector<extension_offer> offers;
    extension_offer current;
    bool in_offer = false;
    auto finish = [&] {
        if (in_offer) offers.push_back(std::move(current));
        current = {};
        in_offer = false;
    };
    while (!value.empty()) {
        // The next item up to ',' or ';' (a quoted-string may hold either).
        std::size_t i = 0;
        while (i < value.size() && value[i] != ',' && value[i] != ';' && value[i] != '=' && value[i] != '"') ++i;
        const std::string_view name = http::detail::trim_ows(value.substr(0, i));
        value.remove_prefix(i);
        std::optional<std::string> param_value;
        bool ok = http::detail::is_token(name);
        if (!value.empty() && value.front() == '=') {
            value.remove_prefix(1);
            std::size_t lead = 0;
            while (lead < value.size() && http::detail::is_ows(value[lead])) ++lead;
            value.remove_prefix(lead);
            if (!value.empty() && value.front() == '"') {
                param_value = take_quoted(value);
                if (!param_value) {
                    ok = false;
                    value = {};
                }
            } else {
                std::size_t j = 0;
                while (j < value.size() && value[j] != ',' && value[j] != ';') ++j;
                param_value = std::string(http::detail::trim_ows(value.substr(0, j)));
                value.remove_prefix(j);
            }
            if (ok && !http::detail::is_token(*param_value)) ok = false;
            // After a value, only spaces may come before the separator.
            std::size_t k = 0;
            while (k < value.size() && http::detail::is_ows(value[k])) ++k;
            if (k < value.size() && value[k] != ',' && value[k] != ';') ok = false;
            while (k < value.size() && value[k] != ',' && value[k] != ';') ++k;
            value.remove_prefix(k);
        } else if (!value.empty() && value.front() == '"') {
            ok = false;
            take_quoted(value);
        }
        if (!in_offer) {
            in_offer = true;
            current.name = std::string(name);
            if (!ok || param_value) current.well_formed = false;
        } else {
            if (!ok) current.well_formed = false;
            current.params.push_back({std::string(name), std::move(param_value)});
        }
        if (value.empty()) break;
        const char separator = value.front();
        value.remove_prefix(1);
        if (separator == ',') finish();
    }
    finish();
    // Empty list elements (", ,") are allowed by the list rule and mean nothing.
    std::vector<extension_offer> kept;
    for (auto& o : offers)
        if (!(o.name.empty() && o.params.empty())) kept.push_back(std::move(o));
    return kept;
}

/// A window-bits value: a decimal from 8 to 15 without leading zeros.
constexpr std::optional<int> parse_window_bits(std::string_view v) noexcept {
    if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
    if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
    return std::nullopt;
}

/// Judges one permessage-deflate offer against `options`: the agreement, or nothing to decline it.
inline std::optional<deflate_agreement> judge_offer(const extension_offer& offer, const compression_options& options) {
    if (!offer.well_formed) return std::nullopt;
    bool seen_server_nct = false, seen_client_nct = false, seen_server_bits = false, seen_client_bits = false;
    int server_bits = 15;
    std::optional<int> client_bits;  // present: the client allows asking; its value, if any
    bool client_bits_valued = false;
    for (const extension_param& p : offer.params) {
        bool* seen = nullptr;
        if (p.name == "server_no_context_takeover") {
            seen = &seen_server_nct;
            if (p.value) return std::nullopt;
        } else if (p.name == "client_no_context_takeover") {
            seen = &seen_client_nct;
            if (p.value) return std::nullopt;
        } else if (p.name == "server_max_window_bits") {
            seen = &seen_server_bits;
            if (!p.value) return std::nullopt;  // a value is required in an offer
            const auto bits = parse_window_bits(*p.value);
            if (!bits) return std::nullopt;
            server_bits = *bits;
        } else if (p.name == "client_max_window_bits") {
            seen = &seen_client_bits;
            client_bits = 15;
            if (p.value) {
                const auto bits = parse_window_bits(*p.value);
                if (!bits) return std::nullopt;
                client_bits = *bits;
                client_bits_valued = true;
            }
        } else {
            return std::nullopt;  // not a parameter of this extension
        }
        if (*seen) return std::nullopt;  // the same parameter twice
        *seen = true;
    }
    deflate_agreement a;
    // Our compressor keeps to the smaller of our window and the one the client allows. zlib makes no
    // raw stream with an 8-bit window (it would use 9), so an offer that demands 8 is one we cannot
    // honour.
    a.server_max_window_bits = std::min(server_bits, options.server_max_window_bits);
    if (a.server_max_window_bits < 9) return std::nullopt;
    a.server_window_named = seen_server_bits || a.server_max_window_bits < 15;
    // A server may not limit a client that did not offer client_max_window_bits; one that did, it
    // may ask to keep to less than it offered.
    if (client_bits) {
        a.client_max_window_bits = std::min(*client_bits, options.client_max_window_bits);
        a.client_window_named = client_bits_valued || a.client_max_window_bits < 15;
    }
    // No context takeover on our side is what the client asked for, or what we choose; on the
    // client's side, what we ask for (a server may always include it) or what the client offered.
    a.server_no_context_takeover = seen_server_nct || !options.server_context_takeover;
    a.client_no_context_takeover = seen_client_nct || !options.client_context_takeover;
    return a;
}

}  // namespace detail

/// The agreement for a request whose Sec-WebSocket-Extensions fields are `field_values` (each a whole
/// field value, in order; several fields read as one list): the first permessage-deflate offer that
/// can be honoured. Nothing when compression is off, or no offer can be (the connection then runs
/// uncompressed). Other extensions are ignored.
inline std::optional<deflate_agreement> negotiate_deflate(const std::vector<std::string_view>& field_values,
                                                          const compression_options& options) {
    if (!options.enabled) return std::nullopt;
    for (const std::string_view value : field_values)
        for (const detail::extension_offer& offer : detail::parse_extension_list(value)) {
            if (offer.name != "permessage-deflate") continue;
            if (auto agreed = detail::judge_offer(offer, options)) return agreed;
        }
    return std::nullopt;
}

/// What the client's offer names: the Sec-WebSocket-Extensions line, CRLF included.
inline std::string deflate_offer_field(const client_compression_options& o) {
    std::string line = "Sec-WebSocket-Extensions: permessage-deflate";
    if (o.client_no_context_takeover) line += "; client_no_context_takeover";
    if (o.server_no_context_takeover) line += "; server_no_context_takeover";
    if (o.server_max_window_bits < 15) line += "; server_max_window_bits=" + std::to_string(o.server_max_window_bits);
    // It tells the server it may ask us for a smaller window. Left out, our compressor still keeps
    // to client_max_window_bits: any window up to 15 is one the server can read.
    if (o.offer_client_max_window_bits) {
        line += "; client_max_window_bits";
        if (o.client_max_window_bits < 15) line += "=" + std::to_string(o.client_max_window_bits);
    }
    line += "\r\n";
    return line;
}

/// Why client_compression_options cannot be offered, or empty when they can.
inline std::string client_compression_problem(const client_compression_options& o) {
    if (!o.enabled) return {};
    if (o.client_max_window_bits < 9 || o.client_max_window_bits > 15) return "client_max_window_bits must be 9 to 15";
    if (o.server_max_window_bits < 8 || o.server_max_window_bits > 15) return "server_max_window_bits must be 8 to 15";
    if (o.level < 1 || o.level > 9) return "the compression level must be 1 to 9";
    if (o.mem_level < 1 || o.mem_level > 9) return "mem_level must be 1 to 9";
    return {};
}

/// The server's answer to a client's offer: what was agreed (nothing: the server declined, and the
/// connection runs uncompressed), or why the answer fails the handshake.
struct deflate_answer {
    std::optional<deflate_agreement> agreed;
    std::string error;
};

/// Holds the response's Sec-WebSocket-Extensions fields `field_values` to what the client offered
/// (`offered`; null when it offered nothing), as RFC 7692 section 7.1 tells a client to: an extension
/// that was not offered, a second permessage-deflate, an unknown or repeated parameter, a window
/// outside 8..15 or larger than the offer's, client_max_window_bits when it was not offered or
/// without a value, and the lack of a server_no_context_takeover that was asked for all fail.
inline deflate_answer judge_deflate_response(const std::vector<std::string_view>& field_values,
                                             const client_compression_options* offered) {
    deflate_answer out;
    auto fail = [&](std::string why) {
        out.agreed.reset();
        out.error = "handshake failed: " + std::move(why);
        return out;
    };
    bool answered = false;
    for (const std::string_view value : field_values) {
        for (const detail::extension_offer& element : detail::parse_extension_list(value)) {
            if (element.name != "permessage-deflate" || offered == nullptr)
                return fail("the server chose an extension that was not offered: " + std::string(http::detail::trim_ows(value)));
            if (answered) return fail("the server answered permessage-deflate twice");
            answered = true;
            if (!element.well_formed) return fail("malformed permessage-deflate response: " + std::string(value));
            deflate_agreement a;
            a.client_max_window_bits = offered->client_max_window_bits;
            bool seen_server_nct = false, seen_client_nct = false, seen_server_bits = false, seen_client_bits = false;
            for (const detail::extension_param& p : element.params) {
                bool* seen = nullptr;
                if (p.name == "server_no_context_takeover" || p.name == "client_no_context_takeover") {
                    seen = p.name.front() == 's' ? &seen_server_nct : &seen_client_nct;
                    if (p.value) return fail(p.name + " takes no value");
                } else if (p.name == "server_max_window_bits" || p.name == "client_max_window_bits") {
                    const bool server_side = p.name.front() == 's';
                    seen = server_side ? &seen_server_bits : &seen_client_bits;
                    if (!server_side && !offered->offer_client_max_window_bits)
                        return fail("client_max_window_bits was not offered");
                    if (!p.value) return fail(p.name + " needs a value in a response");
                    const auto bits = detail::parse_window_bits(*p.value);
                    if (!bits) return fail(p.name + "=" + *p.value + " is not 8 to 15");
                    const int most = server_side ? offered->server_max_window_bits : offered->client_max_window_bits;
                    if (*bits > most) return fail(p.name + "=" + *p.value + " is more than was offered");
                    (server_side ? a.server_max_window_bits : a.client_max_window_bits) = *bits;
                } else {
                    return fail("permessage-deflate parameter that was not offered: " + p.name);
                }
                if (*seen) return fail(p.name + " given twice");
                *seen = true;
            }
            if (offered->server_no_context_takeover && !seen_server_nct)
                return fail("the server did not agree to server_no_context_takeover");
            a.server_no_context_takeover = seen_server_nct;
            // The client's own offer of client_no_context_takeover binds it even when the answer
            // leaves it out.
            a.client_no_context_takeover = seen_client_nct || offered->client_no_context_takeover;
            a.server_window_named = seen_server_bits;
            a.client_window_named = seen_client_bits;
            out.agreed = a;
        }
    }
    return out;
}

/// The response's Sec-WebSocket-Extensions line (CRLF included) naming exactly what was agreed.
inline std::string deflate_response_field(const deflate_agreement& a) {
    std::string line = "Sec-WebSocket-Extensions: permessage-deflate";
    if (a.server_no_context_takeover) line += "; server_no_context_takeover";
    if (a.client_no_context_takeover) line += "; client_no_context_takeover";
    if (a.server_window_named) line += "; server_max_window_bits=" + std::to_string(a.server_max_window_bits);
    if (a.client_window_named) line += "; client_max_window_bits=" + std::to_string(a.client_max_window_bits);
    line += "\r\n";
    return line;
}

}  // namespace starling
