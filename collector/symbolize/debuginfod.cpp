#include "symbolize/debuginfod.h"

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

struct Client {
  std::mutex mu;
  debuginfod_client* client = nullptr;
  bool tried = false;
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
    c.client = debuginfod_begin();
  }
  if (!c.client) {
    if (error) *error = "debuginfod_begin failed";
    return {};
  }
  std::vector<unsigned char> id = hex_to_bytes(build_id_hex);
  char* path = nullptr;
  int fd = debuginfod_find_debuginfo(c.client, id.data(), static_cast<int>(id.size()), &path);
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
