// Incremental, strict parser for an HTTP/1.1 request head (RFC 9112 sections 2-5), sans I/O: the
// caller feeds whatever bytes arrived and learns whether the head is complete. Strict because the
// only requests it has to understand are WebSocket upgrades, and every leniency is a way for a
// front proxy and this server to disagree about where a request ends.
#pragma once

#include <algorithm>    // std::min
#include <cstddef>      // std::size_t
#include <string>       // std::string line buffer
#include <string_view>  // std::string_view input
#include <system_error> // std::error_code
#include <utility>      // std::move

#include "starling/protocol/error.hpp"
#include "starling/http/headers.hpp"
#include "starling/http/request.hpp"

namespace starling::http {

enum class parse_status { need_more, complete, failed };

struct parse_result {
    parse_status status;
    std::size_t consumed;  // bytes of this call's input that belong to the head
};

class request_parser {
public:
    static constexpr std::size_t default_max_header_bytes = 8 * 1024;
    /// More fields than this is header_too_large: a cap on work and memory per request that does not
    /// depend on how short each field is.
    static constexpr std::size_t max_fields = 100;

    /// `max_header_bytes` bounds the whole head: request line, fields, every CRLF and the blank line.
    explicit request_parser(std::size_t max_header_bytes = default_max_header_bytes) noexcept
        : max_bytes_(max_header_bytes) {}

    /// Feeds the next bytes, in any chunking. Stops right after the blank line that ends the head, so
    /// bytes past it (a client may send its first frame without waiting for the 101) are not consumed
    /// and stay with the caller. Once complete or failed, further calls consume nothing. On failure,
    /// `consumed` counts up to and including the byte that revealed the error; every error is found
    /// at the same byte whatever the chunking.
    parse_result put(std::string_view data);

    parse_status status() const noexcept { return status_; }
    /// The request parsed so far: whole once status() is complete.
    const request& get() const noexcept { return request_; }
    /// Moves the request out; get() is then empty until the next reset() and parse.
    request release() { return std::move(request_); }
    /// Why parsing failed; empty unless status() is failed.
    std::error_code error() const noexcept { return error_; }
    /// Forgets everything parsed so far, keeping the limit, to parse another head.
    void reset();

private:
    enum class stage { request_line, header_line };

    parse_result fail(std::error_code ec, std::size_t consumed) {
        status_ = parse_status::failed;
        error_ = ec;
        return {status_, consumed};
    }

    /// The error for a malformed byte in the line being read.
    starling::error line_error() const noexcept {
        return stage_ == stage::request_line ? starling::error::bad_request_line : starling::error::bad_header_line;
    }

    /// Bytes that may appear inside the current line. Checked as each byte arrives, so that a peer
    /// speaking something else (TLS, binary) is refused at once instead of when the limit is reached.
    bool allowed_in_line(char ch) const noexcept {
        const auto c = static_cast<unsigned char>(ch);
        if (stage_ == stage::request_line) return c == ' ' || (c > 0x20 && c < 0x7F);  // ASCII only
        return c == '\t' || (c >= 0x20 && c != 0x7F);  // field values may carry obs-text (0x80-0xFF)
    }

    std::error_code finish_line();
    std::error_code parse_request_line(std::string_view line);
    std::error_code parse_header_line(std::string_view line);

    request request_;
    std::string line_;  // the line being read, without its CRLF
    std::size_t max_bytes_;
    std::size_t head_bytes_ = 0;  // bytes of the head seen so far, CRLFs included
    parse_status status_ = parse_status::need_more;
    stage stage_ = stage::request_line;
    bool after_cr_ = false;  // the last byte was the CR of a line ending
    std::error_code error_;
};

inline parse_result request_parser::put(std::string_view data) {
    if (status_ != parse_status::need_more) return {status_, 0};

    std::size_t i = 0;
    while (i < data.size()) {
        // Refuse the first byte past the limit rather than anything later, so at most the limit is
        // ever buffered and a head of exactly the limit still completes.
        if (head_bytes_ == max_bytes_) return fail(starling::error::header_too_large, i + 1);

        if (after_cr_) {
            ++head_bytes_;
            if (data[i] != '\n') return fail(line_error(), i + 1);  // bare CR
            ++i;
            after_cr_ = false;
            if (const std::error_code ec = finish_line()) return fail(ec, i);
            if (status_ == parse_status::complete) return {status_, i};
            continue;
        }

        // Take the longest run of line bytes at once: feeding one large chunk costs one append, and
        // feeding one byte per call costs O(1) per byte, never a rescan of what is buffered.
        const std::size_t end = i + std::min(data.size() - i, max_bytes_ - head_bytes_);  // safe for a SIZE_MAX limit
        std::size_t j = i;
        for (; j < end; ++j) {
            const char c = data[j];
            if (c == '\r' || c == '\n') break;
            if (!allowed_in_line(c)) return fail(line_error(), j + 1);
        }
        line_.append(data.substr(i, j - i));
        head_bytes_ += j - i;
        i = j;
        if (i == data.size() || head_bytes_ == max_bytes_) continue;

        ++head_bytes_;
        if (data[i] == '\n') return fail(line_error(), i + 1);  // bare LF
        ++i;
        after_cr_ = true;
    }
    return {parse_status::need_more, data.size()};
}

inline void request_parser::reset() {
    request_ = request{};
    line_.clear();
    head_bytes_ = 0;
    status_ = parse_status::need_more;
    stage_ = stage::request_line;
    after_cr_ = false;
    error_.clear();
}

inline std::error_code request_parser::finish_line() {
    std::error_code ec;
    if (stage_ == stage::request_line) {
        ec = parse_request_line(line_);
        stage_ = stage::header_line;
    } else if (line_.empty()) {
        status_ = parse_status::complete;
    } else {
        ec = parse_header_line(line_);
    }
    line_.clear();
    return ec;
}

inline std::error_code request_parser::parse_request_line(std::string_view line) {
    // Exactly two single spaces: RFC 9112 allows servers to accept other whitespace, and this one
    // does not, so that no two parsers can split the line differently.
    const std::size_t first = line.find(' ');
    if (first == std::string_view::npos) return starling::error::bad_request_line;
    const std::size_t second = line.find(' ', first + 1);
    if (second == std::string_view::npos) return starling::error::bad_request_line;
    if (line.find(' ', second + 1) != std::string_view::npos) return starling::error::bad_request_line;

    const std::string_view method = line.substr(0, first);
    const std::string_view target = line.substr(first + 1, second - first - 1);
    const std::string_view version = line.substr(second + 1);
    if (!detail::is_token(method)) return starling::error::bad_request_line;
    // Origin form only: absolute form is for proxies and asterisk form for OPTIONS, neither of which
    // can be a WebSocket upgrade. allowed_in_line already kept out controls, spaces and non-ASCII.
    if (target.empty() || target.front() != '/') return starling::error::bad_request_line;
    if (version.empty()) return starling::error::bad_request_line;
    if (version != "HTTP/1.1") return starling::error::bad_http_version;

    request_.method = method;
    request_.target = target;
    request_.version = version;
    return {};
}

inline std::error_code request_parser::parse_header_line(std::string_view line) {
    if (request_.fields.size() == max_fields) return starling::error::header_too_large;
    if (!parse_field_line(line, request_.fields)) return starling::error::bad_header_line;
    return {};
}

}  // namespace starling::http
