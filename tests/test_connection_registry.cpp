// Tests of starling/runtime/connection_registry.hpp: who a broadcast reaches, and what crossing threads costs.
// Two event loops stand for two workers; they are run by hand, so what was posted can be counted.
#include <starling/runtime/connection_registry.hpp>

#include <doctest/doctest.h>

#include <cstddef>  // std::size_t
#include <memory>   // std::shared_ptr
#include <string>   // std::string ids
#include <vector>   // std::vector members

namespace {

using starling::detail::shared_frame;

struct fake_member {
    std::vector<std::string> received;
    std::size_t slot = 0;

    void receive_broadcast(const shared_frame& frame) { received.push_back(std::string(frame->payload())); }
    std::size_t& registry_slot() noexcept { return slot; }
};

using registry = starling::detail::connection_registry<fake_member>;

shared_frame frame_of(const std::string& text) { return starling::detail::make_shared_frame(starling::opcode::text, text); }

}  // namespace

TEST_CASE("a broadcast reaches its own worker's members at once and each other worker through one post") {
    asio::io_context here, there;
    registry members;
    std::vector<std::shared_ptr<fake_member>> local, remote;
    for (int i = 0; i < 3; ++i) {
        local.push_back(std::make_shared<fake_member>());
        members.add(here, "local " + std::to_string(i), local.back());
    }
    for (int i = 0; i < 100; ++i) {
        remote.push_back(std::make_shared<fake_member>());
        members.add(there, "remote " + std::to_string(i), remote.back());
    }
    CHECK(members.size() == 103);

    members.broadcast(here, frame_of("hello"), local[0].get());
    CHECK(local[0]->received.empty());  // the sender, left out
    CHECK(local[1]->received == std::vector<std::string>{"hello"});
    CHECK(remote[0]->received.empty());  // not yet: the other worker has not run
    CHECK(here.poll() == 0);             // nothing posted to our own loop
    CHECK(there.poll() == 1);            // one task for a hundred receivers
    for (const auto& m : remote) CHECK(m->received == std::vector<std::string>{"hello"});
}

TEST_CASE("one sender's broadcasts reach every receiver in order; workers without members get nothing") {
    asio::io_context here, there, empty;
    registry members;
    auto sender = std::make_shared<fake_member>();
    auto receiver = std::make_shared<fake_member>();
    auto leaving = std::make_shared<fake_member>();
    members.add(here, "sender", sender);
    members.add(there, "receiver", receiver);
    members.add(empty, "leaving", leaving);
    members.remove(empty, "leaving", *leaving);
    for (int i = 0; i < 5; ++i) members.broadcast(here, frame_of(std::to_string(i)), nullptr);
    CHECK(empty.poll() == 0);
    CHECK(there.poll() == 5);
    CHECK(receiver->received == std::vector<std::string>{"0", "1", "2", "3", "4"});
    CHECK(sender->received == std::vector<std::string>{"0", "1", "2", "3", "4"});
    CHECK(leaving->received.empty());
}

TEST_CASE("members leave in any order and the rest stay reachable; find looks up by id") {
    asio::io_context here;
    registry members;
    std::vector<std::shared_ptr<fake_member>> all;
    for (int i = 0; i < 10; ++i) {
        all.push_back(std::make_shared<fake_member>());
        members.add(here, std::to_string(i), all.back());
    }
    for (int i : {3, 9, 0, 5}) members.remove(here, std::to_string(i), *all[static_cast<std::size_t>(i)]);
    members.remove(here, "5", *all[5]);  // a second remove does nothing
    CHECK(members.size() == 6);
    CHECK(members.find("3") == nullptr);
    CHECK(members.find("4") == all[4]);
    members.broadcast(here, frame_of("x"), nullptr);
    for (int i = 0; i < 10; ++i) {
        const bool gone = i == 3 || i == 9 || i == 0 || i == 5;
        CHECK(all[static_cast<std::size_t>(i)]->received.size() == (gone ? 0u : 1u));
    }
}
