#include "symbolize/kernel_symbols.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>

namespace tickprobe {
namespace {
// kallsyms has no sizes, so the last symbol would swallow every address above
// it; past this distance an address counts as unknown.
constexpr uint64_t kMaxDistancePastLast = 1 << 20;
}  // namespace

void KernelSymbols::load(const std::string& text) {
  addrs_.clear();
  names_.clear();
  module_runs_.clear();
  pool_.assign(1, '\0');  // offset 0 is the empty string (no module)
  struct Parsed {
    uint64_t addr;
    uint32_t name;    // pool offset | kPaddingFlag
    uint32_t module;  // pool offset, 0: the kernel image
  };
  std::vector<Parsed> parsed;
  // Interns names and module names while loading (dropped after it).
  std::unordered_map<std::string_view, uint32_t> interned;
  std::vector<std::string_view> order;  // interned names, to build the pool once
  std::vector<uint32_t> offsets;
  auto intern = [&](std::string_view s) {
    auto [it, fresh] = interned.try_emplace(s, static_cast<uint32_t>(order.size()));
    if (fresh) order.push_back(s);
    return it->second;
  };
  static constexpr std::string_view kPadding = "__pfx_";
  std::string_view all(text);
  size_t line_start = 0;
  while (line_start < all.size()) {
    size_t nl = all.find('\n', line_start);
    std::string_view line =
        all.substr(line_start, nl == std::string_view::npos ? std::string_view::npos : nl - line_start);
    line_start = nl == std::string_view::npos ? all.size() : nl + 1;
    // "ffffffff82266810 T schedule" or "ffffffffc0a01000 t foo\t[module]"
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > 16) continue;
    uint64_t addr = 0;
    bool hex = true;
    for (size_t i = 0; i < sp && hex; ++i) {
      char c = line[i];
      int v = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (v < 0) hex = false;
      addr = addr << 4 | static_cast<uint64_t>(v);
    }
    if (!hex || addr == 0) continue;
    size_t pos = sp + 1;
    if (pos + 2 > line.size()) continue;
    char type = line[pos];
    if (type != 't' && type != 'T' && type != 'w' && type != 'W') continue;
    pos += 2;
    size_t name_end = line.find_first_of(" \t", pos);
    std::string_view name =
        line.substr(pos, name_end == std::string_view::npos ? std::string_view::npos : name_end - pos);
    std::string_view module;
    if (name_end != std::string_view::npos) {
      size_t lb = line.find('[', name_end), rb = line.find(']', name_end);
      if (lb != std::string_view::npos && rb != std::string_view::npos && rb > lb)
        module = line.substr(lb + 1, rb - lb - 1);
    }
    uint32_t flag = 0;
    if (name.size() > kPadding.size() && name.substr(0, kPadding.size()) == kPadding) {
      name.remove_prefix(kPadding.size());
      flag = kPaddingFlag;
    }
    if (name.empty()) continue;
    parsed.push_back({addr, intern(name) | flag, module.empty() ? ~0u : intern(module)});
  }
  size_t bytes = 1;
  for (std::string_view s : order) bytes += s.size() + 1;
  pool_.reserve(bytes);
  offsets.reserve(order.size());
  for (std::string_view s : order) {
    offsets.push_back(static_cast<uint32_t>(pool_.size()));
    pool_.append(s).push_back('\0');
  }
  std::stable_sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) { return a.addr < b.addr; });
  addrs_.reserve(parsed.size());
  names_.reserve(parsed.size());
  uint32_t current_module = 0;
  for (const Parsed& p : parsed) {
    addrs_.push_back(p.addr);
    names_.push_back(offsets[p.name & ~kPaddingFlag] | (p.name & kPaddingFlag));
    uint32_t module = p.module == ~0u ? 0 : offsets[p.module];
    if (module != current_module) {
      module_runs_.emplace_back(static_cast<uint32_t>(addrs_.size() - 1), module);
      current_module = module;
    }
  }
  module_runs_.shrink_to_fit();
}

bool KernelSymbols::load_from_proc() {
  std::ifstream in("/proc/kallsyms");
  if (!in) return false;
  std::stringstream buf;
  buf << in.rdbuf();
  load(buf.str());
  return !addrs_.empty();
}

bool KernelSymbols::lookup(uint64_t addr, Hit* hit) const {
  auto it = std::upper_bound(addrs_.begin(), addrs_.end(), addr);
  if (it == addrs_.begin()) return false;
  size_t i = static_cast<size_t>(it - addrs_.begin()) - 1;
  if (it == addrs_.end() && addr - addrs_[i] > kMaxDistancePastLast) return false;
  hit->prefix = names_[i] & kPaddingFlag ? "__pfx_" : "";
  hit->name = pool_.data() + (names_[i] & ~kPaddingFlag);
  auto run = std::upper_bound(module_runs_.begin(), module_runs_.end(), static_cast<uint32_t>(i),
                              [](uint32_t idx, const std::pair<uint32_t, uint32_t>& r) { return idx < r.first; });
  hit->module = pool_.data() + (run == module_runs_.begin() ? 0 : (run - 1)->second);
  hit->symbol_address = addrs_[i];
  return true;
}

}  // namespace tickprobe
