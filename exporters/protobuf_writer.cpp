#include "exporters/protobuf_writer.h"

namespace tickprobe {

void ProtobufWriter::append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void ProtobufWriter::add_tag(uint32_t field, uint32_t wire_type) {
  append_varint(data_, (static_cast<uint64_t>(field) << 3) | wire_type);
}

void ProtobufWriter::add_varint(uint32_t field, uint64_t value) {
  add_tag(field, 0);
  append_varint(data_, value);
}

void ProtobufWriter::add_bytes(uint32_t field, std::string_view bytes) {
  add_tag(field, 2);
  append_varint(data_, bytes.size());
  data_.append(bytes);
}

void ProtobufWriter::add_packed_varints(uint32_t field, std::span<const uint64_t> values) {
  if (values.empty()) return;
  std::string packed;
  for (uint64_t v : values) append_varint(packed, v);
  add_bytes(field, packed);
}

void ProtobufWriter::add_packed_int64(uint32_t field, std::span<const int64_t> values) {
  if (values.empty()) return;
  std::string packed;
  for (int64_t v : values) append_varint(packed, static_cast<uint64_t>(v));
  add_bytes(field, packed);
}

}  // namespace tickprobe
