// Tests of starling/runtime/topic_registry.hpp: who a publish reaches, one post per other worker, and
// topics that come and go with their members. Event loops stand for workers and are run by hand, so
// what was posted can be counted.
#include <starling/runtime/topic_registry.hpp>

#include <doctest/doctest.h>

#include <algorithm>  // std::sort
#include <cstddef>    // std::size_t
#include <memory>     // std::shared_ptr
#include <string>     // std::string names
#include <utility>    // std::pair
#include <vector>     // std::vector members

namespace {

using starling::detail::shared_frame;

struct fake_member {
    std::vector<std::string> received;
    void receive_broadcast(const shared_frame& frame) { received.push_back(std::string(frame->payload())); }
};

using registry = starling::detail::topic_registry<fake_member>;

shared_frame frame_of(const std::string& text) { return starling::detail::make_shared_frame(starling::opcode::text, text); }

/// A member with its places in topics, as a connection keeps them.
struct subscriber {
    std::shared_ptr<fake_member> member = std::make_shared<fake_member>();
    registry::membership room;
    registry::membership other;
};

}  // namespace

TEST_CASE("a publish reaches the topic's members: its own worker's at once, each other worker's through one post") {
    asio::io_context here, there;
    registry topics;
    std::vector<subscriber> local(3), remote(100), elsewhere(2);
    for (auto& s : local) topics.join(here, "room", s.member, s.room);
    for (auto& s : remote) topics.join(there, "room", s.member, s.room);
    for (auto& s : elsewhere) topics.join(there, "other", s.member, s.other);
    CHECK(topics.size("room") == 103);
    CHECK(topics.size("other") == 2);
    CHECK(topics.size("nobody") == 0);

    CHECK(topics.publish(&here, "room", frame_of("hello"), local[0].member.get()) == 103);
    CHECK(local[0].member->received.empty());  // the publisher, left out
    CHECK(local[1].member->received == std::vector<std::string>{"hello"});
    CHECK(remote[0].member->received.empty());  // not yet: the other worker has not run
    CHECK(here.poll() == 0);                     // nothing posted to our own loop
    CHECK(there.poll() == 1);                    // one task for a hundred receivers
    for (const auto& s : remote) CHECK(s.member->received == std::vector<std::string>{"hello"});
    for (const auto& s : elsewhere) CHECK(s.member->received.empty());
    CHECK(topics.publish(&here, "nobody", frame_of("x"), nullptr) == 0);
}

TEST_CASE("from outside any worker every worker with members gets one task; order per publisher holds") {
    asio::io_context a, b, empty;
    registry topics;
    subscriber on_a, on_b, left;
    topics.join(a, "t", on_a.member, on_a.room);
    topics.join(b, "t", on_b.member, on_b.room);
    topics.join(empty, "t", left.member, left.room);
    topics.leave(left.room);
    for (int i = 0; i < 5; ++i) topics.publish(nullptr, "t", frame_of(std::to_string(i)), nullptr);
    CHECK(empty.poll() == 0);
    CHECK(a.poll() == 5);
    CHECK(b.poll() == 5);
    const std::vector<std::string> in_order{"0", "1", "2", "3", "4"};
    CHECK(on_a.member->received == in_order);
    CHECK(on_b.member->received == in_order);
    CHECK(left.member->received.empty());
}

TEST_CASE("members leave in any order, the rest stay reachable, and an empty topic disappears") {
    asio::io_context here;
    registry topics;
    std::vector<subscriber> all(10);
    for (auto& s : all) topics.join(here, "room", s.member, s.room);
    for (int i : {3, 9, 0, 5}) topics.leave(all[static_cast<std::size_t>(i)].room);
    topics.leave(all[5].room);  // a second leave does nothing
    CHECK(topics.size("room") == 6);
    topics.publish(&here, "room", frame_of("x"), nullptr);
    for (int i = 0; i < 10; ++i) {
        const bool gone = i == 3 || i == 9 || i == 0 || i == 5;
        CHECK(all[static_cast<std::size_t>(i)].member->received.size() == (gone ? 0u : 1u));
    }
    for (auto& s : all) topics.leave(s.room);
    CHECK(topics.size("room") == 0);
    CHECK(topics.count() == 0);
    CHECK(topics.sizes().empty());
}

TEST_CASE("the observer hears a name's first member and its last, in order, and sizes lists every topic") {
    asio::io_context here;
    registry topics;
    std::vector<std::pair<std::string, bool>> heard;
    topics.set_observer([&](const std::string& name, bool has_members) { heard.emplace_back(name, has_members); });
    subscriber x, y;
    topics.join(here, "a", x.member, x.room);
    topics.join(here, "a", y.member, y.room);
    topics.join(here, "b", x.member, x.other);
    auto sizes = topics.sizes();
    std::sort(sizes.begin(), sizes.end());
    CHECK(sizes == std::vector<std::pair<std::string, std::size_t>>{{"a", 2}, {"b", 1}});
    topics.leave(x.room);
    topics.leave(y.room);
    topics.join(here, "a", y.member, y.room);  // a fresh topic under the old name
    CHECK(topics.size("a") == 1);
    topics.publish(&here, "a", frame_of("again"), nullptr);
    CHECK(y.member->received == std::vector<std::string>{"again"});
    CHECK(x.member->received.empty());
    CHECK(heard == std::vector<std::pair<std::string, bool>>{{"a", true}, {"b", true}, {"a", false}, {"a", true}});
}

TEST_CASE("a task posted before its topic emptied delivers to nobody and frees nothing it still uses") {
    asio::io_context here, there;
    registry topics;
    subscriber s;
    topics.join(there, "t", s.member, s.room);
    topics.publish(&here, "t", frame_of("late"), nullptr);
    topics.leave(s.room);  // the topic is gone from the registry; the posted task still holds it
    CHECK(topics.count() == 0);
    CHECK(there.poll() == 1);
    CHECK(s.member->received.empty());
}
