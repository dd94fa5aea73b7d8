// Per-connection state: one typed value a connection carries from its handshake to its end. The
// authentication hook's value lands here, on_connect may put one here, and every later callback reads
// it, with ws.state<T>() or by declaring starling::state<T>:
//
//     [](starling::websocket& ws, starling::state<user> me) -> starling::task<> { ... me->name ... }
//
// An empty slot is one null pointer: a connection that keeps no state pays nothing more.
#pragma once

#include <memory>       // std::unique_ptr holder
#include <stdexcept>    // std::logic_error for a missing or mistyped state
#include <string>       // std::string messages
#include <type_traits>  // std::is_constructible_v
#include <typeinfo>     // typeid of the held value
#include <utility>      // std::forward

#include "starling/api/type_name.hpp"

namespace starling {

namespace detail {

/// The slot: nothing, or one value of any type, owned.
class state_slot {
public:
    state_slot() = default;

    template <class T, class... Args>
    T& emplace(Args&&... args) {
        auto made = std::make_unique<holder<T>>(std::forward<Args>(args)...);
        T& value = made->value;
        held_ = std::move(made);
        return value;
    }

    /// The value, if it is a T.
    template <class T>
    T* find() const noexcept {
        if (!held_ || held_->type() != typeid(T)) return nullptr;
        return &static_cast<holder<T>*>(held_.get())->value;
    }

    /// The value, which must be a T: throws std::logic_error otherwise (a handler closes with 1011).
    template <class T>
    T& get() const {
        if (T* found = find<T>()) return *found;
        throw std::logic_error(std::string("starling: this connection's state is ") +
                               (held_ ? "not a '" : "empty, not a '") + std::string(type_name<T>()) +
                               "' (set it in the authentication hook or with ws.emplace_state in on_connect)");
    }

    bool empty() const noexcept { return !held_; }
    void reset() noexcept { held_.reset(); }

private:
    struct holder_base {
        virtual ~holder_base() = default;
        virtual const std::type_info& type() const noexcept = 0;
    };
    template <class T>
    struct holder final : holder_base {
        template <class... Args>
        explicit holder(Args&&... args) : value(make(std::forward<Args>(args)...)) {}
        /// Braces for an aggregate ({"alice"} for a struct user), which not every compiler this
        /// library supports builds from parentheses; the result initialises `value` in place.
        template <class... Args>
        static T make(Args&&... args) {
            if constexpr (std::is_constructible_v<T, Args&&...>) return T(std::forward<Args>(args)...);
            else return T{std::forward<Args>(args)...};
        }
        const std::type_info& type() const noexcept override { return typeid(T); }
        T value;
    };

    std::unique_ptr<holder_base> held_;
};

struct connection_state_tag {};

}  // namespace detail

/// A handler or callback parameter: the connection's state, which must be a T. Refers to the value
/// in the connection; it does not copy it.
template <class T>
class state : public detail::connection_state_tag {
public:
    using value_type = T;
    explicit state(T& value) noexcept : value_(&value) {}

    T& value() const noexcept { return *value_; }
    T& operator*() const noexcept { return *value_; }
    T* operator->() const noexcept { return value_; }
    operator T&() const noexcept { return *value_; }

private:
    T* value_;
};

}  // namespace starling
