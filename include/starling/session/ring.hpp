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
    std::size_t capacity() const noexcept { return capacity_; }

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

    /// Removes the front element, and whatever it owned with it. (Assigning T() would not do: a
    /// std::string assigned an empty one keeps its old buffer, so every slot of the ring would hold
    /// on to the largest payload that ever passed through it.)
    void pop_front() noexcept {
        release(front());
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
    }

    void pop_back() noexcept {
        release(back());
        --size_;
    }

    void clear() noexcept {
        while (!empty()) pop_front();
    }

    /// Releases the storage of an empty ring larger than `keep` slots: a burst's growth is not kept
    /// for the connection's whole life.
    void shrink(std::size_t keep) noexcept {
        if (size_ != 0 || capacity_ <= keep) return;
        slots_.reset();
        capacity_ = 0;
        head_ = 0;
    }

private:
    static void release(T& slot) noexcept { [[maybe_unused]] T gone = std::move(slot); }

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
