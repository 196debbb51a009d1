"""The repositories keel needs from a WORKSPACE, keel's own and a dependant's alike.

keel builds offline with Debian's Bazel 4 (bazel-bootstrap) and Debian's packages only.
Bazel 4 asks for four repositories; keel_dependencies() declares them: the two stubs
where the workspace has not declared them already, and @platforms and @rules_java from
Debian 12's bazel-platforms and bazel-rules-java packages (tools/setup installs them)
in place of Bazel's own, which it would download. A workspace that brings its own
@platforms and @rules_java calls keel_dependencies(debian_platforms = False).

  @rules_cc               a stub forwarding to the native C++ rules (Debian's
                          bazel-rules-cc is too new for Bazel 4)
  @remote_coverage_tools  a stub (`bazel test` references it even without coverage)
  @platforms, @rules_java Debian's bazel-platforms and bazel-rules-java packages

In a dependant's WORKSPACE (see examples/consumer):

    local_repository(name = "keel", path = "/path/to/keel")
    load("@keel//bazel:deps.bzl", "keel_dependencies")
    keel_dependencies()
"""

_RULES_CC_DEFS = '''"""Stub of @rules_cc//cc:defs.bzl for Bazel 4: the native C++ rules."""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_import = native.objc_import
objc_library = native.objc_library
'''

_COVERAGE_BUILD = '''package(default_visibility = ["//visibility:public"])

filegroup(name = "coverage_report_generator")

filegroup(name = "lcov_merger")

filegroup(name = "Main")
'''

def _files_repository_impl(ctx):
    for path, content in ctx.attr.files.items():
        ctx.file(path, content, executable = False)

# A repository made of the files given inline: needs no path to keel's sources.
_files_repository = repository_rule(
    implementation = _files_repository_impl,
    attrs = {"files": attr.string_dict(mandatory = True)},
)

# Where Debian's bazel-platforms and bazel-rules-java put their repositories.
DEBIAN_PLATFORMS = "/usr/share/bazel/tools/platforms"
DEBIAN_RULES_JAVA = "/usr/share/bazel/rules/java"

def keel_dependencies(debian_platforms = True):
    """Declares @rules_cc, @remote_coverage_tools, @platforms and @rules_java.

    Args:
      debian_platforms: declare @platforms and @rules_java at Debian's paths (False:
        the workspace declares its own).
    """
    if not native.existing_rule("rules_cc"):
        _files_repository(
            name = "rules_cc",
            files = {
                "WORKSPACE": 'workspace(name = "rules_cc")\n',
                "BUILD": "",
                "cc/BUILD": "",
                "cc/defs.bzl": _RULES_CC_DEFS,
            },
        )
    if not native.existing_rule("remote_coverage_tools"):
        _files_repository(
            name = "remote_coverage_tools",
            files = {
                "WORKSPACE": 'workspace(name = "remote_coverage_tools")\n',
                "BUILD": _COVERAGE_BUILD,
            },
        )

    # Bazel 4 declares these two itself (to download them); Debian's copies replace them.
    if debian_platforms:
        native.local_repository(name = "platforms", path = DEBIAN_PLATFORMS)
        native.local_repository(name = "rules_java", path = DEBIAN_RULES_JAVA)
