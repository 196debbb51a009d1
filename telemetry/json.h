// keel::telemetry::Json: a JSON value built in code and written as compact JSON text.
//
// What telemetry handlers return (and what procinfo prints): null, booleans, integers,
// doubles, strings, arrays and objects whose keys keep their insertion order.
//
//   Json ring = Json::Object();
//   ring.Set("name", "PRI_2_SEC").Set("size", 1024).Set("flags", Json::Array().Push("sp"));
//   ring.Dump();  // {"name":"PRI_2_SEC","size":1024,"flags":["sp"]}
//
// Dump() always writes valid JSON in plain ASCII: control characters, quotes,
// backslashes and every byte above 0x7f are escaped (a byte above 0x7f is written as
// the code point of the same value, so text read from shared memory can never produce
// invalid UTF-8), and a NaN or infinite double is written as null.
//
// A Json is a value type: copyable, movable, not thread-safe to mutate while shared.
#ifndef KEEL_TELEMETRY_JSON_H_
#define KEEL_TELEMETRY_JSON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"

namespace keel::telemetry {

class Json {
 public:
  enum class Kind { kNull, kBool, kInt, kUint, kDouble, kString, kArray, kObject };

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : kind_(Kind::kBool), int_(b ? 1 : 0) {}
  template <typename T,
            std::enable_if_t<
                std::is_integral_v<T> && !std::is_same_v<T, bool> && std::is_signed_v<T>, int> = 0>
  Json(T v) : kind_(Kind::kInt), int_(v) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                             std::is_unsigned_v<T>,
                                         int> = 0>
  Json(T v) : kind_(Kind::kUint), uint_(v) {}
  Json(double v) : kind_(Kind::kDouble), double_(v) {}
  Json(const char* s) : kind_(Kind::kString), string_(s) {}
  Json(absl::string_view s) : kind_(Kind::kString), string_(s) {}
  Json(std::string s) : kind_(Kind::kString), string_(std::move(s)) {}

  static Json Array() { return Json(Kind::kArray); }
  static Json Object() { return Json(Kind::kObject); }
  // An array of strings.
  static Json Strings(const std::vector<std::string>& strings);

  // Appends to an array (a null becomes an empty array first). Returns *this.
  Json& Push(Json value);
  // Sets `key` of an object (a null becomes an empty object first): a new key goes last,
  // an existing one keeps its place and takes the new value. Returns *this.
  Json& Set(absl::string_view key, Json value);

  Kind kind() const { return kind_; }
  // Elements of an array or members of an object; 0 for scalars.
  size_t size() const { return items_.size(); }

  // Compact JSON text.
  std::string Dump() const;
  void AppendTo(std::string* out) const;

 private:
  explicit Json(Kind kind) : kind_(kind) {}

  Kind kind_ = Kind::kNull;
  int64_t int_ = 0;  // kBool (0 or 1), kInt
  uint64_t uint_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<Json> items_;        // kArray elements, kObject values
  std::vector<std::string> keys_;  // kObject keys, parallel to items_
};

// `s` as a JSON string literal, quotes included, escaped as Dump() escapes.
std::string JsonQuote(absl::string_view s);

}  // namespace keel::telemetry

#endif  // KEEL_TELEMETRY_JSON_H_
