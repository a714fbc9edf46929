#include "probes/uprobe_binaries.h"

#include <unistd.h>

#include <set>

#include "symbolize/symbolizer.h"
#include "targets/target_spec.h"

namespace tickprobe {

std::vector<std::string> uprobe_candidate_binaries(uint32_t pid) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto consider = [&](const std::string& path) {
    if (path.empty() || path[0] != '/' || !seen.insert(path).second) return;
    out.push_back(path);
  };
  consider(process_exe(pid));
  for (const auto& m : read_proc_maps(pid, /*executable_only=*/true)) consider(m.path);
  return out;
}

std::string uprobe_open_path(uint32_t pid, const std::string& bin) {
  if (access(bin.c_str(), R_OK) == 0) return bin;
  return "/proc/" + std::to_string(pid) + "/root" + bin;
}

std::optional<SymbolSite> find_defining_binary(Symbolizer& symbolizer, uint32_t pid,
                                               const std::vector<std::string>& binaries, const std::string& symbol) {
  for (const auto& bin : binaries) {
    std::string path = uprobe_open_path(pid, bin);
    if (auto addr = symbolizer.find_symbol_address(path, symbol)) return SymbolSite{bin, path, *addr};
  }
  return std::nullopt;
}

std::string describe_binaries(const std::vector<std::string>& binaries, size_t max_names) {
  std::string out;
  for (size_t i = 0; i < binaries.size() && i < max_names; i++) {
    if (i) out += ", ";
    out += binaries[i].substr(binaries[i].rfind('/') + 1);
  }
  if (binaries.size() > max_names) out += " and " + std::to_string(binaries.size() - max_names) + " more";
  return out;
}

}  // namespace tickprobe
