// The test runner's entry point; every other file in tests/ holds the tests of one component.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
