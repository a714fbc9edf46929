#include "symbolize/debuginfod.h"

#include <dlfcn.h>
#include <elfutils/debuginfod.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace tickprobe {
namespace {

std::vector<unsigned char> hex_to_bytes(const std::string& hex) {
  std::vector<unsigned char> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<unsigned char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// libdebuginfod is loaded (dlopen) on first use, as libdw itself does: it
// pulls in libcurl, GnuTLS, Kerberos, LDAP and libcrypto, ~5 MiB of RSS
// (measured in the agent) for a feature that is off unless DEBUGINFOD_URLS
// is set. The soname has been .so.1 since the library first shipped.
constexpr const char* kDebuginfodSoname = "libdebuginfod.so.1";

struct Client {
  std::mutex mu;
  void* library = nullptr;
  debuginfod_client* client = nullptr;
  decltype(&debuginfod_find_debuginfo) find_debuginfo = nullptr;
  bool tried = false;
  std::string load_error;
  // Answers per build-id for this process's life: the client caches on disk,
  // but a miss costs a query per server each time it is asked.
  std::unordered_map<std::string, std::string> answers;
};

Client& client() {
  static Client c;  // the client lives for the process: libdebuginfod keeps its curl handles
  return c;
}

}  // namespace

bool debuginfod_enabled() {
  const char* urls = std::getenv("DEBUGINFOD_URLS");
  return urls && *urls;
}

std::string debuginfod_find_debug_file(const std::string& build_id_hex, std::string* error) {
  if (!debuginfod_enabled() || build_id_hex.size() < 2) return {};
  Client& c = client();
  std::lock_guard<std::mutex> lock(c.mu);
  if (auto it = c.answers.find(build_id_hex); it != c.answers.end()) return it->second;
  if (!c.tried) {
    c.tried = true;
    // Never closed: the client keeps its curl handles for the process's life.
    c.library = dlopen(kDebuginfodSoname, RTLD_NOW | RTLD_LOCAL);
    if (!c.library) {
      const char* why = dlerror();
      c.load_error = std::string("debuginfod: cannot load ") + kDebuginfodSoname + ": " + (why ? why : "?");
    } else {
      auto begin = reinterpret_cast<decltype(&debuginfod_begin)>(dlsym(c.library, "debuginfod_begin"));
      c.find_debuginfo =
          reinterpret_cast<decltype(&debuginfod_find_debuginfo)>(dlsym(c.library, "debuginfod_find_debuginfo"));
      if (begin && c.find_debuginfo) c.client = begin();
      if (!c.client) c.load_error = "debuginfod_begin failed";
    }
  }
  if (!c.client) {
    if (error) *error = c.load_error;
    return {};
  }
  std::vector<unsigned char> id = hex_to_bytes(build_id_hex);
  char* path = nullptr;
  int fd = c.find_debuginfo(c.client, id.data(), static_cast<int>(id.size()), &path);
  std::string found;
  if (fd >= 0) {
    ::close(fd);
    if (path) found = path;
  } else if (error) {
    *error = std::string("debuginfod: ") + std::strerror(-fd);
  }
  std::free(path);
  if (c.answers.size() > 4096) c.answers.clear();
  c.answers[build_id_hex] = found;
  return found;
}

}  // namespace tickprobe
