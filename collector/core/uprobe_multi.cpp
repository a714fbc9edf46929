#include "core/uprobe_multi.h"

#include <bpf/bpf.h>
#include <dlfcn.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

namespace tickprobe {
namespace {

// Not in Debian 12's UAPI headers (6.1): enum bpf_attach_type and the
// BPF_LINK_CREATE layout of Linux 6.6 (include/uapi/linux/bpf.h).
constexpr uint32_t kTraceUprobeMulti = 48;    // BPF_TRACE_UPROBE_MULTI
constexpr uint32_t kUprobeMultiReturn = 1;    // BPF_F_UPROBE_MULTI_RETURN
struct LinkCreateUprobeMulti {
  uint32_t prog_fd, target_fd, attach_type, flags;
  uint64_t path, offsets, ref_ctr_offsets, cookies;
  uint32_t cnt, uflags, pid;
};
static_assert(sizeof(LinkCreateUprobeMulti) <= sizeof(bpf_attr), "fits in union bpf_attr");

int link_create(int prog_fd, const char* path, const uint64_t* offsets, const uint64_t* cookies,
                const uint64_t* ref_ctr_offsets, uint32_t cnt, uint32_t flags, uint32_t pid) {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  auto* c = reinterpret_cast<LinkCreateUprobeMulti*>(&attr);
  c->prog_fd = static_cast<uint32_t>(prog_fd);
  c->attach_type = kTraceUprobeMulti;
  c->path = reinterpret_cast<uint64_t>(path);
  c->offsets = reinterpret_cast<uint64_t>(offsets);
  c->ref_ctr_offsets = reinterpret_cast<uint64_t>(ref_ctr_offsets);
  c->cookies = reinterpret_cast<uint64_t>(cookies);
  c->cnt = cnt;
  c->uflags = flags;
  c->pid = pid;
  return static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr)));
}

bool probe() {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = static_cast<bpf_attach_type>(kTraceUprobeMulti));
  int prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, nullptr, "GPL", insns, 2, &o);
  if (prog < 0) return false;
  // A link on libc's getpid, for this process only: EINVAL from the attach
  // type means no uprobe_multi (the program load alone proves nothing:
  // kernels before 5.18 ignore a kprobe program's expected_attach_type).
  bool ok = false;
  Dl_info info{};
  void* fn = dlsym(RTLD_DEFAULT, "getpid");
  if (fn && dladdr(fn, &info) && info.dli_fname && info.dli_fbase) {
    // libc's segments keep p_vaddr == p_offset, so the distance from the
    // load base is the file offset
    uint64_t off = reinterpret_cast<uint64_t>(fn) - reinterpret_cast<uint64_t>(info.dli_fbase), cookie = 0;
    uint32_t self = static_cast<uint32_t>(getpid());
    int l = link_create(prog, info.dli_fname, &off, &cookie, nullptr, 1, 0, self);
    ok = l >= 0;
    if (l >= 0) close(l);
  }
  close(prog);
  return ok;
}

}  // namespace

bool uprobe_multi_supported() {
  // TICKPROBE_NO_UPROBE_MULTI=1: the perf-event fallback on any kernel (to
  // compare the two, e.g. shutdown times; docs/agent.md "Shutdown").
  static const bool supported = !(std::getenv("TICKPROBE_NO_UPROBE_MULTI") &&
                                  std::strcmp(std::getenv("TICKPROBE_NO_UPROBE_MULTI"), "1") == 0) &&
                                probe();
  return supported;
}

bool use_uprobe_multi(bpf_object* obj, bool usdt) {
  if (!uprobe_multi_supported()) return false;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    const char* sec = bpf_program__section_name(prog);
    if (std::strncmp(sec, "uprobe", 6) == 0 || std::strncmp(sec, "uretprobe", 9) == 0 ||
        (usdt && std::strncmp(sec, "usdt", 4) == 0))
      bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(kTraceUprobeMulti));
  }
  return true;
}

bool loaded_for_uprobe_multi(const bpf_program* prog) {
  return static_cast<uint32_t>(bpf_program__expected_attach_type(prog)) == kTraceUprobeMulti;
}

int attach_uprobe_multi(const bpf_program* prog, uint32_t pid, const std::string& path, uint64_t offset,
                        uint64_t cookie, bool retprobe, BpfLink* out) {
  return attach_uprobe_multi(prog, pid, path, std::vector<uint64_t>{offset}, std::vector<uint64_t>{cookie}, {},
                             retprobe, out);
}

int attach_uprobe_multi(const bpf_program* prog, uint32_t pid, const std::string& path,
                        const std::vector<uint64_t>& offsets, const std::vector<uint64_t>& cookies,
                        const std::vector<uint64_t>& ref_ctr_offsets, bool retprobe, BpfLink* out) {
  if (offsets.empty() || (!cookies.empty() && cookies.size() != offsets.size()) ||
      (!ref_ctr_offsets.empty() && ref_ctr_offsets.size() != offsets.size()))
    return EINVAL;
  int fd = link_create(bpf_program__fd(prog), path.c_str(), offsets.data(), cookies.empty() ? nullptr : cookies.data(),
                       ref_ctr_offsets.empty() ? nullptr : ref_ctr_offsets.data(), static_cast<uint32_t>(offsets.size()),
                       retprobe ? kUprobeMultiReturn : 0, pid);
  if (fd < 0) return errno;
  *out = BpfLink::from_fd(fd);
  return 0;
}

void detach_skeleton_concurrently(bpf_object_skeleton* s) {
  if (!s) return;
  std::vector<BpfLink> links;
  for (int i = 0; i < s->prog_cnt; i++) {
    bpf_link** l = s->progs[i].link;
    if (l && *l) links.emplace_back(std::exchange(*l, nullptr));
  }
  destroy_links_concurrently(links);
}

void destroy_links_concurrently(std::vector<BpfLink>& links, std::vector<UniqueFd>* fds) {
  constexpr size_t kThreads = 16;
  size_t count = std::max(links.size(), fds ? fds->size() : 0);
  if (count < 2) {
    links.clear();
    if (fds) fds->clear();
    return;
  }
  size_t n = std::min(kThreads, count);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t t = 0; t < n; ++t)
    threads.emplace_back([&links, fds, t, n, count] {
      for (size_t i = t; i < count; i += n) {
        if (i < links.size()) links[i].reset();
        if (fds && i < fds->size()) (*fds)[i].reset();
      }
    });
  for (auto& th : threads) th.join();
  links.clear();
  if (fds) fds->clear();
}

}  // namespace tickprobe
