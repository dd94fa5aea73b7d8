// Dependency injection: containers of shared services, looked up by type or by name.
//
//     app.inject_global(logger{...});                 // by type: deps.get<logger>()
//     app.inject_global("audit", logger{...});        // by name: deps.get<logger>("audit")
//     app.inject(std::make_shared<cache>());          // a shared_ptr is stored as the object it owns
//
// Handlers receive `starling::global_dependencies&` (the app's), `starling::router_dependencies&`
// (those of the router that registered the endpoint), or a typed parameter `cache&` resolved by type
// (router first, then global). Containers are read-only once the server runs; the objects in them are
// shared by every connection on every worker thread, so they must be safe to use concurrently (or
// guard themselves with a mutex).
#pragma once

#include <memory>         // std::shared_ptr storage
#include <stdexcept>      // std::out_of_range, std::logic_error
#include <string>         // std::string names
#include <string_view>    // std::string_view lookups
#include <type_traits>    // std::decay_t
#include <typeindex>      // std::type_index keys
#include <unordered_map>  // lookup tables
#include <utility>        // std::move

#include "starling/api/type_name.hpp"

namespace starling {

/// Thrown by a lookup that finds nothing (or an object of another type under that name).
class missing_dependency : public std::out_of_range {
public:
    using std::out_of_range::out_of_range;
};

namespace detail {

/// T for std::shared_ptr<T>, T itself otherwise: what a shared_ptr dependency is stored and found as.
template <class T>
struct shared_target {
    using type = T;
};
template <class T>
struct shared_target<std::shared_ptr<T>> {
    using type = T;
};

template <class T>
struct is_shared_ptr : std::false_type {};
template <class T>
struct is_shared_ptr<std::shared_ptr<T>> : std::true_type {};

}  // namespace detail

class dependency_container {
public:
    /// Adds `value` to be found by its type. A std::shared_ptr<T> is stored as the T it points to.
    template <class T>
    dependency_container& add(T&& value) {
        auto [type, object] = store(std::forward<T>(value));
        check_writable();
        by_type_.insert_or_assign(type, std::move(object));
        return *this;
    }

    /// Adds `value` under `name` (found by name and type) and by its type, unless that type is taken.
    template <class T>
    dependency_container& add(std::string name, T&& value) {
        auto [type, object] = store(std::forward<T>(value));
        check_writable();
        by_type_.try_emplace(type, object);
        by_name_.insert_or_assign(std::move(name), entry{type, std::move(object)});
        return *this;
    }

    /// The object of type T; throws missing_dependency if there is none.
    template <class T>
    T& get() const {
        if (T* found = find<T>()) return *found;
        throw missing_dependency("starling: no dependency of type '" + std::string(detail::type_name<T>()) +
                                 "' was injected");
    }

    /// The object named `name`, which must be a T; throws missing_dependency otherwise.
    template <class T>
    T& get(std::string_view name) const {
        const auto it = by_name_.find(std::string(name));
        if (it == by_name_.end())
            throw missing_dependency("starling: no dependency named '" + std::string(name) + "' was injected");
        if (it->second.type != std::type_index(typeid(T)))
            throw missing_dependency("starling: dependency '" + std::string(name) + "' is not a '" +
                                     std::string(detail::type_name<T>()) + "'");
        return *static_cast<T*>(it->second.object.get());
    }

    /// The object of type T, or nullptr.
    template <class T>
    T* find() const noexcept {
        const auto it = by_type_.find(std::type_index(typeid(T)));
        return it == by_type_.end() ? nullptr : static_cast<T*>(it->second.get());
    }

    /// The shared_ptr holding the object of type T (empty if none), for callers that keep it.
    template <class T>
    std::shared_ptr<T> find_shared() const noexcept {
        const auto it = by_type_.find(std::type_index(typeid(T)));
        return it == by_type_.end() ? nullptr : std::static_pointer_cast<T>(it->second);
    }

    bool contains(std::type_index type) const noexcept { return by_type_.contains(type); }
    template <class T>
    bool contains() const noexcept { return contains(std::type_index(typeid(T))); }
    bool contains(std::string_view name) const { return by_name_.contains(std::string(name)); }

    /// After this, add() throws: containers are read-only while the server runs, so handlers on every
    /// thread can read them without locks.
    void freeze() noexcept { frozen_ = true; }

private:
    struct entry {
        std::type_index type;
        std::shared_ptr<void> object;
    };

    template <class T>
    static std::pair<std::type_index, std::shared_ptr<void>> store(T&& value) {
        using D = std::decay_t<T>;
        using target = typename detail::shared_target<D>::type;
        if constexpr (detail::is_shared_ptr<D>::value) {
            return {std::type_index(typeid(target)), std::shared_ptr<void>(std::forward<T>(value))};
        } else {
            return {std::type_index(typeid(D)), std::make_shared<D>(std::forward<T>(value))};
        }
    }

    void check_writable() const {
        if (frozen_) throw std::logic_error("starling: dependencies are read-only once the server runs");
    }

    std::unordered_map<std::type_index, std::shared_ptr<void>> by_type_;
    std::unordered_map<std::string, entry> by_name_;
    bool frozen_ = false;
};

/// The app-wide container: app.inject_global(...).
class global_dependencies : public dependency_container {};

/// A router's own container: app.inject(...) for the app's top level, router.inject(...) for a router.
class router_dependencies : public dependency_container {};

}  // namespace starling
