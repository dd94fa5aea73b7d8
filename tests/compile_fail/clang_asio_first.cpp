// expect: include <starling.hpp> before Asio's coroutine headers
// (clang only: g++ needs no help from Starling to give Asio coroutine support.)
#include <asio/use_awaitable.hpp>
#include <starling.hpp>

int main() {}
