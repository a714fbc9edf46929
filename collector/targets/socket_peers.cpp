#include "targets/socket_peers.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tickprobe {

std::string format_proc_net_address(const std::string& field, bool v6) {
  auto colon = field.find(':');
  if (colon == std::string::npos) return field;
  std::string hex = field.substr(0, colon);
  unsigned port = static_cast<unsigned>(std::strtoul(field.c_str() + colon + 1, nullptr, 16));
  char buf[INET6_ADDRSTRLEN] = {};
  if (!v6 && hex.size() == 8) {
    in_addr a{};
    a.s_addr = static_cast<uint32_t>(std::strtoul(hex.c_str(), nullptr, 16));  // host order of the kernel's u32
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(port);
  }
  if (v6 && hex.size() == 32) {
    in6_addr a{};
    for (int w = 0; w < 4; w++) {
      uint32_t word = static_cast<uint32_t>(std::strtoul(hex.substr(static_cast<size_t>(w) * 8, 8).c_str(), nullptr, 16));
      std::memcpy(&a.s6_addr[w * 4], &word, 4);
    }
    inet_ntop(AF_INET6, &a, buf, sizeof(buf));
    // v4-mapped addresses read better as plain IPv4.
    std::string s(buf);
    if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) return s.substr(7) + ":" + std::to_string(port);
    return "[" + s + "]:" + std::to_string(port);
  }
  return field;
}

std::optional<SocketEndpoints> socket_endpoints(uint32_t pid, int fd) {
  std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  char target[128] = {};
  ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  if (n <= 0) return std::nullopt;
  std::string t(target, static_cast<size_t>(n));
  if (t.rfind("socket:[", 0) != 0) return std::nullopt;
  std::string inode = t.substr(8, t.size() - 9);
  for (const char* proto : {"tcp", "tcp6", "udp", "udp6"}) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/net/" + proto);
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout, ino;
      if (!(in >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> ino)) continue;
      if (ino != inode) continue;
      bool v6 = proto[3] == '6';
      return SocketEndpoints{proto, format_proc_net_address(local, v6), format_proc_net_address(remote, v6)};
    }
  }
  return std::nullopt;
}

}  // namespace tickprobe
