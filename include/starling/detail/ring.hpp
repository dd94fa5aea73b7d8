// A FIFO on one growing circular array: what a connection's inbox and outbound queue are. Unlike
// std::deque, which allocates and frees a node every few elements as a queue moves forward, a ring
// that has reached its working size allocates nothing more (steady state allocates nothing per
// message). It holds no memory until the first push, so an idle connection costs nothing here.
#pragma once

#include <cstddef>  // std::size_t
#include <memory>   // std::unique_ptr storage
#include <utility>  // std::move

namespace starling::detail {

template <class T>
class ring {
public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    /// The i-th element from the front.
    T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & (capacity_ - 1)]; }
    const T& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & (capacity_ - 1)]; }
    T& front() noexcept { return (*this)[0]; }
    T& back() noexcept { return (*this)[size_ - 1]; }

    void push_back(T value) {
        if (size_ == capacity_) grow();
        (*this)[size_] = std::move(value);
        ++size_;
    }

    /// Removes the front element; its slot keeps the moved-from value's storage for reuse.
    void pop_front() noexcept {
        front() = T();
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
    }

    void pop_back() noexcept {
        back() = T();
        --size_;
    }

    void clear() noexcept {
        while (!empty()) pop_front();
    }

private:
    /// Doubles the capacity (a power of two, so indices wrap with a mask), keeping the order.
    void grow() {
        const std::size_t bigger = capacity_ == 0 ? 8 : capacity_ * 2;
        auto slots = std::make_unique<T[]>(bigger);
        for (std::size_t i = 0; i < size_; ++i) slots[i] = std::move((*this)[i]);
        slots_ = std::move(slots);
        capacity_ = bigger;
        head_ = 0;
    }

    std::unique_ptr<T[]> slots_;
    std::size_t capacity_ = 0;  // 0 or a power of two
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace starling::detail
