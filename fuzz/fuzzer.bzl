"""keel_fuzzer: a libFuzzer target, its corpus, and the test that replays the corpus."""

load("//bazel:copts.bzl", "KEEL_TEST_COPTS")

def keel_fuzzer(name, srcs, deps, corpus, copts = [], **kwargs):
    """Declares `name` (a fuzz target binary) and `name_corpus_test`.

    The sources define LLVMFuzzerTestOneInput (and maybe LLVMFuzzerInitialize). With
    --config=fuzz `name` is a libFuzzer binary (tools/fuzz runs it); otherwise it replays
    the files it is given. `name_corpus_test` runs every file of `corpus` (a folder of the
    package) through the target in the ordinary test suite, under whatever sanitizers
    the suite uses, so each crash once found stays a regression test.
    """
    native.cc_library(
        name = name + "_target",
        testonly = True,
        srcs = srcs,
        copts = KEEL_TEST_COPTS + copts,
        deps = deps + ["//fuzz:inputs"],
        alwayslink = True,
        **kwargs
    )
    corpus_dir = native.package_name() + "/" + corpus
    native.cc_binary(
        name = name,
        testonly = True,
        linkopts = select({
            "//fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = [":" + name + "_target"] + select({
            "//fuzz:libfuzzer": [],
            "//conditions:default": ["//fuzz:replay_main"],
        }),
        # tools/fuzz/run finds the targets by the first tag and their corpus by the second.
        tags = ["fuzzer", "keel_fuzz_corpus=" + corpus_dir],
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        args = [corpus_dir],
        data = native.glob([corpus + "/**"]),
        deps = [
            ":" + name + "_target",
            "//fuzz:corpus_test_main",
        ],
    )
