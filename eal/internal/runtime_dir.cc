#include "base/status.h"
#include "eal/internal/runtime_dir.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace keel::eal_internal {

std::string RuntimeBaseDir() {
  if (const char* dir = std::getenv("KEEL_RUNTIME_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (::geteuid() == 0) return "/var/run/keel";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
    return absl::StrCat(xdg, "/keel");
  }
  return absl::StrCat("/tmp/keel-", ::geteuid());
}

std::string RuntimeDir(absl::string_view prefix) {
  return absl::StrCat(RuntimeBaseDir(), "/", prefix);
}

absl::Status MakePrivateDir(const std::string& dir) {
  // Create missing parents first (mode 0700; existing ones are left as they are).
  for (size_t slash = dir.find('/', 1); slash != std::string::npos;
       slash = dir.find('/', slash + 1)) {
    const std::string parent = dir.substr(0, slash);
    if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "cannot create runtime directory", parent);
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "cannot create runtime directory", dir);
  }
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    return ErrnoStatus(errno, "cannot open runtime directory", dir);
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("runtime directory %s is not a directory", dir));
  }
  if (st.st_uid != ::geteuid()) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "runtime directory %s belongs to uid %d, not to this process's uid %d", dir,
        st.st_uid, ::geteuid()));
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0) {
    return ErrnoStatus(errno, "cannot chmod runtime directory", dir);
  }
  return absl::OkStatus();
}

absl::Status RemoveFilesExcept(const std::string& dir, absl::string_view keep) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "cannot list", dir);
  absl::Status status;
  while (struct dirent* entry = ::readdir(d)) {
    const absl::string_view name = entry->d_name;
    if (name == "." || name == ".." || name == keep) continue;
    const std::string path = absl::StrCat(dir, "/", name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && status.ok()) {
      status = ErrnoStatus(errno, "cannot remove", path);
    }
  }
  ::closedir(d);
  return status;
}

}  // namespace keel::eal_internal
