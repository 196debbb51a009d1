// hugepages: what dpdk-hugepages.py does, plus keel's segment files.
//
//   hugepages [--json]                                 reservations, mounts, keel's files
//   hugepages --reserve N [--pagesize SIZE] [--node N] reserve N pages (0 frees them)
//   hugepages --clear [--pagesize SIZE] [--node N]     --reserve 0, of every size unless
//                                                      --pagesize names one
//   hugepages --mount [--directory DIR] [--pagesize SIZE] [--uid U] [--gid G] [--mode M]
//   hugepages --unmount [--directory DIR]              DIR, or every hugetlbfs mount
//   hugepages --clean [--prefix P]                     remove dead groups' segment files
//
// Actions run in the order clean, unmount, reserve/clear, mount; with none, or with
// --show, the state is printed afterwards. SIZE is a page size such as 2M, 1G or 2048kB
// (default: the kernel's default hugepage size). keel's segment files
// (keel.PREFIX.GROUP.segN) are looked for in every hugetlbfs mount and in /dev/shm
// ($KEEL_SHM_DIR: --no-huge groups), or only in the --files-dir directories; a file is
// "alive" while some process maps it, and --clean removes only those no process maps.
// Exit code 0; 1 when an action failed (the others' results are still printed); 2 for
// bad arguments.
#include "memory/hugepages.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "base/names.h"
#include "base/status.h"
#include "base/units.h"
#include "telemetry/json.h"

namespace {

namespace memory = keel::memory;
using keel::telemetry::Json;

constexpr char kUsage[] =
    "usage: hugepages [--show] [--json] [--files-dir DIR]... [--sysfs-root DIR]\n"
    "                 [--reserve N | --clear] [--pagesize SIZE] [--node N]\n"
    "                 [--mount | --unmount] [--directory DIR] [--uid U] [--gid G] [--mode M]\n"
    "                 [--clean [--prefix P]]\n";

struct Args {
  bool show = false;
  bool json = false;
  std::optional<uint64_t> reserve;  // pages
  std::optional<uint64_t> page_size;
  std::optional<int> node;
  bool mount = false;
  bool unmount = false;
  std::string directory;  // --mount's (default /dev/hugepages) or --unmount's (default all)
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<mode_t> mode;
  bool clean = false;
  std::string prefix;
  std::vector<std::string> files_dirs;
  std::string sysfs_root = "/sys";
};

// "2M", "1G", "2048kB", "2097152" (bytes) -> bytes.
absl::StatusOr<uint64_t> ParsePageSize(absl::string_view text) {
  absl::string_view digits = text;
  uint64_t unit = 1;
  for (const auto& [suffix, scale] : {std::pair<const char*, uint64_t>{"kB", 1ULL << 10},
                                      {"K", 1ULL << 10},
                                      {"k", 1ULL << 10},
                                      {"M", 1ULL << 20},
                                      {"G", 1ULL << 30}}) {
    if (absl::ConsumeSuffix(&digits, suffix)) {
      unit = scale;
      break;
    }
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(digits, &n) || n == 0 || (n & (n - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--pagesize \"%s\": not a page size (a power of two such as 2M, 1G or 2048kB)", text));
  }
  return n * unit;
}

std::string PageSizeText(uint64_t bytes) {
  if (bytes >= (1ULL << 30) && bytes % (1ULL << 30) == 0) return absl::StrCat(bytes >> 30, "G");
  if (bytes >= (1ULL << 20) && bytes % (1ULL << 20) == 0) return absl::StrCat(bytes >> 20, "M");
  return absl::StrCat(bytes >> 10, "K");
}

// The kernel's default hugepage size (Hugepagesize in /proc/meminfo).
absl::StatusOr<uint64_t> DefaultPageSize() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    uint64_t kb = 0;
    if (absl::ConsumePrefix(&rest, "Hugepagesize:") &&
        absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(rest), " kB"), &kb)) {
      return kb * 1024;
    }
  }
  return absl::FailedPreconditionError(
      "this kernel has no hugepages (no Hugepagesize in "
      "/proc/meminfo)");
}

absl::StatusOr<uid_t> ParseUid(absl::string_view text) {
  uid_t id = 0;
  if (absl::SimpleAtoi(text, &id)) return id;
  if (const struct passwd* pw = ::getpwnam(std::string(text).c_str())) return pw->pw_uid;
  return absl::InvalidArgumentError(absl::StrFormat("--uid \"%s\": no such user", text));
}

absl::StatusOr<gid_t> ParseGid(absl::string_view text) {
  gid_t id = 0;
  if (absl::SimpleAtoi(text, &id)) return id;
  if (const struct group* gr = ::getgrnam(std::string(text).c_str())) return gr->gr_gid;
  return absl::InvalidArgumentError(absl::StrFormat("--gid \"%s\": no such group", text));
}

// The options that take a value.
constexpr absl::string_view kValueFlags[] = {
    "-r",          "--reserve", "-p",    "--pagesize", "-n",       "--node",      "-d",
    "--directory", "--uid",     "--gid", "--mode",     "--prefix", "--files-dir", "--sysfs-root"};

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> absl::StatusOr<std::string> {
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value"));
      return std::string(argv[++i]);
    };
    if (flag == "-h" || flag == "--help") return absl::CancelledError(kUsage);
    if (flag == "-s" || flag == "--show") {
      args.show = true;
    } else if (flag == "--json") {
      args.json = true;
    } else if (flag == "-c" || flag == "--clear") {
      args.reserve = 0;
    } else if (flag == "-m" || flag == "--mount") {
      args.mount = true;
    } else if (flag == "-u" || flag == "--unmount") {
      args.unmount = true;
    } else if (flag == "--clean") {
      args.clean = true;
    } else if (std::find(std::begin(kValueFlags), std::end(kValueFlags), flag) ==
               std::end(kValueFlags)) {
      return absl::InvalidArgumentError(absl::StrFormat("unknown option \"%s\"", flag));
    } else {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      if (flag == "-r" || flag == "--reserve") {
        uint64_t n = 0;
        if (!absl::SimpleAtoi(*v, &n)) {
          return absl::InvalidArgumentError(
              absl::StrFormat("--reserve \"%s\": not a number of pages", *v));
        }
        args.reserve = n;
      } else if (flag == "-p" || flag == "--pagesize") {
        absl::StatusOr<uint64_t> size = ParsePageSize(*v);
        if (!size.ok()) return size.status();
        args.page_size = *size;
      } else if (flag == "-n" || flag == "--node") {
        int node = 0;
        if (!absl::SimpleAtoi(*v, &node) || node < 0) {
          return absl::InvalidArgumentError(absl::StrFormat("--node \"%s\": not a node", *v));
        }
        args.node = node;
      } else if (flag == "-d" || flag == "--directory") {
        args.directory = *v;
      } else if (flag == "--uid") {
        absl::StatusOr<uid_t> uid = ParseUid(*v);
        if (!uid.ok()) return uid.status();
        args.uid = *uid;
      } else if (flag == "--gid") {
        absl::StatusOr<gid_t> gid = ParseGid(*v);
        if (!gid.ok()) return gid.status();
        args.gid = *gid;
      } else if (flag == "--mode") {
        char* end = nullptr;
        errno = 0;
        const unsigned long mode = std::strtoul(v->c_str(), &end, 8);
        if (v->empty() || !absl::ascii_isdigit((*v)[0]) || *end != '\0' || errno != 0 ||
            mode > 07777) {
          return absl::InvalidArgumentError(
              absl::StrFormat("--mode \"%s\": not an octal mode such as 0770", *v));
        }
        args.mode = static_cast<mode_t>(mode);
      } else if (flag == "--prefix") {
        args.prefix = *v;
      } else if (flag == "--files-dir") {
        args.files_dirs.push_back(*v);
      } else if (flag == "--sysfs-root") {
        args.sysfs_root = *v;
      } else {
        return absl::InvalidArgumentError(absl::StrFormat("unknown option \"%s\"", flag));
      }
    }
  }
  if (args.mount && args.unmount) {
    return absl::InvalidArgumentError("--mount and --unmount: choose one");
  }
  if (!args.prefix.empty() && !args.clean) {
    return absl::InvalidArgumentError("--prefix names the group --clean cleans: add --clean");
  }
  if ((args.uid || args.gid || args.mode) && !args.mount) {
    return absl::InvalidArgumentError("--uid, --gid and --mode set up a mount: add --mount");
  }
  if (args.node && !args.reserve) {
    return absl::InvalidArgumentError("--node says where to reserve: add --reserve N or --clear");
  }
  return args;
}

// Writes nr_hugepages for one page size (on one node, or machine-wide) and checks what
// the kernel gave: it gives fewer when memory is fragmented or short.
absl::Status Reserve(const Args& args, uint64_t page_size, std::string* report) {
  const std::string size_dir = absl::StrFormat("hugepages-%dkB", page_size / 1024);
  const std::string dir =
      args.node ? absl::StrFormat("%s/devices/system/node/node%d/hugepages/%s", args.sysfs_root,
                                  *args.node, size_dir)
                : absl::StrFormat("%s/kernel/mm/hugepages/%s", args.sysfs_root, size_dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        args.node ? absl::StrFormat("no %s pages on node %d here (%s is missing)",
                                    PageSizeText(page_size), *args.node, dir)
                  : absl::StrFormat("this kernel has no %s pages (%s is missing)",
                                    PageSizeText(page_size), dir));
  }
  const std::string path = dir + "/nr_hugepages";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return keel::ErrnoStatus(errno, "cannot open", path);
  const std::string text = absl::StrCat(*args.reserve, "\n");
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int write_errno = errno;
  ::close(fd);
  if (!written) return keel::ErrnoStatus(write_errno, "cannot write", path);
  uint64_t now = 0;
  std::ifstream(path) >> now;
  const std::string where = args.node ? absl::StrCat(" on node ", *args.node) : "";
  if (now < *args.reserve) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("asked for %d pages of %s%s, the kernel gave %d (memory too short or "
                        "fragmented; try at boot, or fewer)",
                        *args.reserve, PageSizeText(page_size), where, now));
  }
  *report = absl::StrFormat("%d pages of %s reserved%s", now, PageSizeText(page_size), where);
  if (now > *args.reserve) {
    // Pages in use cannot be taken back: the kernel keeps them (as surplus) until freed.
    absl::StrAppendFormat(report, " (asked for %d: %d are in use and stay until freed)",
                          *args.reserve, now - *args.reserve);
  }
  return absl::OkStatus();
}

absl::Status Mount(const Args& args, uint64_t page_size, std::string* report) {
  const std::string dir = args.directory.empty() ? "/dev/hugepages" : args.directory;
  // Compared by what the paths resolve to: "dir/", "./dir" and a symlink are one mount.
  auto resolved = [](const std::string& path) {
    char buf[PATH_MAX];
    return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
  };
  for (const memory::HugetlbfsMount& m : memory::HugetlbfsMounts()) {
    if (resolved(m.path) == resolved(dir)) {
      return absl::AlreadyExistsError(
          absl::StrFormat("%s is already a hugetlbfs mount (%s)", dir, m.options));
    }
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return keel::ErrnoStatus(errno, "cannot create", dir);
  }
  std::string options = absl::StrCat("pagesize=", PageSizeText(page_size));
  if (args.uid) absl::StrAppend(&options, ",uid=", *args.uid);
  if (args.gid) absl::StrAppend(&options, ",gid=", *args.gid);
  if (args.mode) absl::StrAppendFormat(&options, ",mode=%04o", *args.mode);
  if (::mount("nodev", dir.c_str(), "hugetlbfs", 0, options.c_str()) != 0) {
    return keel::ErrnoStatus(errno, absl::StrCat("cannot mount hugetlbfs (", options, ") on"), dir);
  }
  *report = absl::StrFormat("hugetlbfs mounted on %s (%s)", dir, options);
  return absl::OkStatus();
}

absl::Status Unmount(const Args& args, std::vector<std::string>* report) {
  std::vector<std::string> targets;
  for (const memory::HugetlbfsMount& m : memory::HugetlbfsMounts()) {
    if (args.directory.empty() || m.path == args.directory) targets.push_back(m.path);
  }
  if (targets.empty()) {
    return args.directory.empty() ? absl::OkStatus()
                                  : absl::NotFoundError(absl::StrFormat(
                                        "%s is not a hugetlbfs mount", args.directory));
  }
  for (const std::string& dir : targets) {
    if (::umount(dir.c_str()) != 0) {
      return keel::ErrnoStatus(errno, "cannot unmount", dir);  // EBUSY: a group maps it
    }
    report->push_back(absl::StrCat("unmounted ", dir));
  }
  return absl::OkStatus();
}

Json FileJson(const memory::SegmentFile& f) {
  Json file = Json::Object();
  file.Set("path", f.path)
      .Set("prefix", f.name.prefix)
      .Set("group", absl::StrFormat("%016x", f.name.group_id))
      .Set("segment", f.name.index)
      .Set("bytes", f.bytes)
      .Set("alive", f.in_use);
  if (!f.unknown.empty()) file.Set("alive", nullptr).Set("unknown", f.unknown);
  return file;
}

Json StateJson(const Args& args) {
  Json reservations = Json::Array();
  for (const memory::HugepageReservation& r : memory::HugepageReservations(args.sysfs_root)) {
    Json row = Json::Object().Set("page_size", r.page_size);
    row.Set("node", r.node < 0 ? Json() : Json(r.node)).Set("total", r.total).Set("free", r.free);
    if (r.node < 0) row.Set("reserved", r.reserved);
    reservations.Push(row.Set("surplus", r.surplus));
  }
  Json mounts = Json::Array();
  for (const memory::HugetlbfsMount& m : memory::HugetlbfsMounts()) {
    mounts.Push(
        Json::Object().Set("path", m.path).Set("page_size", m.page_size).Set("options", m.options));
  }
  Json files = Json::Array();
  for (const memory::SegmentFile& f : memory::SegmentFiles(args.files_dirs))
    files.Push(FileJson(f));
  return Json::Object().Set("reservations", reservations).Set("mounts", mounts).Set("files", files);
}

void PrintState(const Args& args) {
  const std::vector<memory::HugepageReservation> rows =
      memory::HugepageReservations(args.sysfs_root);
  std::printf("%-6s %-9s %8s %8s %8s %8s\n", "node", "pagesize", "total", "free", "reserved",
              "surplus");
  if (rows.empty()) std::printf("(this kernel has no hugepages)\n");
  for (const memory::HugepageReservation& r : rows) {
    std::printf("%-6s %-9s %8lu %8lu %8s %8lu\n", r.node < 0 ? "all" : absl::StrCat(r.node).c_str(),
                PageSizeText(r.page_size).c_str(), static_cast<unsigned long>(r.total),
                static_cast<unsigned long>(r.free),
                r.node < 0 ? absl::StrCat(r.reserved).c_str() : "-",
                static_cast<unsigned long>(r.surplus));
  }
  std::printf("\nhugetlbfs mounts\n");
  const std::vector<memory::HugetlbfsMount> mounts = memory::HugetlbfsMounts();
  if (mounts.empty()) std::printf("  (none: hugepages --mount)\n");
  for (const memory::HugetlbfsMount& m : mounts) {
    std::printf("  %-24s %-5s %s\n", m.path.c_str(), PageSizeText(m.page_size).c_str(),
                m.options.c_str());
  }
  std::printf("\nkeel segment files\n");
  const std::vector<memory::SegmentFile> files = memory::SegmentFiles(args.files_dirs);
  if (files.empty()) std::printf("  (none)\n");
  for (const memory::SegmentFile& f : files) {
    // Names come from a directory other users may write: escaped, never printed raw.
    std::printf("  %-5s %-16s group %016lx seg %-2d %10s  %s\n",
                !f.unknown.empty() ? "?"
                : f.in_use         ? "alive"
                                   : "dead",
                keel::Printable(f.name.prefix).c_str(), static_cast<unsigned long>(f.name.group_id),
                f.name.index, keel::FormatMib(f.bytes).c_str(), keel::Printable(f.path).c_str());
    if (!f.unknown.empty()) std::printf("        (cannot tell: %s)\n", f.unknown.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<Args> parsed = ParseArgs(argc, argv);
  if (absl::IsCancelled(parsed.status())) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!parsed.ok()) {
    std::fprintf(stderr, "hugepages: %s\n%s", std::string(parsed.status().message()).c_str(),
                 kUsage);
    return 2;
  }
  const Args& args = *parsed;
  std::vector<std::string> done;    // what the actions did, one line each
  std::vector<std::string> errors;  // what they could not do; the exit code is then 1
  Json removed = Json::Array();
  Json kept = Json::Array();
  if (args.clean) {
    for (const memory::SegmentFile& f : memory::SegmentFiles(args.files_dirs)) {
      if (!args.prefix.empty() && f.name.prefix != args.prefix) continue;
      // RemoveUnusedSegmentFile decides under the write lock, never from the listing
      // alone: a file listed dead that came alive since is kept.
      absl::Status status = f.in_use ? absl::FailedPreconditionError("alive")
                                     : memory::RemoveUnusedSegmentFile(f.path);
      const std::string path = keel::Printable(f.path);
      if (status.ok()) {
        removed.Push(FileJson(f));
        done.push_back(absl::StrCat("removed ", path));
      } else if (absl::IsNotFound(status)) {
        done.push_back(absl::StrCat("gone already ", path, " (removed by another cleaner)"));
      } else if (absl::IsFailedPrecondition(status)) {
        kept.Push(FileJson(f));
        const std::string why = !f.unknown.empty() ? absl::StrCat("cannot tell: ", f.unknown)
                                : f.in_use         ? std::string("alive")
                                                   : std::string(status.message());
        done.push_back(absl::StrCat("kept ", path, " (", why, ")"));
      } else {
        errors.push_back(std::string(status.message()));  // the next file may still go
      }
    }
  }
  // Unmount, reserve and mount build on each other: the first failure ends them.
  absl::Status status = args.unmount ? Unmount(args, &done) : absl::OkStatus();
  if (status.ok() && (args.reserve || args.mount)) {
    std::vector<uint64_t> sizes;
    if (args.page_size) {
      sizes.push_back(*args.page_size);
    } else if (args.reserve == uint64_t{0} && !args.mount) {
      // --clear without --pagesize: every size (on --node, or machine-wide), as
      // dpdk-hugepages.py --clear does.
      for (const memory::HugepageReservation& r : memory::HugepageReservations(args.sysfs_root)) {
        if (r.node == args.node.value_or(-1)) sizes.push_back(r.page_size);
      }
    } else if (absl::StatusOr<uint64_t> size = DefaultPageSize(); size.ok()) {
      sizes.push_back(*size);
    } else {
      status = size.status();
    }
    std::string report;
    for (uint64_t size : sizes) {
      if (!status.ok() || !args.reserve) break;
      status = Reserve(args, size, &report);
      if (status.ok()) done.push_back(report);
    }
    if (status.ok() && args.mount) {
      status = Mount(args, sizes.front(), &report);
      if (status.ok()) done.push_back(report);
    }
  }
  if (!status.ok()) errors.push_back(std::string(status.message()));

  const bool acted = args.clean || args.unmount || args.reserve || args.mount;
  const bool show = args.show || !acted;
  if (args.json) {
    Json out = show ? StateJson(args) : Json::Object();
    if (args.clean) out.Set("removed", removed).Set("kept", kept);
    if (acted) out.Set("done", Json::Strings(done)).Set("errors", Json::Strings(errors));
    std::printf("%s\n", out.Dump().c_str());
  } else {
    for (const std::string& line : done) std::printf("%s\n", line.c_str());
    if (show) {
      if (acted) std::printf("\n");
      PrintState(args);
    }
  }
  for (const std::string& e : errors) std::fprintf(stderr, "hugepages: %s\n", e.c_str());
  return errors.empty() ? 0 : 1;
}
