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

}  // namespace tickprobe
