#include <starling/api/dependencies.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <string>

namespace {

struct database {
    std::string name;
};
struct cache {
    int hits = 0;
};

}  // namespace

TEST_CASE("lookup by type and by name") {
    starling::global_dependencies deps;
    deps.add(database{"main"});
    deps.add("audit", database{"audit"});
    CHECK(deps.get<database>().name == "main");
    CHECK(deps.get<database>("audit").name == "audit");
    CHECK(deps.contains<database>());
    CHECK(deps.contains("audit"));
    CHECK_FALSE(deps.contains<cache>());
    CHECK(deps.find<cache>() == nullptr);
}

TEST_CASE("a named dependency is also found by type when its type is free") {
    starling::router_dependencies deps;
    deps.add("cache", cache{3});
    CHECK(deps.get<cache>().hits == 3);
}

TEST_CASE("missing lookups throw a clear error, not undefined behaviour") {
    starling::global_dependencies deps;
    deps.add("logger", std::string("x"));
    CHECK_THROWS_WITH_AS(deps.get<database>("nope"), "starling: no dependency named 'nope' was injected",
                         starling::missing_dependency);
    CHECK_THROWS_AS(deps.get<database>("logger"), starling::missing_dependency);
    CHECK_THROWS_AS(deps.get<cache>(), starling::missing_dependency);
    try {
        deps.get<cache>();
    } catch (const starling::missing_dependency& e) {
        CHECK(std::string(e.what()).find("cache") != std::string::npos);
    }
}

TEST_CASE("a shared_ptr is stored as the object it owns, shared") {
    auto shared = std::make_shared<cache>();
    starling::global_dependencies deps;
    deps.add(shared);
    deps.get<cache>().hits = 42;
    CHECK(shared->hits == 42);
    CHECK(deps.find_shared<cache>() == shared);
}

TEST_CASE("containers are read-only once frozen") {
    starling::global_dependencies deps;
    deps.add(cache{});
    deps.freeze();
    CHECK_THROWS_AS(deps.add(database{}), std::logic_error);
    CHECK(deps.find<cache>() != nullptr);
}
