#include "model/profile.h"

#include <cstdio>

namespace tickprobe {

std::string Frame::display_name() const {
  if (!function.empty()) return function;
  std::string mod = module.empty() ? std::string("?") : module;
  auto slash = mod.rfind('/');
  if (slash != std::string::npos) mod = mod.substr(slash + 1);
  char buf[64];
  std::snprintf(buf, sizeof buf, "+0x%llx", static_cast<unsigned long long>(kernel ? address : module_offset));
  return "[unknown] in " + mod + buf;
}

std::string Frame::display_name_with_line() const {
  std::string name = display_name();
  if (file.empty() && line == 0) return name;
  std::string base = file;
  auto slash = base.rfind('/');
  if (slash != std::string::npos) base = base.substr(slash + 1);
  if (base.empty()) base = "?";
  return name + " (" + base + (line ? ":" + std::to_string(line) : std::string()) + ")";
}

}  // namespace tickprobe
