#include <starling/protocol/error.hpp>

#include <doctest/doctest.h>

#include <string>

using starling::error;

TEST_CASE("errors are std::error_code values of the starling category") {
    const std::error_code ec = error::reserved_opcode;
    CHECK(ec.category().name() == std::string("starling"));
    CHECK(ec.message() == "reserved opcode");
    CHECK(static_cast<bool>(ec));
}

TEST_CASE("every error has its own message") {
    for (int e = static_cast<int>(error::reserved_bits_set); e <= static_cast<int>(error::not_found); ++e) {
        const auto ec = make_error_code(static_cast<error>(e));
        CHECK(ec.message() != "unknown starling error");
        for (int other = e + 1; other <= static_cast<int>(error::not_found); ++other)
            CHECK(ec.message() != make_error_code(static_cast<error>(other)).message());
    }
}

TEST_CASE("errors fall into conditions and map to close codes and HTTP statuses") {
    CHECK(std::error_code(error::fragmented_control_frame) == starling::condition::protocol_violation);
    CHECK(std::error_code(error::invalid_utf8) == starling::condition::invalid_payload);
    CHECK(std::error_code(error::message_too_big) == starling::condition::too_big);
    CHECK(std::error_code(error::bad_key) == starling::condition::handshake_failed);
    CHECK(std::error_code(error::bad_key) != starling::condition::protocol_violation);

    CHECK(starling::close_code_for(error::unmasked_client_frame) == starling::close_code::protocol_error);
    CHECK(starling::close_code_for(error::invalid_close_code) == starling::close_code::protocol_error);
    CHECK(starling::close_code_for(error::invalid_utf8_in_close_reason) == starling::close_code::invalid_payload);
    CHECK(starling::close_code_for(error::frame_too_big) == starling::close_code::message_too_big);

    CHECK(starling::http_status_for(error::header_too_large) == 431);
    CHECK(starling::http_status_for(error::unsupported_version) == 426);
    CHECK(starling::http_status_for(error::not_found) == 404);
    CHECK(starling::http_status_for(error::missing_key) == 400);
}

TEST_CASE("valid close codes are exactly 1000-1003, 1007-1011 and 3000-4999") {
    for (int code = 0; code <= 65535; ++code) {
        const bool expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                              (code >= 3000 && code <= 4999);
        REQUIRE(starling::is_valid_close_code(static_cast<std::uint16_t>(code)) == expected);
    }
}
