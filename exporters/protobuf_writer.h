// A minimal protocol-buffers wire-format encoder: just enough to write
// perftools.profiles.Profile by hand (varints, packed repeated varints,
// length-delimited strings and nested messages). No reflection, no schema.
//
// Nested messages are built in their own ProtobufWriter and appended with
// add_message(), which length-prefixes them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tickprobe {

class ProtobufWriter {
 public:
  // Wire type 0. int64 is encoded as its two's-complement uint64 (10 bytes
  // when negative), matching proto3 int64, not sint64.
  void add_varint(uint32_t field, uint64_t value);
  void add_int64(uint32_t field, int64_t value) { add_varint(field, static_cast<uint64_t>(value)); }
  // Skips the field when value == 0 (proto3 default), keeping output small.
  void add_varint_nonzero(uint32_t field, uint64_t value) {
    if (value != 0) add_varint(field, value);
  }
  void add_bool(uint32_t field, bool value) { add_varint(field, value ? 1 : 0); }
  // Wire type 2.
  void add_bytes(uint32_t field, std::string_view bytes);
  void add_message(uint32_t field, const ProtobufWriter& message) { add_bytes(field, message.data()); }
  // Packed repeated varints (wire type 2). Writes nothing for an empty span.
  void add_packed_varints(uint32_t field, std::span<const uint64_t> values);
  void add_packed_int64(uint32_t field, std::span<const int64_t> values);

  const std::string& data() const { return data_; }
  std::string take() { return std::move(data_); }
  bool empty() const { return data_.empty(); }

  static void append_varint(std::string& out, uint64_t value);

 private:
  void add_tag(uint32_t field, uint32_t wire_type);

  std::string data_;
};

}  // namespace tickprobe
