// Readable type names at compile time, for error messages ("needs dependency 'Database'").
#pragma once

#include <string_view>  // std::string_view results

namespace starling::detail {

/// The name of T as the compiler spells it, from __PRETTY_FUNCTION__ (g++ and clang both put it after
/// "T = " in the signature text).
template <class T>
constexpr std::string_view type_name() noexcept {
    const std::string_view signature = __PRETTY_FUNCTION__;
    const auto start = signature.find("T = ");
    if (start == std::string_view::npos) return signature;
    const auto rest = signature.substr(start + 4);
    const auto end = rest.find_first_of(";]");
    return rest.substr(0, end);
}

}  // namespace starling::detail
