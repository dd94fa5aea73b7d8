// Open connections per client IP address, server-wide, for server_options::max_connections_per_ip.
// A connection counts from the start of its handshake to its end, so a burst from one address is
// judged as it arrives, before any of it is upgraded. Touched twice per connection, never per message:
// one mutex is enough.
#pragma once

#include <cstddef>        // std::size_t
#include <mutex>          // std::mutex: connections of every worker come and go
#include <string>         // std::string addresses
#include <unordered_map>  // address -> open connections
#include <utility>        // std::move

namespace starling::detail {

class address_counts {
public:
    /// One more connection from `ip`; returns how many it has now, this one included.
    std::size_t add(const std::string& ip) {
        std::lock_guard lock(mutex_);
        return ++counts_[ip];
    }
    void remove(const std::string& ip) {
        std::lock_guard lock(mutex_);
        const auto it = counts_.find(ip);
        if (it == counts_.end()) return;
        if (--it->second == 0) counts_.erase(it);
    }
    std::size_t count(const std::string& ip) const {
        std::lock_guard lock(mutex_);
        const auto it = counts_.find(ip);
        return it == counts_.end() ? 0 : it->second;
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::size_t> counts_;
};

/// Counts a connection from its address for as long as it lives; counts nothing without a cap.
class address_guard {
public:
    address_guard(address_counts& counts, std::string ip, std::size_t cap)
        : counts_(cap == 0 ? nullptr : &counts), ip_(std::move(ip)) {
        if (counts_) over_ = counts_->add(ip_) > cap;
    }
    address_guard(const address_guard&) = delete;
    address_guard& operator=(const address_guard&) = delete;
    ~address_guard() {
        if (counts_) counts_->remove(ip_);
    }
    bool over_cap() const noexcept { return over_; }

private:
    address_counts* counts_;
    std::string ip_;
    bool over_ = false;
};

}  // namespace starling::detail
