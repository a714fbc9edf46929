#include "core/doctor.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/result.h"
#include "core/uprobe_multi.h"
#include "symbolize/go_pclntab.h"
#include "targets/target_spec.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

namespace tickprobe {
namespace {

bool exists(const char* p) { return access(p, F_OK) == 0; }

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

const char* kCapsHint = "run as root, or grant the set of deploy/capabilities.txt (docs/privileges.md)";

struct Caps {
  bool ok = false;
  uint64_t eff = 0;
  bool has(int cap) const { return (eff >> cap) & 1; }
};
Caps effective_caps() {
  Caps c;
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return c;
  c.ok = true;
  c.eff = uint64_t(data[0].effective) | (uint64_t(data[1].effective) << 32);
  return c;
}
constexpr int kCapDacReadSearch = 2, kCapSysPtrace = 19, kCapSysAdmin = 21, kCapSyslog = 34, kCapPerfmon = 38,
              kCapBpf = 39;

// The capabilities each part of tickprobe needs (measured: docs/privileges.md).
std::vector<DoctorCheck> check_caps() {
  std::vector<DoctorCheck> out;
  Caps caps = effective_caps();
  auto yn = [&](int cap) { return caps.has(cap) ? "yes" : "no"; };
  DoctorCheck c{"capabilities (BPF, perf events)", false, true, "", kCapsHint};
  if (!caps.ok) {
    c.detail = std::string("capget failed: ") + std::strerror(errno);
    out.push_back(c);
    return out;
  }
  c.ok = caps.has(kCapSysAdmin) || (caps.has(kCapBpf) && caps.has(kCapPerfmon));
  c.detail = std::string("CAP_BPF=") + yn(kCapBpf) + " CAP_PERFMON=" + yn(kCapPerfmon);
  c.hint = "not permitted: grant CAP_BPF and CAP_PERFMON (or run as root)";
  out.push_back(c);
  DoctorCheck u{"capability for uprobes / USDT", caps.has(kCapSysAdmin), false,
                std::string("CAP_SYS_ADMIN=") + yn(kCapSysAdmin),
                "not permitted: coro, pauses, tls and the agent's runtime/tls families need CAP_SYS_ADMIN on this "
                "kernel (perf_event_open of a uprobe)"};
  out.push_back(u);
  DoctorCheck k{"capability for kernel frames", caps.has(kCapSyslog), false,
                std::string("CAP_SYSLOG=") + yn(kCapSyslog),
                "not permitted: without CAP_SYSLOG /proc/kallsyms hides addresses and kernel frames are shown as bare addresses"};
  out.push_back(k);
  DoctorCheck t{"capability for other users' processes", caps.has(kCapSysPtrace), false,
                std::string("CAP_SYS_PTRACE=") + yn(kCapSysPtrace),
                "not permitted: reading /proc/PID/exe and uprobing a process of another user needs CAP_SYS_PTRACE"};
  out.push_back(t);
  return out;
}

DoctorCheck check_perf_event() {
  DoctorCheck c{"perf events (cpu-clock)", false, true, "",
                "lower /proc/sys/kernel/perf_event_paranoid or run as root"};
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.freq = 1;
  attr.sample_freq = 99;
  int fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  int err = errno;
  c.ok = fd >= 0;
  c.detail = c.ok ? "ok" : std::string("perf_event_open: ") + std::strerror(err);
  if (!c.ok && (err == EACCES || err == EPERM)) c.hint = "not permitted: grant CAP_PERFMON (or run as root)";
  else if (!c.ok && err == ENOENT) c.hint = "the kernel has no perf events (CONFIG_PERF_EVENTS)";
  if (fd >= 0) close(fd);
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = PERF_COUNT_HW_CPU_CYCLES;
  fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  c.detail += fd >= 0 ? "; hardware cycles: yes" : "; hardware cycles: no (VM?), cpu-clock is used";
  if (fd >= 0) close(fd);
  c.detail += "; perf_event_paranoid=" + read_first_line("/proc/sys/kernel/perf_event_paranoid");
  return c;
}

DoctorCheck check_map(const char* name, bpf_map_type type, uint32_t key, uint32_t value, uint32_t entries) {
  DoctorCheck c{name, false, true, "", "the kernel lacks this BPF map type"};
  int fd = bpf_map_create(type, nullptr, key, value, entries, nullptr);
  int err = errno;
  c.ok = fd >= 0;
  c.detail = c.ok ? "ok" : std::string("bpf_map_create: ") + std::strerror(err);
  if (!c.ok && (err == EPERM || err == EACCES)) c.hint = "not permitted: grant CAP_BPF (or run as root)";
  if (fd >= 0) close(fd);
  return c;
}

std::string probe_result(int r, bool* ok, bool* denied);

// libbpf 1.1's libbpf_probe_bpf_prog_type() answers 0 ("not supported")
// for EPERM too, which made doctor blame CONFIG_BPF_EVENTS for missing
// capabilities; load the two-instruction program ourselves and look at errno.
int probe_prog_type(bpf_prog_type type) {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  int fd = bpf_prog_load(type, nullptr, "GPL", insns, 2, nullptr);
  if (fd >= 0) {
    close(fd);
    return 1;
  }
  int err = errno;
  if (err == EPERM || err == EACCES) return -err;
  return 0;  // EINVAL: the kernel does not know this program type
}

DoctorCheck check_prog_type(const char* name, bpf_prog_type type, bool required, const char* hint) {
  DoctorCheck c{name, false, required, "", hint};
  bool denied = false;
  c.detail = probe_result(probe_prog_type(type), &c.ok, &denied);
  if (denied) c.hint = "not permitted: grant CAP_BPF and CAP_PERFMON (or run as root)";
  return c;
}

// "not permitted" and "not in this kernel" need different hints.
std::string probe_result(int r, bool* ok, bool* denied) {
  *ok = r == 1;
  *denied = r == -EPERM || r == -EACCES;
  if (r == 1) return "ok";
  if (r == 0) return "not in this kernel";
  if (*denied) return "not permitted (" + std::string(std::strerror(-r)) + ")";
  return std::string("probe failed: ") + std::strerror(-r);
}

}  // namespace

std::vector<BpfFeature> bpf_features() {
  // The helpers the families call, checked in the program type that calls them.
  struct Want {
    const char* name;
    bpf_prog_type type;
    bpf_func_id helper;
    const char* used_for;
    const char* min_kernel;
  };
  static const Want kWant[] = {
      {"bpf_loop", BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_loop, "the CFI unwinder (every stack)", "5.17"},
      {"bpf_get_attach_cookie", BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie,
       "runtime descriptions (USDT argument positions)", "5.15"},
      {"bpf_task_pt_regs", BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_task_pt_regs, "user stacks at sched_switch (off-CPU)",
       "5.15"},
      {"bpf_get_current_task_btf", BPF_PROG_TYPE_PERF_EVENT, BPF_FUNC_get_current_task_btf,
       "task fields (fd kinds, sockets)", "5.11"},
      {"bpf_ringbuf_reserve", BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_ringbuf_reserve, "events (exec/exit, ticks, TLS)",
       "5.8"},
  };
  std::vector<BpfFeature> out;
  for (const auto& w : kWant) {
    BpfFeature f;
    f.name = w.name;
    f.used_for = w.used_for;
    f.min_kernel = w.min_kernel;
    int pt = probe_prog_type(w.type);
    if (pt < 0) {  // libbpf would call the helper "supported" when the load itself is denied
      f.detail = probe_result(pt, &f.ok, &f.denied);
    } else {
      f.detail = probe_result(libbpf_probe_bpf_helper(w.type, w.helper, nullptr), &f.ok, &f.denied);
    }
    out.push_back(f);
  }
  return out;
}

Status require_bpf_features() {
  for (const auto& f : bpf_features()) {
    if (f.ok) continue;
    if (f.denied)
      return Error("cannot load BPF programs: " + f.detail,
                   "not permitted: grant CAP_BPF and CAP_PERFMON (deploy/capabilities.txt), or run as root; see "
                   "`tickprobe doctor`");
    return Error("this kernel lacks the BPF helper " + f.name + " (" + f.detail + "), needed for " + f.used_for,
                 "tickprobe needs Linux " + f.min_kernel + " or newer; see `tickprobe doctor`");
  }
  return {};
}

std::vector<DoctorCheck> run_doctor_checks() {
  std::vector<DoctorCheck> out;
  {
    DoctorCheck c{"kernel", true, false, read_first_line("/proc/sys/kernel/osrelease"), ""};
    out.push_back(c);
  }
  {
    DoctorCheck c{"BTF (/sys/kernel/btf/vmlinux)", exists("/sys/kernel/btf/vmlinux"), true, "", 
                  "CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"};
    c.detail = c.ok ? "present" : "missing";
    out.push_back(c);
  }
  for (auto& c : check_caps()) out.push_back(c);
  {
    struct statfs fs{};
    bool mounted = statfs("/sys/kernel/tracing", &fs) == 0 && fs.f_type == 0x74726163 /* TRACEFS_MAGIC */;
    bool debugfs_tracing = exists("/sys/kernel/debug/tracing/events");
    const char* dir = mounted ? "/sys/kernel/tracing" : "/sys/kernel/debug/tracing";
    DoctorCheck c{"tracefs mounted", mounted || debugfs_tracing, true, "",
                  "mount -t tracefs nodev /sys/kernel/tracing"};
    c.detail = mounted ? "/sys/kernel/tracing" : debugfs_tracing ? "/sys/kernel/debug/tracing" : "not mounted";
    if (!c.ok && access("/sys/kernel/debug", X_OK) != 0 && errno == EACCES) {
      // debugfs (0700) hides whether tracing is below it
      c.detail = "not mounted at /sys/kernel/tracing; /sys/kernel/debug: not permitted";
    }
    out.push_back(c);
    if (c.ok) {
      // tracefs is mode 0700 root: a mount is not access
      // AT_EACCESS: the effective ids and capabilities (access() uses the real uid without capabilities)
      bool readable = faccessat(AT_FDCWD, (std::string(dir) + "/events").c_str(), R_OK | X_OK, AT_EACCESS) == 0;
      int err = errno;
      DoctorCheck r{"tracefs readable", readable, true, "", ""};
      r.detail = readable ? "ok" : std::string(dir) + "/events: " + std::strerror(err);
      r.hint = err == EACCES || err == EPERM
                   ? "not permitted: tracefs is mode 0700 root; run as uid 0 or grant CAP_DAC_READ_SEARCH"
                   : "mount -t tracefs nodev /sys/kernel/tracing";
      out.push_back(r);
      std::string id = std::string(dir) + "/events/sched/sched_switch/id";
      bool sw = readable && exists(id.c_str());
      DoctorCheck t{"tracepoints (sched, syscalls, sock)", sw || !readable, true, "", ""};
      t.detail = !readable ? "not checked (tracefs not readable)" : sw ? "sched:sched_switch found" : "not found";
      t.hint = "the kernel needs CONFIG_TRACEPOINTS";
      if (!readable) t.ok = false, t.hint = r.hint;
      out.push_back(t);
    }
  }
  {
    bool up = exists("/sys/bus/event_source/devices/uprobe/type");
    DoctorCheck c{"uprobes / USDT", up, true, up ? "uprobe PMU present" : "missing",
                  "the kernel needs CONFIG_UPROBE_EVENTS"};
    out.push_back(c);
  }
  {
    bool kp = exists("/sys/bus/event_source/devices/kprobe/type");
    DoctorCheck c{"kprobes (not used)", kp, false, kp ? "present" : "absent: fine, tickprobe never needs them", ""};
    c.ok = true;
    out.push_back(c);
  }
  out.push_back(check_perf_event());
  out.push_back(check_map("ringbuf", BPF_MAP_TYPE_RINGBUF, 0, 0, 4096));
  out.push_back(check_map("hash maps", BPF_MAP_TYPE_HASH, 8, 8, 16));
  out.push_back(check_prog_type("perf_event programs", BPF_PROG_TYPE_PERF_EVENT, true, "needs CONFIG_BPF_EVENTS"));
  out.push_back(check_prog_type("tracepoint programs", BPF_PROG_TYPE_TRACEPOINT, true, "needs CONFIG_BPF_EVENTS"));
  out.push_back(check_prog_type("tp_btf / raw tracepoints", BPF_PROG_TYPE_RAW_TRACEPOINT, true,
                                "needs CONFIG_BPF_EVENTS"));
  for (const auto& f : bpf_features()) {
    DoctorCheck c{"helper " + f.name, f.ok, true, f.detail + "; used for " + f.used_for, ""};
    c.hint = f.denied ? "not permitted: grant CAP_BPF and CAP_PERFMON (or run as root)"
                      : "tickprobe needs Linux " + f.min_kernel + " or newer for this helper";
    out.push_back(c);
  }
  {
    rlimit rl{};
    getrlimit(RLIMIT_MEMLOCK, &rl);
    DoctorCheck c{"memlock limit", true, false, "", ""};
    c.detail = rl.rlim_cur == RLIM_INFINITY ? "unlimited"
                                            : std::to_string(rl.rlim_cur / 1024) + " KiB (kernels >= 5.11 charge BPF "
                                                                                 "memory to the cgroup instead)";
    out.push_back(c);
  }
  {
    std::string lockdown = read_first_line("/sys/kernel/security/lockdown");
    DoctorCheck c{"lockdown", true, false, lockdown.empty() ? "n/a" : lockdown, ""};
    out.push_back(c);
  }
  return out;
}

namespace {

struct UsdtNote {
  std::string provider, name;
  uint64_t pc = 0;
};

// The target's executable, read as tickprobe reads it (/proc/PID/exe):
// USDT notes (.note.stapsdt), the file offset of an instruction to uprobe,
// Go or not.
struct ExeFacts {
  std::vector<UsdtNote> usdt;
  uint64_t probe_offset = 0;  // the first USDT site, else the entry point
  bool go = false;
  std::string go_version;
  std::string error;
};

uint64_t vaddr_to_offset(Elf* elf, uint64_t vaddr) {
  size_t n = 0;
  if (elf_getphdrnum(elf, &n) != 0) return 0;
  for (size_t i = 0; i < n; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
    if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) return vaddr - ph.p_vaddr + ph.p_offset;
  }
  return 0;
}

ExeFacts read_exe(int fd) {
  ExeFacts f;
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!elf) {
    f.error = std::string("not an ELF file: ") + elf_errmsg(-1);
    return f;
  }
  f.go = is_go_binary(elf);
  if (f.go) f.go_version = read_go_version(elf);
  size_t shstrndx = 0;
  elf_getshdrstrndx(elf, &shstrndx);
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE) continue;
    const char* nm = elf_strptr(elf, shstrndx, sh.sh_name);
    if (!nm || std::strcmp(nm, ".note.stapsdt") != 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    size_t off = 0, name_off = 0, desc_off = 0;
    GElf_Nhdr nh;
    while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
      if (nh.n_type != 3 || nh.n_descsz < 24) continue;
      const char* desc = static_cast<const char*>(data->d_buf) + desc_off;
      UsdtNote u;
      std::memcpy(&u.pc, desc, 8);
      const char* end = desc + nh.n_descsz;
      const char* p = desc + 24;
      u.provider.assign(p, strnlen(p, end - p));
      p += u.provider.size() + 1;
      if (p < end) u.name.assign(p, strnlen(p, end - p));
      f.usdt.push_back(u);
    }
  }
  GElf_Ehdr eh;
  uint64_t at = !f.usdt.empty() ? f.usdt[0].pc : (gelf_getehdr(elf, &eh) ? eh.e_entry : 0);
  f.probe_offset = vaddr_to_offset(elf, at);
  elf_end(elf);
  return f;
}

int uprobe_pmu_type() {
  std::string t = read_first_line("/sys/bus/event_source/devices/uprobe/type");
  return t.empty() ? -1 : std::atoi(t.c_str());
}

}  // namespace

Result<DoctorProcess> inspect_process(uint32_t pid) {
  DoctorProcess p;
  p.pid = pid;
  p.comm = process_comm(pid);
  if (p.comm.empty()) return Error("process " + std::to_string(pid) + " does not exist", "is it still running?");
  std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  const char* ptrace_hint =
      "not permitted: a process of another user needs CAP_SYS_PTRACE (deploy/capabilities.txt)";

  // 1. the executable, as the probes open it
  int fd = open(exe.c_str(), O_RDONLY | O_CLOEXEC);
  int err = errno;
  DoctorCheck rd{"executable readable", fd >= 0, true, "", ""};
  char target[4096] = {0};
  ssize_t tn = readlink(exe.c_str(), target, sizeof(target) - 1);
  rd.detail = fd >= 0 ? (tn > 0 ? std::string(target) : exe) : exe + ": " + std::strerror(err);
  rd.hint = err == EACCES || err == EPERM ? ptrace_hint
            : err == ENOENT              ? "the process has no executable (a kernel thread?) or is gone"
                                         : "";
  // kernel threads have no mm: /proc/PID/exe cannot be opened (ENOENT)
  if (fd < 0 && err == ENOENT) rd.detail += " (a kernel thread has no user code to probe)";
  p.checks.push_back(rd);

  ExeFacts facts;
  if (fd >= 0) {
    facts = read_exe(fd);
    close(fd);
  }

  // 2. a uprobe on it (the perf_event_open that every USDT/uprobe attach makes)
  DoctorCheck up{"uprobe-able", false, true, "", ""};
  int pmu = uprobe_pmu_type();
  if (fd < 0) {
    up.detail = "not checked (executable not readable)";
    up.hint = rd.hint;
  } else if (pmu < 0) {
    up.detail = "no uprobe PMU";
    up.hint = "the kernel needs CONFIG_UPROBE_EVENTS";
  } else if (!facts.error.empty()) {
    up.detail = facts.error;
  } else {
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = static_cast<uint32_t>(pmu);
    attr.config1 = reinterpret_cast<uint64_t>(exe.c_str());
    attr.config2 = facts.probe_offset;
    int pfd = static_cast<int>(syscall(__NR_perf_event_open, &attr, static_cast<int>(pid), -1, -1,
                                       PERF_FLAG_FD_CLOEXEC));
    int perr = errno;
    up.ok = pfd >= 0;
    if (pfd >= 0) close(pfd);
    char off[32];
    std::snprintf(off, sizeof(off), "0x%llx", static_cast<unsigned long long>(facts.probe_offset));
    up.detail = up.ok ? std::string("a uprobe at offset ") + off + " was created and removed"
                      : std::string("perf_event_open(uprobe at ") + off + "): " + std::strerror(perr);
    if ((perr == EACCES || perr == EPERM) && uprobe_multi_supported()) {
      // What tickprobe attaches with on this kernel: uprobe_multi links,
      // which need no CAP_SYS_ADMIN (probed by linking one on this process).
      up.ok = true;
      up.detail = std::string("uprobe_multi links work (what tickprobe uses here); a perf-event uprobe at ") + off +
                  " is not permitted without CAP_SYS_ADMIN";
    } else if (perr == EACCES || perr == EPERM) {
      Caps caps = effective_caps();
      up.hint = !caps.has(kCapSysAdmin) ? "not permitted: perf-event uprobes (no uprobe_multi in this kernel) need "
                                          "CAP_SYS_ADMIN (deploy/capabilities.txt)"
                                        : ptrace_hint;
    } else if (perr == ENOENT || perr == EINVAL) {
      up.hint = "the probed instruction or file is not supported by uprobes";
    }
  }
  p.checks.push_back(up);

  // 3. USDT probes and 4. which runtime tickprobe sees
  if (fd >= 0 && facts.error.empty()) {
    DoctorCheck us{"USDT probes", true, false, "", ""};
    std::vector<std::string> providers;
    size_t tickgame = 0;
    for (const auto& u : facts.usdt) {
      if (std::find(providers.begin(), providers.end(), u.provider) == providers.end())
        providers.push_back(u.provider);
      if (u.provider == "tickgame") ++tickgame;
    }
    us.detail = std::to_string(facts.usdt.size()) + " in the executable";
    if (!providers.empty()) {
      us.detail += " (providers:";
      for (const auto& pr : providers) us.detail += " " + pr;
      us.detail += ")";
    }
    p.checks.push_back(us);
    DoctorCheck rt{"runtime", true, false, "", ""};
    if (facts.go)
      rt.detail = "go" + (facts.go_version.empty() ? "" : " (" + facts.go_version + ")") +
                  ": goroutines and stop-the-world pauses from function probes (--runtime go)";
    else if (tickgame)
      rt.detail = "tickgame: coroutines, ticks and pauses from its " + std::to_string(tickgame) +
                  " USDT probes (--runtime tickgame)";
    else if (!facts.usdt.empty())
      rt.detail = "native with USDT probes: describe them in a runtime JSON file (docs/runtimes.md)";
    else
      rt.detail = "native, no USDT: CPU, off-CPU, memory, sockets and TLS work; no coroutine or tick view";
    p.checks.push_back(rt);
  }
  p.binaries = inspect_process_unwind(pid);
  return p;
}

}  // namespace tickprobe
