// Where a uprobe for a symbol goes in one process: "the first mapped binary
// that defines the symbol" (the executable first, so a statically linked
// copy wins, then every mapped library in map order). Shared by the
// families that attach uprobes per pid (tls; alloc has the same rule inline
// and can move onto this).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tickprobe {

class Symbolizer;

struct SymbolSite {
  std::string binary;  // as mapped in the process, e.g. /usr/lib/x86_64-linux-gnu/libssl.so.3
  std::string path;    // where to open it from here (the binary, or /proc/PID/root/binary)
  uint64_t vaddr = 0;  // ELF virtual address of the symbol
};

// The executable, then every mapped executable file, deduplicated.
std::vector<std::string> uprobe_candidate_binaries(uint32_t pid);
// `bin` when it is readable from here, else through /proc/PID/root.
std::string uprobe_open_path(uint32_t pid, const std::string& bin);
// The first of `binaries` that defines `symbol`.
std::optional<SymbolSite> find_defining_binary(Symbolizer& symbolizer, uint32_t pid,
                                               const std::vector<std::string>& binaries, const std::string& symbol);
// "sleep, libc.so.6, ld-linux-x86-64.so.2": basenames for messages.
std::string describe_binaries(const std::vector<std::string>& binaries, size_t max_names = 8);

}  // namespace tickprobe
