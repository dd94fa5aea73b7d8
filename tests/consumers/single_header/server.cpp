// First translation unit of the single-header consumer: the shared consumer program, plus the /info
// route that the second translation unit (other.cpp) defines. Both include <starling.hpp>, so linking
// them into one program proves the single header defines nothing that is not inline (no multiple
// definitions, no ODR surprises). Built exactly as the README documents:
//   g++ -std=c++20 -O2 -I path/to/single_include server.cpp other.cpp -lsimdjson -pthread
#define CONSUMER_SECOND_TU
#include "../echo_consumer.cpp"
