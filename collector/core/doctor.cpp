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
#include <cstring>
#include <fstream>

#include "core/result.h"
#include "targets/target_spec.h"

namespace tickprobe {
namespace {

bool exists(const char* p) { return access(p, F_OK) == 0; }

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

DoctorCheck check_caps() {
  DoctorCheck c{"capabilities", false, true, "", "run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE"};
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) {
    c.detail = std::string("capget failed: ") + std::strerror(errno);
    return c;
  }
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1; };
  bool sys_admin = has(21 /*CAP_SYS_ADMIN*/), bpf = has(39 /*CAP_BPF*/), perfmon = has(38 /*CAP_PERFMON*/);
  c.ok = sys_admin || (bpf && perfmon);
  c.detail = std::string("CAP_SYS_ADMIN=") + (sys_admin ? "yes" : "no") + " CAP_BPF=" + (bpf ? "yes" : "no") +
             " CAP_PERFMON=" + (perfmon ? "yes" : "no");
  return c;
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
  c.ok = fd >= 0;
  c.detail = c.ok ? "ok" : std::string("perf_event_open: ") + std::strerror(errno);
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
  DoctorCheck c{name, false, true, "", "needs a kernel with this BPF map type and root"};
  int fd = bpf_map_create(type, nullptr, key, value, entries, nullptr);
  c.ok = fd >= 0;
  c.detail = c.ok ? "ok" : std::string("bpf_map_create: ") + std::strerror(errno);
  if (fd >= 0) close(fd);
  return c;
}

std::string probe_result(int r, bool* ok, bool* denied);

DoctorCheck check_prog_type(const char* name, bpf_prog_type type, bool required, const char* hint) {
  DoctorCheck c{name, false, required, "", hint};
  bool denied = false;
  c.detail = probe_result(libbpf_probe_bpf_prog_type(type, nullptr), &c.ok, &denied);
  if (denied) c.hint = "run as root, or grant CAP_BPF and CAP_PERFMON";
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
    f.detail = probe_result(libbpf_probe_bpf_helper(w.type, w.helper, nullptr), &f.ok, &f.denied);
    out.push_back(f);
  }
  return out;
}

Status require_bpf_features() {
  for (const auto& f : bpf_features()) {
    if (f.ok) continue;
    if (f.denied)
      return Error("BPF helper " + f.name + " cannot be probed: " + f.detail,
                   "run as root (or with CAP_BPF + CAP_PERFMON); see `tickprobe doctor`");
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
  out.push_back(check_caps());
  {
    struct statfs fs{};
    bool mounted = statfs("/sys/kernel/tracing", &fs) == 0 && fs.f_type == 0x74726163 /* TRACEFS_MAGIC */;
    bool debugfs_tracing = exists("/sys/kernel/debug/tracing/events");
    DoctorCheck c{"tracefs mounted", mounted || debugfs_tracing, true, "",
                  "mount -t tracefs nodev /sys/kernel/tracing"};
    c.detail = mounted ? "/sys/kernel/tracing" : debugfs_tracing ? "/sys/kernel/debug/tracing" : "not mounted";
    out.push_back(c);
  }
  {
    bool sw = exists("/sys/kernel/tracing/events/sched/sched_switch/id") ||
              exists("/sys/kernel/debug/tracing/events/sched/sched_switch/id");
    DoctorCheck c{"tracepoints (sched, syscalls, sock)", sw, true, sw ? "sched:sched_switch found" : "not found",
                  "mount tracefs; the kernel needs CONFIG_TRACEPOINTS"};
    out.push_back(c);
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
    c.hint = f.denied ? "run as root, or grant CAP_BPF and CAP_PERFMON"
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

Result<DoctorProcess> inspect_process(uint32_t pid) {
  DoctorProcess p;
  p.pid = pid;
  p.comm = process_comm(pid);
  if (p.comm.empty()) return Error("process " + std::to_string(pid) + " does not exist", "is it still running?");
  p.binaries = inspect_process_unwind(pid);
  return p;
}

}  // namespace tickprobe
