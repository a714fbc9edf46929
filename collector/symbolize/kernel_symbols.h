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
  bool empty() const { return addrs_.empty(); }
  size_t size() const { return addrs_.size(); }

  struct Hit {
    const char* prefix;  // "" or "__pfx_" (the name is prefix + name)
    const char* name;
    const char* module;  // "" for the kernel image
    uint64_t symbol_address;
  };
  // The symbol at or before `addr` (kallsyms has no sizes). false when addr
  // is below the first symbol or far past the last.
  bool lookup(uint64_t addr, Hit* hit) const;

 private:
  // ~120k text symbols on a 6.x kernel, held for the agent's life, so
  // stored tight (measured: 5.9 MiB as {addr, name, module} records with
  // one string per symbol, 2.8 MiB so):
  //  - addresses and name offsets in two arrays (the search reads 8 bytes
  //    per step);
  //  - each distinct name once in the pool, and the "__pfx_NAME" padding
  //    symbols of CONFIG_FUNCTION_PADDING (half of them) as NAME plus a
  //    flag bit, as they are nearly always followed by NAME;
  //  - module names per run of symbols (modules are contiguous ranges).
  static constexpr uint32_t kPaddingFlag = 1u << 31;
  std::vector<uint64_t> addrs_;                             // sorted
  std::vector<uint32_t> names_;                             // pool offset | kPaddingFlag
  std::vector<std::pair<uint32_t, uint32_t>> module_runs_;  // (first symbol index, module pool offset), by index
  std::string pool_;                                        // NUL-separated; offset 0 is ""
};

}  // namespace tickprobe
