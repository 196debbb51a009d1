#include "eal/internal/components.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/synchronization/mutex.h"

namespace keel::eal_internal {
namespace {

struct Registry {
  absl::Mutex mu;
  std::vector<ComponentInfo> components ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, uint32_t> layout_overrides ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

}  // namespace

void RegisterComponent(const ComponentInfo& info) {
  Registry& r = TheRegistry();
  absl::MutexLock lock(&r.mu);
  for (const ComponentInfo& c : r.components) {
    if (absl::string_view(c.name) == info.name) return;
  }
  r.components.push_back(info);
}

std::vector<ComponentInfo> RegisteredComponents() {
  Registry& r = TheRegistry();
  absl::MutexLock lock(&r.mu);
  std::vector<ComponentInfo> out = r.components;
  for (ComponentInfo& c : out) {
    auto it = r.layout_overrides.find(c.name);
    if (it != r.layout_overrides.end()) c.layout_version = it->second;
  }
  std::sort(out.begin(), out.end(), [](const ComponentInfo& a, const ComponentInfo& b) {
    return absl::string_view(a.name) < absl::string_view(b.name);
  });
  return out;
}

void SetLayoutVersionForTest(absl::string_view name, uint32_t layout_version) {
  Registry& r = TheRegistry();
  absl::MutexLock lock(&r.mu);
  r.layout_overrides[name] = layout_version;
}

namespace {
constexpr absl::string_view kReexecPayload = "keel/reexec-without-aslr";
}  // namespace

absl::Status ReexecWithoutAslr(absl::string_view why) {
  absl::Status status = absl::FailedPreconditionError(why);
  status.SetPayload(kReexecPayload, absl::Cord("1"));
  return status;
}

bool IsReexecWithoutAslr(const absl::Status& status) {
  return status.GetPayload(kReexecPayload).has_value();
}

bool IsAslrReexec() {
  const char* marker = std::getenv("KEEL_ASLR_REEXEC");
  return marker != nullptr && *marker == '1';
}

}  // namespace keel::eal_internal
