// Private to the symbolizer: /proc/kallsyms, loaded once and sorted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tickprobe {

class KernelSymbols {
 public:
  // Parses kallsyms text (text symbols only). Addresses that are all zero
  // (kptr_restrict, not root) leave the table empty.
  void load(const std::string& kallsyms_text);
  bool load_from_proc();
  bool empty() const { return symbols_.empty(); }
  size_t size() const { return symbols_.size(); }

  struct Hit {
    const char* name;
    const char* module;  // "" for the kernel image
    uint64_t symbol_address;
  };
  // The symbol at or before `addr` (kallsyms has no sizes). false when addr
  // is below the first symbol or far past the last.
  bool lookup(uint64_t addr, Hit* hit) const;

 private:
  struct Symbol {
    uint64_t addr;
    uint32_t name_off;
    uint32_t module_off;
  };
  std::vector<Symbol> symbols_;
  std::string pool_;
};

}  // namespace tickprobe
