// expect: T must be bool, an integer type, float, double, std::string
#include <starling.hpp>

#include <vector>

int main() {
    simdjson::dom::parser parser;
    const auto doc = starling::json_document::parse(parser, R"({"list": [1]})");
    return doc.get<std::vector<int>>("list") ? 0 : 1;
}
