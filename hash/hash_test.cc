#include "hash/hash.h"
#include "gtest/gtest.h"
TEST(Placeholder, Builds) {}
