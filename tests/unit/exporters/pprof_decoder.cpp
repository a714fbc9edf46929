#include "pprof_decoder.h"

#include <cstdio>
#include <set>
#include <stdexcept>

namespace tickprobe::testing {

namespace {

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) throw std::runtime_error("truncated varint");
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("varint too long");
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > data_.size() - pos_) throw std::runtime_error("truncated length-delimited field");
    auto out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  // Reads a tag; returns field number, sets wire type.
  uint32_t tag(uint32_t& wire) {
    uint64_t t = varint();
    wire = t & 7;
    return static_cast<uint32_t>(t >> 3);
  }
  void skip(uint32_t wire) {
    if (wire == 0) varint();
    else if (wire == 2) bytes();
    else if (wire == 1) pos_ += 8;
    else if (wire == 5) pos_ += 4;
    else throw std::runtime_error("unsupported wire type " + std::to_string(wire));
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// Repeated varint field: packed (wire 2) or one element (wire 0).
template <typename T>
void repeated(Reader& r, uint32_t wire, std::vector<T>& out) {
  if (wire == 0) {
    out.push_back(static_cast<T>(r.varint()));
    return;
  }
  Reader packed(r.bytes());
  while (!packed.done()) out.push_back(static_cast<T>(packed.varint()));
}

template <typename Fn>
void each_field(std::string_view msg, Fn fn) {
  Reader r(msg);
  while (!r.done()) {
    uint32_t wire;
    uint32_t field = r.tag(wire);
    fn(r, field, wire);
  }
}

PbValueType decode_value_type(std::string_view m) {
  PbValueType v;
  each_field(m, [&](Reader& r, uint32_t f, uint32_t w) {
    if (f == 1 && w == 0) v.type = static_cast<int64_t>(r.varint());
    else if (f == 2 && w == 0) v.unit = static_cast<int64_t>(r.varint());
    else r.skip(w);
  });
  return v;
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

PbProfile decode_pprof(std::string_view raw) {
  PbProfile p;
  each_field(raw, [&](Reader& r, uint32_t f, uint32_t w) {
    switch (f) {
      case 1: p.sample_types.push_back(decode_value_type(r.bytes())); break;
      case 2: {
        PbSample s;
        each_field(r.bytes(), [&](Reader& sr, uint32_t sf, uint32_t sw) {
          if (sf == 1) repeated(sr, sw, s.location_ids);
          else if (sf == 2) repeated(sr, sw, s.values);
          else if (sf == 3) {
            PbLabel l;
            each_field(sr.bytes(), [&](Reader& lr, uint32_t lf, uint32_t lw) {
              if (lf == 1) l.key = static_cast<int64_t>(lr.varint());
              else if (lf == 2) l.str = static_cast<int64_t>(lr.varint());
              else if (lf == 3) l.num = static_cast<int64_t>(lr.varint());
              else if (lf == 4) l.num_unit = static_cast<int64_t>(lr.varint());
              else lr.skip(lw);
            });
            s.labels.push_back(l);
          } else sr.skip(sw);
        });
        p.samples.push_back(std::move(s));
        break;
      }
      case 3: {
        PbMapping m;
        each_field(r.bytes(), [&](Reader& mr, uint32_t mf, uint32_t mw) {
          if (mw != 0) return mr.skip(mw);
          uint64_t v = mr.varint();
          switch (mf) {
            case 1: m.id = v; break;
            case 2: m.memory_start = v; break;
            case 3: m.memory_limit = v; break;
            case 4: m.file_offset = v; break;
            case 5: m.filename = static_cast<int64_t>(v); break;
            case 6: m.build_id = static_cast<int64_t>(v); break;
            case 7: m.has_functions = v; break;
            case 8: m.has_filenames = v; break;
            case 9: m.has_line_numbers = v; break;
            case 10: m.has_inline_frames = v; break;
          }
        });
        p.mappings.push_back(m);
        break;
      }
      case 4: {
        PbLocation loc;
        each_field(r.bytes(), [&](Reader& lr, uint32_t lf, uint32_t lw) {
          if (lf == 1) loc.id = lr.varint();
          else if (lf == 2) loc.mapping_id = lr.varint();
          else if (lf == 3) loc.address = lr.varint();
          else if (lf == 4) {
            PbLine line;
            each_field(lr.bytes(), [&](Reader& nr, uint32_t nf, uint32_t nw) {
              if (nf == 1) line.function_id = nr.varint();
              else if (nf == 2) line.line = static_cast<int64_t>(nr.varint());
              else nr.skip(nw);
            });
            loc.lines.push_back(line);
          } else if (lf == 5) loc.is_folded = lr.varint();
          else lr.skip(lw);
        });
        p.locations.push_back(std::move(loc));
        break;
      }
      case 5: {
        PbFunction fn;
        each_field(r.bytes(), [&](Reader& fr, uint32_t ff, uint32_t fw) {
          if (fw != 0) return fr.skip(fw);
          uint64_t v = fr.varint();
          if (ff == 1) fn.id = v;
          else if (ff == 2) fn.name = static_cast<int64_t>(v);
          else if (ff == 3) fn.system_name = static_cast<int64_t>(v);
          else if (ff == 4) fn.filename = static_cast<int64_t>(v);
          else if (ff == 5) fn.start_line = static_cast<int64_t>(v);
        });
        p.functions.push_back(fn);
        break;
      }
      case 6: p.strings.emplace_back(r.bytes()); break;
      case 9: p.time_nanos = static_cast<int64_t>(r.varint()); break;
      case 10: p.duration_nanos = static_cast<int64_t>(r.varint()); break;
      case 11: p.period_type = decode_value_type(r.bytes()); break;
      case 12: p.period = static_cast<int64_t>(r.varint()); break;
      case 13: repeated(r, w, p.comments); break;
      case 14: p.default_sample_type = static_cast<int64_t>(r.varint()); break;
      default: r.skip(w);
    }
  });
  return p;
}

std::string check_pprof(const PbProfile& p) {
  auto str_ok = [&](int64_t i) { return i >= 0 && static_cast<size_t>(i) < p.strings.size(); };
  if (p.strings.empty() || !p.strings[0].empty()) return "string_table[0] must be \"\"";
  std::set<uint64_t> mappings, locations, functions;
  for (const auto& m : p.mappings) {
    if (m.id == 0 || !mappings.insert(m.id).second) return "bad or duplicate mapping id";
    if (!str_ok(m.filename)) return "mapping filename out of range";
    if (m.memory_limit <= m.memory_start) return "mapping with empty range";
  }
  for (const auto& f : p.functions) {
    if (f.id == 0 || !functions.insert(f.id).second) return "bad or duplicate function id";
    if (!str_ok(f.name) || !str_ok(f.system_name) || !str_ok(f.filename)) return "function string out of range";
  }
  for (const auto& l : p.locations) {
    if (l.id == 0 || !locations.insert(l.id).second) return "bad or duplicate location id";
    if (l.mapping_id != 0 && !mappings.count(l.mapping_id)) return "location refers to unknown mapping";
    for (const auto& m : p.mappings) {
      if (m.id == l.mapping_id && (l.address < m.memory_start || l.address >= m.memory_limit)) {
        return "location address " + hex(l.address) + " outside its mapping";
      }
    }
    for (const auto& line : l.lines) {
      if (!functions.count(line.function_id)) return "line refers to unknown function";
    }
  }
  for (const auto& s : p.samples) {
    if (s.values.size() != p.sample_types.size()) return "sample value count != sample_type count";
    for (uint64_t id : s.location_ids) {
      if (!locations.count(id)) return "sample refers to unknown location";
    }
    for (const auto& l : s.labels) {
      if (!str_ok(l.key) || !str_ok(l.str)) return "label string out of range";
    }
  }
  for (int64_t c : p.comments) {
    if (!str_ok(c)) return "comment out of range";
  }
  if (!str_ok(p.default_sample_type)) return "default_sample_type out of range";
  return {};
}

std::string pprof_to_text(const PbProfile& p) {
  auto s = [&](int64_t i) -> std::string {
    if (i < 0 || static_cast<size_t>(i) >= p.strings.size()) return "<bad string " + std::to_string(i) + ">";
    return "\"" + p.strings[i] + "\"";
  };
  std::string out;
  for (const auto& vt : p.sample_types) out += "sample_type " + s(vt.type) + " " + s(vt.unit) + "\n";
  out += "default_sample_type " + s(p.default_sample_type) + "\n";
  out += "period_type " + s(p.period_type.type) + " " + s(p.period_type.unit) + "\n";
  out += "period " + std::to_string(p.period) + "\n";
  out += "time_nanos " + std::to_string(p.time_nanos) + "\n";
  out += "duration_nanos " + std::to_string(p.duration_nanos) + "\n";
  for (int64_t c : p.comments) out += "comment " + s(c) + "\n";
  for (const auto& smp : p.samples) {
    out += "sample locations=[";
    for (size_t i = 0; i < smp.location_ids.size(); ++i) out += (i ? "," : "") + std::to_string(smp.location_ids[i]);
    out += "] values=[";
    for (size_t i = 0; i < smp.values.size(); ++i) out += (i ? "," : "") + std::to_string(smp.values[i]);
    out += "]";
    for (const auto& l : smp.labels) {
      out += " " + s(l.key) + "=" + (l.str ? s(l.str) : std::to_string(l.num));
    }
    out += "\n";
  }
  for (const auto& m : p.mappings) {
    out += "mapping " + std::to_string(m.id) + " " + hex(m.memory_start) + "-" + hex(m.memory_limit) +
           " offset=" + hex(m.file_offset) + " file=" + s(m.filename) + (m.has_functions ? " has_functions" : "") +
           (m.has_filenames ? " has_filenames" : "") + (m.has_line_numbers ? " has_line_numbers" : "") +
           (m.has_inline_frames ? " has_inline_frames" : "") + "\n";
  }
  for (const auto& l : p.locations) {
    out += "location " + std::to_string(l.id) + " mapping=" + std::to_string(l.mapping_id) + " address=" +
           hex(l.address);
    for (const auto& line : l.lines) {
      out += " line{function=" + std::to_string(line.function_id) + " line=" + std::to_string(line.line) + "}";
    }
    out += "\n";
  }
  for (const auto& f : p.functions) {
    out += "function " + std::to_string(f.id) + " name=" + s(f.name) + " system_name=" + s(f.system_name) +
           " filename=" + s(f.filename) + "\n";
  }
  out += "strings " + std::to_string(p.strings.size()) + "\n";
  return out;
}

}  // namespace tickprobe::testing
