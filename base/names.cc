#include "base/names.h"

#include "absl/strings/str_format.h"

namespace keel {

absl::Status CheckNameLength(absl::string_view what, absl::string_view name, size_t max_length) {
  if (name.empty() || name.size() > max_length) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s name \"%s\" must be 1 to %d characters (it has %d)", what,
                        Printable(name.substr(0, 80)), max_length, name.size()));
  }
  return absl::OkStatus();
}

std::string Printable(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace keel
