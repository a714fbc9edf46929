#include "core/bpf_link.h"

#include <unistd.h>

namespace tickprobe {
void UniqueFd::reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}
void BpfLink::close_fd(int fd) { close(fd); }
}  // namespace tickprobe
