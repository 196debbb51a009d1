"""Compiler options shared by every keel target."""

KEEL_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
]

KEEL_TEST_COPTS = KEEL_COPTS + [
    "-Wno-sign-compare",
]
