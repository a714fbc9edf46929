// Names the peer of a process's socket from outside: /proc/PID/fd/FD gives
// the socket inode, /proc/PID/net/{tcp,tcp6,udp,udp6} give its addresses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tickprobe {

struct SocketEndpoints {
  std::string protocol;  // tcp, tcp6, udp, udp6
  std::string local;     // "127.0.0.1:9000", "[::1]:9000"
  std::string remote;
};

// nullopt when the fd is closed, not a socket, or not an inet socket.
std::optional<SocketEndpoints> socket_endpoints(uint32_t pid, int fd);

// Formats an address from a /proc/net/tcp{,6} field ("0100007F:1F90").
std::string format_proc_net_address(const std::string& field, bool v6);

}  // namespace tickprobe
