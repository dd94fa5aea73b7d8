// expect: include <starling.hpp> before any Asio header
// (clang only: g++ needs no help from Starling to give Asio coroutine support.)
#include <asio/io_context.hpp>
#include <starling.hpp>

int main() {}
