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

# Debian's DPDK 22.11 headers (libdpdk-dev), for benchmarks that compare against it.
# -isystem keeps DPDK's own warnings out of -Werror.
DPDK_COPTS = [
    "-isystem/usr/include/dpdk",
    "-isystem/usr/include/x86_64-linux-gnu/dpdk",
]
