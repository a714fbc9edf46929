#include "runtime/go_goroutines.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "model/go_wait_reasons.h"
#include "runtime/x86_disassembler.h"
#include "symbolize/elf_info.h"
#include "symbolize/go_pclntab.h"

namespace tickprobe {
namespace {

constexpr size_t kMaxGoroutines = 1 << 20;      // allglen above this is a torn or wrong read
constexpr size_t kMaxStackRead = 64 * 1024;     // bytes of a parked stack copied per goroutine
constexpr int kMaxFrames = 64;                  // frames per stack (Go's debug=2 prints 100)
constexpr size_t kMaxIov = 1024;                // IOV_MAX
constexpr uint64_t kMaxStackSize = 1ull << 30;  // runtime's maxstacksize on 64-bit

uint64_t u64_at(const std::vector<uint8_t>& b, size_t off) {
  uint64_t v = 0;
  if (off + 8 <= b.size()) std::memcpy(&v, b.data() + off, 8);
  return v;
}
uint32_t u32_at(const std::vector<uint8_t>& b, size_t off) {
  uint32_t v = 0;
  if (off + 4 <= b.size()) std::memcpy(&v, b.data() + off, 4);
  return v;
}

struct ElfFile {
  int fd = -1;
  Elf* elf = nullptr;
  explicit ElfFile(const std::string& path) {
    ensure_libelf_initialized();
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  }
  ~ElfFile() {
    if (elf) elf_end(elf);
    if (fd >= 0) ::close(fd);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
};

struct SymbolInfo {
  uint64_t addr = 0, size = 0;
};

std::map<std::string, SymbolInfo> symtab_lookup(Elf* elf, const std::set<std::string>& names) {
  std::map<std::string, SymbolInfo> out;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_SYMTAB) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || shdr.sh_entsize == 0) continue;
    size_t n = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (name && names.count(name)) out[name] = SymbolInfo{sym.st_value, sym.st_size};
    }
  }
  return out;
}

// A batch of remote reads done with as few process_vm_readv calls as the
// kernel allows. A range that cannot be read (unmapped: a torn pointer) is
// marked failed and the rest of the batch goes on.
class BatchRead {
 public:
  size_t add(uint64_t addr, size_t len) {
    ranges_.push_back({addr, len, offset_, false});
    offset_ += len;
    return ranges_.size() - 1;
  }
  void run(pid_t pid, uint64_t* bytes_read) {
    buf_.assign(offset_, 0);
    size_t i = 0;
    while (i < ranges_.size()) {
      size_t n = std::min(kMaxIov, ranges_.size() - i);
      std::vector<iovec> local(n), remote(n);
      for (size_t k = 0; k < n; ++k) {
        local[k] = {buf_.data() + ranges_[i + k].offset, ranges_[i + k].len};
        remote[k] = {reinterpret_cast<void*>(ranges_[i + k].addr), ranges_[i + k].len};
      }
      ssize_t got = process_vm_readv(pid, local.data(), n, remote.data(), n, 0);
      size_t done = 0;
      uint64_t left = got > 0 ? static_cast<uint64_t>(got) : 0;
      if (bytes_read) *bytes_read += left;
      while (done < n && left >= ranges_[i + done].len) {
        ranges_[i + done].ok = true;
        left -= ranges_[i + done].len;
        ++done;
      }
      // ranges_[i + done] failed (or was cut short): skip it.
      i += done + (done < n ? 1 : 0);
    }
  }
  bool ok(size_t id) const { return ranges_[id].ok; }
  const uint8_t* data(size_t id) const { return buf_.data() + ranges_[id].offset; }
  size_t len(size_t id) const { return ranges_[id].len; }

 private:
  struct Range {
    uint64_t addr;
    size_t len;
    size_t offset;
    bool ok;
  };
  std::vector<Range> ranges_;
  std::vector<uint8_t> buf_;
  size_t offset_ = 0;
};

std::string strip_abi(std::string_view name) {
  std::string s(name);
  for (const char* suffix : {".abi0", ".abiinternal"})
    if (s.size() > std::strlen(suffix) && s.ends_with(suffix)) s.resize(s.size() - std::strlen(suffix));
  return s;
}

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

size_t GoSnapshot::user_count() const {
  size_t n = 0;
  for (const auto& g : goroutines) n += !g.system;
  return n;
}

GoProcessReader::~GoProcessReader() = default;

bool GoProcessReader::read(uint64_t addr, void* out, size_t len) const {
  iovec local{out, len}, remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

bool GoProcessReader::in_text(uint64_t pc) const {
  return pc >= bias_ && pclntab_->lookup(pc - bias_) >= 0;
}

Result<std::unique_ptr<GoProcessReader>> GoProcessReader::open(pid_t pid) {
  std::unique_ptr<GoProcessReader> r(new GoProcessReader());
  r->pid_ = pid;
  std::string proc_exe = "/proc/" + std::to_string(pid) + "/exe";
  char target[4096];
  ssize_t n = ::readlink(proc_exe.c_str(), target, sizeof target - 1);
  if (n <= 0)
    return Error::from_errno("cannot read " + proc_exe, errno, "is process " + std::to_string(pid) + " running?");
  r->exe_.assign(target, static_cast<size_t>(n));
  if (!is_go_executable(proc_exe))
    return Error(r->exe_ + " (pid " + std::to_string(pid) + ") is no Go program",
                 "goroutines are read from Go programs only; for other runtimes use `tickprobe coro`");
  auto layout = read_go_runtime_layout(proc_exe);
  if (!layout) return layout.error();
  r->layout_ = layout.take();
  r->g_read_size_ =
      8 + std::max<size_t>({r->layout_.g_startpc, r->layout_.g_gopc, r->layout_.g_goid, r->layout_.g_waitsince,
                            r->layout_.g_syscallpc, r->layout_.g_syscallsp,
                            static_cast<size_t>(r->layout_.g_sched + r->layout_.gobuf_bp), r->layout_.g_stack_hi});
  ElfFile f(proc_exe);
  if (!f.elf) return Error("cannot read the ELF of " + r->exe_);
  std::string error;
  r->pclntab_ = GoPclntab::parse(f.elf, &error);
  if (!r->pclntab_) return Error("cannot read the Go pclntab of " + r->exe_ + ": " + error);

  // Load bias: 0 for the default (ET_EXEC) Go build; for -buildmode=pie
  // the start of the mapping at file offset 0 minus the first PT_LOAD.
  auto load = read_elf_load_info(f.elf);
  if (load && load->is_pie_or_dso && !load->segments.empty()) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    for (std::string line; std::getline(maps, line);) {
      unsigned long long start = 0, end = 0, off = 0;
      char path[4096] = {0};
      if (std::sscanf(line.c_str(), "%llx-%llx %*s %llx %*s %*s %4095s", &start, &end, &off, path) >= 3 && off == 0 &&
          r->exe_ == path) {
        r->bias_ = start - (load->segments.front().p_vaddr & ~0xfffull);
        break;
      }
    }
  }
  r->mapping_.pid = static_cast<uint32_t>(pid);
  r->mapping_.path = r->exe_;
  r->mapping_.build_id = read_build_id(f.elf);
  r->mapping_.main_executable = true;
  if (load)
    for (const auto& seg : load->segments)
      if (seg.executable()) {
        r->mapping_.start = seg.p_vaddr + r->bias_;
        r->mapping_.limit = seg.p_vaddr + seg.p_memsz + r->bias_;
        r->mapping_.file_offset = seg.p_offset;
        break;
      }

  int64_t main_fn = r->pclntab_->find("runtime.main");
  int64_t goexit_fn = r->pclntab_->find("runtime.goexit");
  if (goexit_fn < 0) goexit_fn = r->pclntab_->find("runtime.goexit.abi0");
  if (main_fn < 0 || goexit_fn < 0) return Error(r->exe_ + ": no runtime.main/runtime.goexit in the pclntab");
  r->runtime_main_ = r->pclntab_->entry(main_fn);
  r->goexit_ = r->pclntab_->entry(goexit_fn);
  int64_t switch_fn = r->pclntab_->find("runtime.systemstack_switch");
  if (switch_fn < 0) switch_fn = r->pclntab_->find("runtime.systemstack_switch.abi0");
  r->systemstack_switch_ = switch_fn >= 0 ? r->pclntab_->entry(switch_fn) : ~0ull;
  if (auto st = r->find_allgs(f.elf); !st) return st.error();
  r->load_wait_reasons(f.elf);
  return r;
}

// allgs[0] is the main goroutine: goid 1, started at runtime.main. A wrong
// address pair or wrong g offsets fail this.
bool GoProcessReader::looks_like_main_goroutine(uint64_t allglen_addr, uint64_t allgptr_addr) const {
  uint64_t len = 0, ptr = 0, g0 = 0;
  if (!read(allglen_addr, &len, 8) || !read(allgptr_addr, &ptr, 8)) return false;
  if (len == 0 || len > kMaxGoroutines || ptr == 0 || ptr % 8) return false;
  if (!read(ptr, &g0, 8) || g0 == 0 || g0 % 8) return false;
  uint64_t goid = 0, startpc = 0;
  if (!read(g0 + layout_.g_goid, &goid, 8) || !read(g0 + layout_.g_startpc, &startpc, 8)) return false;
  return goid == 1 && startpc == runtime_main_ + bias_;
}

Status GoProcessReader::find_allgs(void* elf_ptr) {
  Elf* elf = static_cast<Elf*>(elf_ptr);
  auto syms = symtab_lookup(elf, {"runtime.allglen", "runtime.allgptr"});
  if (syms.count("runtime.allglen") && syms.count("runtime.allgptr")) {
    allglen_addr_ = syms["runtime.allglen"].addr + bias_;
    allgptr_addr_ = syms["runtime.allgptr"].addr + bias_;
    allgs_source_ = "symtab";
    if (looks_like_main_goroutine(allglen_addr_, allgptr_addr_)) return {};
    return Error("the goroutine list of pid " + std::to_string(pid_) + " does not look like Go " + layout_.version +
                     "'s (allgs[0] is no main goroutine with the " + layout_.source + " offsets)",
                 layout_.verified ? "is the process still starting up? retry in a moment"
                                  : "the built-in offsets for " + layout_.version +
                                        " are unverified: build the target with DWARF (no -ldflags=-w)");
  }
  // Stripped: the globals runtime.allgadd stores to.
  int64_t fn = pclntab_->find("runtime.allgadd");
  if (fn < 0)
    return Error(exe_ + " has no symbol table and no runtime.allgadd in its pclntab",
                 "build the target without -ldflags=-s to keep runtime.allgs in .symtab");
  uint64_t start = pclntab_->entry(fn), end = pclntab_->end(fn);
  std::vector<uint8_t> code(std::min<uint64_t>(end - start, 4096));
  if (!read(start + bias_, code.data(), code.size()))
    return Error::from_errno("cannot read runtime.allgadd from pid " + std::to_string(pid_), errno);
  auto dis = X86Disassembler::open(/*detail=*/true);
  if (!dis) return dis.error();
  std::vector<uint64_t> targets;
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t addr = start;
  while (left > 0 && dis->next(&p, &left, &addr)) {
    const cs_insn* insn = &dis->insn();
    const cs_x86& x = insn->detail->x86;
    for (uint8_t i = 0; i < x.op_count; ++i)
      if (x.operands[i].type == X86_OP_MEM && x.operands[i].mem.base == X86_REG_RIP) {
        uint64_t t = insn->address + insn->size + static_cast<int64_t>(x.operands[i].mem.disp);
        if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
      }
  }
  for (uint64_t len_at : targets)
    for (uint64_t ptr_at : targets)
      if (len_at != ptr_at && looks_like_main_goroutine(len_at + bias_, ptr_at + bias_)) {
        allglen_addr_ = len_at + bias_;
        allgptr_addr_ = ptr_at + bias_;
        allgs_source_ = "runtime.allgadd";
        return {};
      }
  return Error("cannot find the goroutine list (runtime.allgs) of stripped " + exe_ + " (Go " + layout_.version + ")",
               layout_.verified ? "build the target without -ldflags=-s to keep runtime.allgs in .symtab"
                                : "the built-in offsets for " + layout_.version +
                                      " are unverified: build the target with DWARF and symbols");
}

void GoProcessReader::load_wait_reasons(void* elf_ptr) {
  auto syms = symtab_lookup(static_cast<Elf*>(elf_ptr), {"runtime.waitReasonStrings"});
  auto it = syms.find("runtime.waitReasonStrings");
  if (it != syms.end() && it->second.size % 16 == 0 && it->second.size <= 16 * 256) {
    std::vector<uint8_t> arr(it->second.size);
    if (read(it->second.addr + bias_, arr.data(), arr.size())) {
      for (size_t i = 0; i < arr.size(); i += 16) {
        uint64_t ptr = u64_at(arr, i), len = u64_at(arr, i + 8);
        std::string s(std::min<uint64_t>(len, 64), '\0');
        if (len > 0 && !read(ptr, s.data(), s.size())) s.clear();
        wait_reasons_.push_back(s);
      }
      if (!wait_reasons_.empty()) return;
    }
  }
  if (layout_.version.rfind("go1.19", 0) == 0)
    wait_reasons_.assign(kGoWaitReasons119.begin(), kGoWaitReasons119.end());  // Go 1.19 table
}

Result<GoSnapshot> GoProcessReader::snapshot(bool include_system) {
  GoSnapshot s;
  s.monotonic_ns = monotonic_ns();
  uint64_t len = 0, ptr = 0;
  // allglen before allgptr: allgptr is published first (runtime.allgadd).
  if (!read(allglen_addr_, &len, 8) || !read(allgptr_addr_, &ptr, 8))
    return Error::from_errno("cannot read the goroutine list of pid " + std::to_string(pid_), errno,
                             "is the process still running?");
  if (len > kMaxGoroutines || ptr == 0)
    return Error("implausible goroutine list in pid " + std::to_string(pid_) + " (allglen " + std::to_string(len) +
                 ")");
  s.allglen = len;
  uint64_t bytes = 16;
  std::vector<uint64_t> gptrs(len);
  if (len && !read(ptr, gptrs.data(), len * 8))
    return Error::from_errno("cannot read allgs of pid " + std::to_string(pid_), errno);
  bytes += len * 8;

  BatchRead gs;
  for (uint64_t g : gptrs) gs.add(g && g % 8 == 0 ? g : 8, g_read_size_);
  gs.run(pid_, &bytes);

  const GoRuntimeLayout& L = layout_;
  struct Pending {
    GoGoroutine g;
    uint64_t gaddr = 0, pc = 0, sp = 0, hi = 0;
    size_t stack_id = SIZE_MAX;
  };
  std::vector<Pending> live;
  BatchRead stacks;
  for (size_t i = 0; i < gptrs.size(); ++i) {
    if (!gs.ok(i) || gptrs[i] == 0) {
      ++s.counters["g_unreadable"];
      continue;
    }
    std::vector<uint8_t> b(gs.data(i), gs.data(i) + gs.len(i));
    uint32_t status = u32_at(b, L.g_atomicstatus) & ~static_cast<uint32_t>(kGoScanBit);
    if (status == kGoDead || status == kGoIdle) continue;
    if (status > kGoPreempted || status == 5 || status == 7) {
      ++s.counters["g_invalid"];
      continue;
    }
    Pending p;
    p.gaddr = gptrs[i];
    p.g.goid = u64_at(b, L.g_goid);
    p.g.status = status;
    p.g.waitreason = b.size() > L.g_waitreason ? b[L.g_waitreason] : 0;
    p.g.gopc = u64_at(b, L.g_gopc);
    p.g.startpc = u64_at(b, L.g_startpc);
    uint64_t lo = u64_at(b, L.g_stack_lo), hi = u64_at(b, L.g_stack_hi);
    if (p.g.goid == 0 || !in_text(p.g.startpc) || lo >= hi || hi - lo > kMaxStackSize) {
      ++s.counters["g_invalid"];  // torn (being reused) or not a g
      continue;
    }
    auto sys = system_start_.find(p.g.startpc);
    if (sys == system_start_.end()) {
      // runtime.isSystemGoroutine: started in package runtime, but for runtime.main.
      std::string start = function_at(p.g.startpc);
      sys = system_start_.emplace(p.g.startpc, start.rfind("runtime.", 0) == 0 && start != "runtime.main").first;
    }
    p.g.system = sys->second;
    if (p.g.system && !include_system) continue;
    if (status == kGoSyscall) {
      p.pc = u64_at(b, L.g_syscallpc);
      p.sp = u64_at(b, L.g_syscallsp);
    } else if (status != kGoRunning) {
      p.pc = u64_at(b, L.g_sched + L.gobuf_pc);
      p.sp = u64_at(b, L.g_sched + L.gobuf_sp);
    }
    p.hi = hi;
    if (p.pc && p.sp >= lo && p.sp < hi && in_text(p.pc))
      p.stack_id = stacks.add(p.sp, std::min<uint64_t>(hi - p.sp, kMaxStackRead));
    else if (status != kGoRunning)
      ++s.counters["stack_unreadable"];
    live.push_back(std::move(p));
  }
  stacks.run(pid_, &bytes);

  // runtime.gentraceback: the return address is at sp + the frame size
  // (pcsp at pc); the caller's sp is just above it. True when the walk
  // reached runtime.goexit.
  auto walk = [&](uint64_t pc, uint64_t sp, const uint8_t* base, uint64_t size, std::vector<uint64_t>* pcs) {
    const uint64_t sp0 = sp;
    pcs->clear();
    for (int depth = 0; depth < kMaxFrames; ++depth) {
      pcs->push_back(pc);
      int64_t fn = pclntab_->lookup(pc - bias_);
      if (fn < 0) return false;
      if (pclntab_->entry(fn) == goexit_) return true;
      int32_t delta = pclntab_->sp_delta(pc - bias_);
      // systemstack leaves the fake pc systemstack_switch+8 (past its one
      // RET, in the padding its pcsp does not cover): its frame is $0.
      if (delta < 0 && pclntab_->entry(fn) == systemstack_switch_) delta = 0;
      if (delta < 0) return false;
      uint64_t ra_at = sp + static_cast<uint64_t>(delta);
      if (ra_at < sp0 || ra_at + 8 > sp0 + size) return false;
      uint64_t ra;
      std::memcpy(&ra, base + (ra_at - sp0), 8);
      if (!in_text(ra)) return false;
      pc = ra;
      sp = ra_at + 8;
    }
    return false;
  };
  const GoRuntimeLayout& layout = layout_;
  for (size_t i = 0; i < live.size(); ++i) {
    Pending& p = live[i];
    if (p.stack_id != SIZE_MAX && !stacks.ok(p.stack_id)) {
      ++s.counters["stack_unreadable"];
    } else if (p.stack_id != SIZE_MAX) {
      bool complete = walk(p.pc, p.sp, stacks.data(p.stack_id), stacks.len(p.stack_id), &p.g.pcs);
      if (!complete) {
        // Most likely torn: the goroutine ran between the read of its g and
        // of its stack. Read both again, once, for this one goroutine.
        ++s.counters["stack_retried"];
        std::vector<uint8_t> b(g_read_size_);
        if (read(p.gaddr, b.data(), b.size()) &&
            (u32_at(b, layout.g_atomicstatus) & ~static_cast<uint32_t>(kGoScanBit)) == p.g.status) {
          bool sys = p.g.status == kGoSyscall;
          uint64_t pc = u64_at(b, sys ? layout.g_syscallpc : layout.g_sched + layout.gobuf_pc);
          uint64_t sp = u64_at(b, sys ? layout.g_syscallsp : layout.g_sched + layout.gobuf_sp);
          uint64_t lo = u64_at(b, layout.g_stack_lo), hi = u64_at(b, layout.g_stack_hi);  // moved, maybe
          if (lo < hi && hi - lo <= kMaxStackSize && sp >= lo && sp < hi && in_text(pc)) {
            std::vector<uint8_t> stack(std::min<uint64_t>(hi - sp, kMaxStackRead));
            if (read(sp, stack.data(), stack.size())) {
              bytes += b.size() + stack.size();
              complete = walk(pc, sp, stack.data(), stack.size(), &p.g.pcs);
            }
          }
        }
      }
      p.g.stack_truncated = !complete;
      if (!complete) ++s.counters["stack_truncated"];
    }
    s.goroutines.push_back(std::move(p.g));
  }
  std::sort(s.goroutines.begin(), s.goroutines.end(),
            [](const GoGoroutine& a, const GoGoroutine& b) { return a.goid < b.goid; });
  s.counters["bytes_read"] = bytes;
  s.read_ns = monotonic_ns() - s.monotonic_ns;
  return s;
}

std::vector<GoStackFrame> GoProcessReader::frames(uint64_t pc) const {
  std::vector<GoStackFrame> out;
  if (pc < bias_) return out;
  uint64_t vaddr = pc - bias_;
  int64_t fn = pclntab_->lookup(vaddr);
  if (fn < 0) return out;
  // A return address names the call before it (Go's tracepc = pc-1); a pc
  // at a function's entry (a goroutine that has not run yet) is itself.
  uint64_t lookup = vaddr > pclntab_->entry(fn) ? vaddr - 1 : vaddr;
  for (const GoFrame& f : pclntab_->frames(lookup))
    out.push_back(GoStackFrame{strip_abi(f.function), std::string(f.file), f.line, pc, f.inlined});
  return out;
}

std::vector<GoStackFrame> GoProcessReader::stack(const GoGoroutine& g) const {
  std::vector<GoStackFrame> out;
  for (uint64_t pc : g.pcs)
    for (auto& f : frames(pc)) out.push_back(std::move(f));
  return out;
}

std::string GoProcessReader::function_at(uint64_t pc) const {
  if (pc < bias_) return {};
  int64_t fn = pclntab_->lookup(pc - bias_);
  return fn < 0 ? std::string() : strip_abi(pclntab_->name(fn));
}

std::string GoProcessReader::created_by(uint64_t gopc) const {
  auto f = frames(gopc);
  if (f.empty()) return gopc ? hex(gopc) : std::string("[unknown]");
  const GoStackFrame& outer = f.back();  // pprof prints the outer (non-inlined) creator
  const GoStackFrame& inner = f.front();
  return outer.function + " (" + inner.file + ":" + std::to_string(inner.line) + ")";
}

std::string GoProcessReader::state_name(const GoGoroutine& g) const {
  switch (g.status) {
    case kGoRunnable:
      return "runnable";
    case kGoRunning:
      return "running";
    case kGoSyscall:
      return "syscall";
    case kGoCopystack:
      return "copystack";
    case kGoPreempted:
      return "preempted";
    case kGoWaiting:
      if (g.waitreason < wait_reasons_.size() && !wait_reasons_[g.waitreason].empty())
        return wait_reasons_[g.waitreason];
      return g.waitreason ? "waitreason " + std::to_string(g.waitreason) : "waiting";
    default:
      return "status " + std::to_string(g.status);
  }
}

ProfileMapping GoProcessReader::mapping() const {
  return mapping_;
}

std::string goroutine_dump_text(const GoProcessReader& r, const GoSnapshot& s, bool include_system) {
  std::ostringstream out;
  for (const GoGoroutine& g : s.goroutines) {
    if (g.system && !include_system) continue;
    out << "goroutine " << g.goid << " [" << r.state_name(g) << "]:\n";
    if (g.status == kGoRunning) out << "\tgoroutine running on other thread; stack unavailable\n";
    for (const GoStackFrame& f : r.stack(g)) {
      if (f.function == "runtime.goexit") continue;  // as Go's traceback
      out << f.function << "(...)\n\t" << f.file << ":" << f.line << "\n";
    }
    if (g.stack_truncated && !g.pcs.empty()) out << "...additional frames elided...\n";
    out << "created by " << r.created_by(g.gopc) << "\n\n";
  }
  return out.str();
}

// ------------------------------------------------------------ the hunt

namespace {

Frame to_frame(const GoStackFrame& f, const std::string& module) {
  Frame out;
  out.function = f.function;
  out.module = module;
  out.address = f.pc;
  out.file = f.file;
  out.line = f.line;
  out.inlined = f.inlined;
  return out;
}

struct GroupKey {
  uint64_t startpc, gopc;
  bool operator<(const GroupKey& o) const { return std::tie(startpc, gopc) < std::tie(o.startpc, o.gopc); }
};

}  // namespace

Result<GoroutineReport> run_goroutine_hunt(const GoroutineHuntOptions& o) {
  auto opened = GoProcessReader::open(o.pid);
  if (!opened) return opened.error();
  GoProcessReader& r = **opened;
  GoroutineReport rep;
  rep.pid = o.pid;
  rep.executable = r.executable();
  rep.go_version = r.layout().version;
  rep.layout_source = r.layout().source;
  rep.layout_verified = r.layout().verified;
  rep.allgs_source = r.allgs_source();
  rep.interval_s = o.interval_s;

  LeakSeries<GroupKey> series(512);
  std::map<GroupKey, int64_t> first_counts;
  std::map<uint64_t, double> first_seen;  // goid => first snapshot time (bounded by the live goroutines)
  // Wait profile: (state, pcs) => {ns, samples}.
  std::map<std::pair<std::string, std::vector<uint64_t>>, std::pair<int64_t, int64_t>> waits;
  const uint64_t t0 = monotonic_ns();
  uint64_t prev_ns = 0;
  double total_ms = 0;
  GoSnapshot last;
  double last_t = 0;
  for (;;) {
    auto snap = r.snapshot(true);
    if (!snap) {
      if (rep.snapshots > 0 && ::kill(o.pid, 0) != 0) break;  // the target ended: report what we have
      return snap.error();
    }
    GoSnapshot s = snap.take();
    ++rep.snapshots;
    double ms = s.read_ns / 1e6;
    total_ms += ms;
    rep.snapshot_ms_max = std::max(rep.snapshot_ms_max, ms);
    for (const auto& [k, v] : s.counters) rep.counters[k] += v;
    const double t = (s.monotonic_ns - t0) / 1e9;
    std::map<GroupKey, int64_t> counts;
    for (const GoGoroutine& g : s.goroutines)
      if (!g.system || o.include_system) ++counts[GroupKey{g.startpc, g.gopc}];
    // Every group seen so far gets a point (0 when it is gone now).
    for (const auto& [k, pts] : series.all())
      if (!counts.count(k)) counts[k] = 0;
    for (const auto& [k, c] : counts) {
      if (!first_counts.count(k)) first_counts[k] = rep.snapshots == 1 ? c : 0;
      series.add(k, LeakPoint{t, static_cast<double>(c), static_cast<double>(c)});
    }
    if (prev_ns) {
      int64_t dt = static_cast<int64_t>(s.monotonic_ns - prev_ns);
      for (const GoGoroutine& g : s.goroutines) {
        if (g.status == kGoRunning || (g.system && !o.include_system)) continue;
        auto& w = waits[{r.state_name(g), g.pcs}];
        w.first += dt;
        w.second += 1;
      }
    }
    // Forget goids that are gone (goids are never reused), so the map stays
    // as large as the live set.
    std::map<uint64_t, double> seen;
    for (const GoGoroutine& g : s.goroutines) {
      auto it = first_seen.find(g.goid);
      seen[g.goid] = it == first_seen.end() ? t : it->second;
    }
    first_seen.swap(seen);
    prev_ns = s.monotonic_ns;
    last_t = t;
    last = std::move(s);
    const double elapsed = (monotonic_ns() - t0) / 1e9;
    if (o.on_progress) {
      char line[128];
      std::snprintf(line, sizeof line, "goroutines %zu  snapshot %.2f ms", last.user_count(), ms);
      o.on_progress(elapsed, line);
    }
    if (o.duration_s <= 0 || elapsed >= o.duration_s || (o.stop && o.stop->load())) break;
    // Sleep to the next interval boundary (in small steps, for Ctrl-C).
    const uint64_t next = t0 + static_cast<uint64_t>(rep.snapshots * o.interval_s * 1e9);
    while (monotonic_ns() < next && !(o.stop && o.stop->load()))
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min<uint64_t>(50, (next - monotonic_ns()) / 1000000 + 1)));
  }
  rep.elapsed_s = (monotonic_ns() - t0) / 1e9;
  rep.snapshot_ms_mean = rep.snapshots ? total_ms / rep.snapshots : 0;
  rep.allglen = last.allglen;
  for (const GoGoroutine& g : last.goroutines) (g.system ? rep.live_system : rep.live) += 1;
  rep.dump = goroutine_dump_text(r, last, o.include_system);

  // Groups of the last snapshot, with the most common stack of each.
  std::map<GroupKey, GoroutineGroup> groups;
  std::map<GroupKey, std::map<std::pair<std::string, std::vector<uint64_t>>, int64_t>> stacks;
  for (const GoGoroutine& g : last.goroutines) {
    if (g.system && !o.include_system) continue;
    GroupKey k{g.startpc, g.gopc};
    GoroutineGroup& grp = groups[k];
    grp.startpc = g.startpc;
    grp.gopc = g.gopc;
    ++grp.count;
    grp.oldest_s = std::max(grp.oldest_s, last_t - first_seen[g.goid]);
    ++grp.states[r.state_name(g)];
    ++stacks[k][{r.state_name(g), g.pcs}];
  }
  for (const auto& [k, pts] : series.all()) {
    GoroutineGroup& grp = groups[k];
    grp.startpc = k.startpc;
    grp.gopc = k.gopc;
    grp.first_count = first_counts[k];
    if (pts.size() >= o.criteria.min_points) grp.verdict = judge_growth(pts, o.criteria);
    if (grp.verdict.leaking && grp.verdict.net_growth_bytes < o.min_leak_goroutines) {
      grp.verdict.leaking = false;
      grp.verdict.why = "grew by fewer than " + std::to_string(static_cast<int>(o.min_leak_goroutines)) + " goroutines";
    }
  }
  for (auto& [k, grp] : groups) {
    grp.start_function = r.function_at(k.startpc);
    grp.created_by = r.created_by(k.gopc);
    auto st = stacks.find(k);
    if (st != stacks.end() && !st->second.empty()) {
      auto best = std::max_element(st->second.begin(), st->second.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
      grp.stack_state = best->first.first;
      GoGoroutine tmp;
      tmp.pcs = best->first.second;
      grp.stack = r.stack(tmp);
    }
    if (grp.verdict.leaking) rep.leaks.push_back(grp);
    if (grp.count > 0) rep.groups.push_back(grp);
  }
  std::sort(rep.groups.begin(), rep.groups.end(),
            [](const GoroutineGroup& a, const GoroutineGroup& b) { return a.count > b.count; });
  if (rep.groups.size() > o.top) rep.groups.resize(o.top);
  std::sort(rep.leaks.begin(), rep.leaks.end(), [](const GoroutineGroup& a, const GoroutineGroup& b) {
    return a.verdict.growth_bytes_per_s > b.verdict.growth_bytes_per_s;
  });

  // Profiles. Frames leaf first; the wait profile gets the state as a
  // synthetic leaf ("[IO wait]"), as off-CPU profiles carry the task state.
  const std::string module = r.executable();
  auto base = [&](Profile& p) {
    p.time_nanos = static_cast<int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    p.duration_nanos = static_cast<int64_t>(rep.elapsed_s * 1e9);
    p.mappings.push_back(r.mapping());
    p.counters = rep.counters;
  };
  Profile& gp = rep.goroutine_profile;
  gp.sample_types = {{"goroutine", "count"}};
  gp.period_type = {"goroutine", "count"};
  gp.period = 1;
  base(gp);
  std::map<std::vector<uint64_t>, std::pair<int64_t, std::string>> by_stack;
  for (const GoGoroutine& g : last.goroutines)
    if (!g.system || o.include_system) {
      auto& e = by_stack[g.pcs];
      ++e.first;
      e.second = r.state_name(g);
    }
  for (const auto& [pcs, e] : by_stack) {
    Sample smp;
    GoGoroutine tmp;
    tmp.pcs = pcs;
    for (const auto& f : r.stack(tmp)) smp.frames.push_back(to_frame(f, module));
    if (smp.frames.empty()) {  // running: no saved stack, as in Go's profile of other goroutines
      Frame running;
      running.function = "[running]";
      running.module = module;
      smp.frames.push_back(running);
    }
    smp.values = {e.first};
    smp.pid = static_cast<uint32_t>(o.pid);
    gp.samples.push_back(std::move(smp));
  }
  Profile& wp = rep.waits;
  wp.sample_types = {{"wait_time", "nanoseconds"}, {"samples", "count"}};
  wp.period_type = {"wait_time", "nanoseconds"};
  wp.period = static_cast<int64_t>(o.interval_s * 1e9);
  base(wp);
  for (const auto& [key, v] : waits) {
    Sample smp;
    Frame state;
    state.function = "[" + key.first + "]";
    smp.frames.push_back(state);
    GoGoroutine tmp;
    tmp.pcs = key.second;
    for (const auto& f : r.stack(tmp)) smp.frames.push_back(to_frame(f, module));
    smp.values = {v.first, v.second};
    smp.pid = static_cast<uint32_t>(o.pid);
    smp.labels["state"] = key.first;
    wp.samples.push_back(std::move(smp));
  }
  if (rep.snapshots < 2) wp.comments.push_back("one snapshot: no wait time (use -d to watch for a while)");
  return rep;
}

}  // namespace tickprobe
