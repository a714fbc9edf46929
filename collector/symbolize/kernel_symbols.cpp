#include "symbolize/kernel_symbols.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace tickprobe {
namespace {
// kallsyms has no sizes, so the last symbol would swallow every address above
// it; past this distance an address counts as unknown.
constexpr uint64_t kMaxDistancePastLast = 1 << 20;
}  // namespace

void KernelSymbols::load(const std::string& text) {
  symbols_.clear();
  pool_.assign(1, '\0');  // offset 0 is the empty string (no module)
  std::istringstream in(text);
  std::string line;
  std::vector<Symbol> symbols;
  while (std::getline(in, line)) {
    // "ffffffff82266810 T schedule" or "ffffffffc0a01000 t foo\t[module]"
    char* end = nullptr;
    uint64_t addr = std::strtoull(line.c_str(), &end, 16);
    if (!end || *end != ' ' || addr == 0) continue;
    size_t pos = static_cast<size_t>(end - line.c_str()) + 1;
    if (pos + 2 > line.size()) continue;
    char type = line[pos];
    if (type != 't' && type != 'T' && type != 'w' && type != 'W') continue;
    pos += 2;
    size_t name_end = line.find_first_of(" \t", pos);
    std::string name = line.substr(pos, name_end == std::string::npos ? std::string::npos : name_end - pos);
    std::string module;
    if (name_end != std::string::npos) {
      size_t lb = line.find('[', name_end), rb = line.find(']', name_end);
      if (lb != std::string::npos && rb != std::string::npos && rb > lb) module = line.substr(lb + 1, rb - lb - 1);
    }
    if (name.empty()) continue;
    Symbol s{addr, static_cast<uint32_t>(pool_.size()), 0};
    pool_.append(name).push_back('\0');
    if (!module.empty()) {
      s.module_off = static_cast<uint32_t>(pool_.size());
      pool_.append(module).push_back('\0');
    }
    symbols.push_back(s);
  }
  std::stable_sort(symbols.begin(), symbols.end(), [](const Symbol& a, const Symbol& b) { return a.addr < b.addr; });
  symbols_ = std::move(symbols);
}

bool KernelSymbols::load_from_proc() {
  std::ifstream in("/proc/kallsyms");
  if (!in) return false;
  std::stringstream buf;
  buf << in.rdbuf();
  load(buf.str());
  return !symbols_.empty();
}

bool KernelSymbols::lookup(uint64_t addr, Hit* hit) const {
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), addr,
                             [](uint64_t a, const Symbol& s) { return a < s.addr; });
  if (it == symbols_.begin()) return false;
  const Symbol& s = *(it - 1);
  if (it == symbols_.end() && addr - s.addr > kMaxDistancePastLast) return false;
  hit->name = pool_.data() + s.name_off;
  hit->module = pool_.data() + s.module_off;
  hit->symbol_address = s.addr;
  return true;
}

}  // namespace tickprobe
