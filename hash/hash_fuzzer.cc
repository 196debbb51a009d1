// Fuzz target: a table's parameters and a sequence of operations on its keys, on
// caller-provided memory (//hash:core), checked against a std::map.
//
// Input: a header choosing the parameters (any of them may be invalid, which Init must
// refuse with InvalidArgument or NotFound), then operations, one byte each plus a key.
// A key is either raw bytes from the input or one of 256 keys made from a byte (so that
// adds, lookups and deletes meet). After the operations, and every 32 of them, the table
// must pass Verify() and hold exactly the oracle's keys.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "fuzz/inputs.h"
#include "hash/hash.h"

namespace {

using keel::fuzz::Check;

using keel::hash::Table;

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t Half() {
    const uint16_t low = Byte();
    return static_cast<uint16_t>(low | Byte() << 8);
  }
  uint32_t Word() {
    uint32_t w = 0;
    for (int i = 0; i < 4; ++i) w |= static_cast<uint32_t>(Byte()) << (8 * i);
    return w;
  }
  // `n` bytes (zero padded past the end).
  std::string Bytes(size_t n) {
    std::string out(n, '\0');
    const size_t have = pos_ < size_ ? std::min(n, size_ - pos_) : 0;
    if (have > 0) std::memcpy(out.data(), data_ + pos_, have);
    pos_ += have;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct Entry {
  int32_t position;
  uint64_t data;
};

struct Freed {
  void operator()(void* p) const { std::free(p); }
};

class Run {
 public:
  // Writes go through `table`, lookups through `reader` (another handle to it).
  Run(Table table, Table reader, uint32_t key_length)
      : table_(table), reader_(reader), key_length_(key_length) {}

  void Operation(Input& in) {
    const uint8_t op = in.Byte();
    const std::string key = Key(in, op & 0x80);
    const uint64_t data = (static_cast<uint64_t>(op) << 32) | ++ops_;
    switch (op & 0x0f) {
      case 0:
      case 1:
      case 2:
        return Add(key, data, op & 0x40);
      case 3:
      case 4:
        return Delete(key, op & 0x40);
      case 5:
      case 6:
        return LookupOne(key, op & 0x40);
      case 7:
        return LookupMany(in, op);
      case 8:
        return FreeDeleted(in.Byte());
      case 9:
        return Position(static_cast<int32_t>(in.Half()) - 8);  // negative too
      case 10:
        if ((op & 0x70) != 0x70) return;  // rarely: the table starts over
        table_.Reset();
        oracle_.clear();
        by_position_.clear();
        deleted_.clear();
        return;
      default:
        return LookupOne(key, op & 0x40);
    }
  }

  // The table holds exactly the oracle's keys, each at its position with its data.
  void CheckAll() const {
    const absl::Status verified = table_.Verify();
    if (!verified.ok()) std::fprintf(stderr, "%s\n", verified.ToString().c_str());
    Check(verified.ok(), "Verify failed");
    Check(table_.Count() == oracle_.size(), "Count differs from the oracle");
    std::set<int32_t> seen;
    uint32_t next = 0;
    const void* key = nullptr;
    uint64_t data = 0;
    for (int32_t pos; (pos = table_.Iterate(&key, &data, &next)) >= 0;) {
      Check(seen.insert(pos).second, "Iterate returned a position twice");
      auto it = oracle_.find(std::string(static_cast<const char*>(key), key_length_));
      Check(it != oracle_.end(), "Iterate returned a key the oracle lacks");
      Check(it->second.position == pos && it->second.data == data,
            "Iterate's position or data differs");
    }
    Check(seen.size() == oracle_.size(), "Iterate missed keys");
  }

 private:
  std::string Key(Input& in, bool raw) const {
    if (raw) return in.Bytes(key_length_);
    // One of 256 keys: the byte, repeated.
    return std::string(key_length_, static_cast<char>(in.Byte()));
  }

  void Add(const std::string& key, uint64_t data, bool with_hash) {
    const int32_t pos = with_hash ? table_.AddWithHash(key.data(), table_.Hash(key.data()), data)
                                  : table_.Add(key.data(), data);
    auto it = oracle_.find(key);
    if (it != oracle_.end()) {
      Check(pos == it->second.position, "Add of a present key moved it");
      it->second.data = data;
      return;
    }
    if (pos == keel::hash::kNoSpace) {
      // Only a full table, or a table without overflow buckets whose cuckoo search found
      // no room, refuses a key.
      Check(oracle_.size() + deleted_.size() >= table_.entries() ||
                !(table_.flags() & keel::hash::kExtendableBuckets),
            "kNoSpace with room and overflow buckets");
      return;
    }
    Check(pos >= 0 && static_cast<uint32_t>(pos) < table_.entries(), "Add: bad position");
    Check(deleted_.count(pos) == 0, "Add reused a deleted, unfreed position");
    Check(by_position_.count(pos) == 0, "Add reused a live position");
    oracle_[key] = {pos, data};
    by_position_[pos] = key;
  }

  void Delete(const std::string& key, bool with_hash) {
    const int32_t pos = with_hash ? table_.DeleteWithHash(key.data(), table_.Hash(key.data()))
                                  : table_.Delete(key.data());
    auto it = oracle_.find(key);
    if (it == oracle_.end()) {
      Check(pos == keel::hash::kNotFound, "Delete of an absent key found it");
      return;
    }
    Check(pos == it->second.position, "Delete returned another position");
    if (table_.flags() & keel::hash::kNoFreeOnDelete) deleted_.insert(pos);
    oracle_.erase(it);
    by_position_.erase(pos);
  }

  void Expect(const std::string& key, int32_t pos, const uint64_t* data) const {
    auto it = oracle_.find(key);
    if (it == oracle_.end()) {
      Check(pos == keel::hash::kNotFound, "lookup found an absent key");
      return;
    }
    Check(pos == it->second.position, "lookup returned another position");
    if (data != nullptr) Check(*data == it->second.data, "lookup returned other data");
  }

  void LookupOne(const std::string& key, bool with_hash) const {
    uint64_t data = ~0ull;
    const int32_t pos =
        with_hash ? reader_.LookupWithHashData(key.data(), reader_.Hash(key.data()), &data)
                  : reader_.LookupData(key.data(), &data);
    Expect(key, pos, &data);
    Expect(key,
           with_hash ? reader_.LookupWithHash(key.data(), reader_.Hash(key.data()))
                     : reader_.Lookup(key.data()),
           nullptr);
  }

  // A bulk lookup of 1..kMaxBulk+1 keys (one more than the maximum must be refused).
  void LookupMany(Input& in, uint8_t op) const {
    const unsigned n = in.Byte() % (keel::hash::kMaxBulk + 1) + 1;
    std::vector<std::string> keys;
    for (unsigned i = 0; i < n; ++i) keys.push_back(Key(in, op & 0x80));
    std::vector<const void*> pointers;
    std::vector<uint32_t> hashes;
    for (const std::string& k : keys) {
      pointers.push_back(k.data());
      hashes.push_back(reader_.Hash(k.data()));
    }
    std::vector<int32_t> positions(n, 0x7fffffff);
    const bool with_hash = op & 0x40;
    const uint64_t hits =
        with_hash ? reader_.LookupBulkWithHash(pointers.data(), hashes.data(), n, positions.data())
                  : reader_.LookupBulk(pointers.data(), n, positions.data());
    if (n > keel::hash::kMaxBulk) {
      Check(hits == 0, "an oversized bulk lookup found keys");
      for (int32_t p : positions) Check(p == keel::hash::kInvalid, "oversized bulk: not kInvalid");
      return;
    }
    std::vector<uint64_t> data(n, ~0ull);
    const uint64_t data_hits =
        with_hash ? reader_.LookupBulkWithHashData(pointers.data(), hashes.data(), n, data.data())
                  : reader_.LookupBulkData(pointers.data(), n, data.data());
    Check(hits == data_hits, "bulk hit masks differ");
    for (unsigned i = 0; i < n; ++i) {
      const bool hit = (hits >> i) & 1;
      Check(hit == (positions[i] >= 0), "hit mask and position disagree");
      Expect(keys[i], positions[i], hit ? &data[i] : nullptr);
    }
  }

  // Frees one of the deleted positions (or tries a position that is not one).
  void FreeDeleted(uint8_t choice) {
    if (deleted_.empty() || choice & 0x80) {
      const int32_t pos = static_cast<int32_t>(choice) - 8;  // sometimes negative
      if (pos < 0 || deleted_.count(pos) == 0) {
        Check(table_.FreeKeyWithPosition(pos) == keel::hash::kInvalid,
              "freed a position that was not deleted");
      }
      return;
    }
    auto it = deleted_.begin();
    std::advance(it, choice % deleted_.size());
    Check(table_.FreeKeyWithPosition(*it) == 0, "could not free a deleted position");
    deleted_.erase(it);
  }

  void Position(int32_t pos) const {
    const void* key = reader_.GetKeyWithPosition(pos);
    auto it = by_position_.find(pos);
    if (it == by_position_.end()) {
      Check(key == nullptr, "GetKeyWithPosition: a key where none is");
      return;
    }
    Check(key != nullptr && std::memcmp(key, it->second.data(), key_length_) == 0,
          "GetKeyWithPosition: wrong key");
  }

  Table table_;
  Table reader_;
  uint32_t key_length_;
  uint32_t ops_ = 0;
  std::map<std::string, Entry> oracle_;
  std::map<int32_t, std::string> by_position_;  // the oracle's keys by position
  std::set<int32_t> deleted_;                   // kNoFreeOnDelete: deleted, not yet freed
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size > 16 * 1024) return -1;
  Input in(bytes, size);
  // Header: flags (bits 0-3), the function (bits 4-5: crc32c, jhash, unregistered,
  // empty), oversized fields (bit 6: entries, bit 7: key length); entries (16 bits,
  // 0..1023 used), key length (0..255), init value, a name length.
  const uint8_t choice = in.Byte();
  static const char* const kFunctions[] = {"crc32c", "jhash", "no_such_function", ""};
  keel::hash::Params params;
  params.flags = choice & 0x0f;
  params.function = kFunctions[(choice >> 4) & 3];
  params.entries = in.Half() & 0x03ff;
  params.key_length = in.Byte();
  params.init_value = in.Word();
  if (choice & 0x40) params.entries = keel::hash::kMaxEntries + 1;
  if (choice & 0x80) params.key_length = keel::hash::kMaxKeyLength + 1;
  const std::string name = "fuzz" + std::string(in.Byte() % 70, 'n');  // 4..73 characters
  params.name = name;

  const absl::StatusOr<size_t> size_needed = keel::hash::MemorySize(params);
  if (!size_needed.ok()) {
    Check(size_needed.status().code() == absl::StatusCode::kInvalidArgument ||
              size_needed.status().code() == absl::StatusCode::kNotFound,
          "MemorySize: neither InvalidArgument nor NotFound");
    Check(!size_needed.status().message().empty(), "MemorySize: a refusal without a reason");
    return 0;
  }
  std::unique_ptr<void, Freed> mem(std::aligned_alloc(64, (*size_needed + 63) / 64 * 64));
  Check(mem != nullptr, "out of memory");
  absl::StatusOr<Table> table = keel::hash::Init(mem.get(), params);
  if (!table.ok()) {
    Check(table.status().code() == absl::StatusCode::kInvalidArgument ||
              table.status().code() == absl::StatusCode::kNotFound,
          "Init: neither InvalidArgument nor NotFound");
    return 0;
  }
  Check(params.entries >= 1 && params.key_length >= 1 && params.name.size() <= 63,
        "Init accepted an invalid parameter");
  // A second handle, as another process would have: the lookups use it.
  absl::StatusOr<Table> attached = keel::hash::Attach(mem.get());
  Check(attached.ok(), "Attach refused a table Init built");

  Run run(*table, *attached, params.key_length);
  for (int i = 1; !in.empty(); ++i) {
    run.Operation(in);
    if (i % 32 == 0) run.CheckAll();
  }
  run.CheckAll();
  return 0;
}
