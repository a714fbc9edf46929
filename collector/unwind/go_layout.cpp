#include "unwind/go_layout.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "symbolize/elf_info.h"
#include "symbolize/go_pclntab.h"

namespace tickprobe {
namespace {

struct ElfHandle {
  int fd = -1;
  Elf* elf = nullptr;
  explicit ElfHandle(const std::string& path) {
    ensure_libelf_initialized();
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (elf && elf_kind(elf) != ELF_K_ELF) {
      elf_end(elf);
      elf = nullptr;
    }
  }
  ~ElfHandle() {
    if (elf) elf_end(elf);
    if (fd >= 0) ::close(fd);
  }
  ElfHandle(const ElfHandle&) = delete;
  ElfHandle& operator=(const ElfHandle&) = delete;
};

// The functions after which g0's frame chain ends (Go's traceback stops at
// the same ones: funcID_systemstack, mcall, morestack, asmcgocall).
struct SwitchSpec {
  const char* name;
  bool frameless;
};
constexpr SwitchSpec kSwitchFunctions[] = {
    {"runtime.systemstack", true},  // sched.pc = systemstack_switch, sched.sp -> return address
    {"runtime.asmcgocall", true},   // same save (gosave_systemstack_switch)
    {"runtime.morestack", true},    // sched = the function before its prologue
    {"runtime.mcall", false},       // sched = mcall's caller, after the call
};
static_assert(sizeof(kSwitchFunctions) / sizeof(kSwitchFunctions[0]) <= 4, "TP_GO_MAX_SWITCH");

// Offsets by Go major.minor (amd64). 1.19 is measured (DWARF of the Go
// fixture, tests/unit/symbolize/go_symbolize_test.cpp); the other rows are
// derived from src/runtime/runtime2.go of each release and unverified:
//   1.17-1.20  one layout (tracking fields came in 1.17; 1.20 made
//              atomicstatus/goid atomic types of the same size)
//   1.21, 1.22 trace fields moved into g.trace (after startpc) and
//              parentGoid came before gopc: gopc 280, startpc 296
//   1.23       syscallbp after syscallpc shifts everything from stktopsp
//              on by 8; coroexit adds a byte among the flags
// runtime.m (g0, gsignal, curg) and gobuf are unchanged over 1.17-1.23.
struct TableRow {
  const char* version;
  bool verified;
  uint16_t g_m, g_sched, m_g0, m_curg, m_gsignal, gobuf_sp, gobuf_pc, gobuf_bp;
  uint16_t g_syscallsp, g_syscallpc, g_atomicstatus, g_goid, g_waitsince, g_waitreason, g_gopc, g_startpc;
};
constexpr TableRow kTable[] = {
    {"go1.17", false, 48, 56, 0, 192, 80, 0, 8, 48, 112, 120, 144, 152, 168, 176, 296, 312},
    {"go1.18", false, 48, 56, 0, 192, 80, 0, 8, 48, 112, 120, 144, 152, 168, 176, 296, 312},
    {"go1.19", true, 48, 56, 0, 192, 80, 0, 8, 48, 112, 120, 144, 152, 168, 176, 296, 312},
    {"go1.20", false, 48, 56, 0, 192, 80, 0, 8, 48, 112, 120, 144, 152, 168, 176, 296, 312},
    {"go1.21", false, 48, 56, 0, 192, 80, 0, 8, 48, 112, 120, 144, 152, 168, 176, 280, 296},
    {"go1.22", false, 48, 56, 0, 192, 80, 0, 8, 48, 112, 120, 144, 152, 168, 176, 280, 296},
    {"go1.23", false, 48, 56, 0, 192, 80, 0, 8, 48, 112, 120, 152, 160, 176, 184, 288, 304},
};

std::string major_minor(const std::string& version) {
  // go1.19.8 -> go1.19; go1.21rc2 -> go1.21
  size_t dot = version.find('.');
  if (version.rfind("go", 0) != 0 || dot == std::string::npos) return {};
  size_t end = dot + 1;
  while (end < version.size() && version[end] >= '0' && version[end] <= '9') ++end;
  return version.substr(0, end);
}

int32_t tls_offset_of_g(Elf* elf) {
  // Variant II (x86-64): the executable's TLS block ends at the thread
  // pointer; runtime.tlsg is its only variable, at offset 0.
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return -8;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_TLS) continue;
    uint64_t align = ph.p_align ? ph.p_align : 1;
    uint64_t size = (ph.p_memsz + align - 1) / align * align;
    return size ? -static_cast<int32_t>(size) : -8;
  }
  return -8;
}

Status add_switch_functions(Elf* elf, GoRuntimeLayout* layout) {
  std::string error;
  auto table = GoPclntab::parse(elf, &error);
  if (!table) return Error("cannot read the Go pclntab: " + error);
  for (const SwitchSpec& spec : kSwitchFunctions) {
    int64_t fn = table->find(spec.name);
    if (fn < 0) continue;
    layout->switch_functions.push_back(GoSwitchFunction{spec.name, table->entry(fn), table->end(fn), spec.frameless});
  }
  if (layout->switch_functions.empty()) return Error("no stack-switch functions (runtime.systemstack) in the pclntab");
  if (layout->version.empty()) layout->version = table->go_version();
  return {};
}

// Member offsets of the named struct types, from DWARF.
using MemberOffsets = std::map<std::string, std::map<std::string, uint64_t>>;

MemberOffsets dwarf_members(Elf* elf, const std::map<std::string, std::vector<std::string>>& wanted) {
  MemberOffsets out;
  Dwarf* dw = dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
  if (!dw) return out;
  Dwarf_Off off = 0, next = 0;
  size_t header = 0;
  while (out.size() < wanted.size() && dwarf_nextcu(dw, off, &next, &header, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu, die;
    if (dwarf_offdie(dw, off + header, &cu) && dwarf_child(&cu, &die) == 0) {
      do {
        if (dwarf_tag(&die) != DW_TAG_structure_type) continue;
        const char* name = dwarf_diename(&die);
        if (!name) continue;
        auto w = wanted.find(name);
        if (w == wanted.end() || out.count(name)) continue;
        auto& members = out[name];
        Dwarf_Die member;
        if (dwarf_child(&die, &member) != 0) continue;
        do {
          const char* mname = dwarf_diename(&member);
          Dwarf_Attribute attr;
          Dwarf_Word value = 0;
          if (mname && dwarf_tag(&member) == DW_TAG_member &&
              dwarf_formudata(dwarf_attr(&member, DW_AT_data_member_location, &attr), &value) == 0)
            members[mname] = value;
        } while (dwarf_siblingof(&member, &member) == 0);
      } while (dwarf_siblingof(&die, &die) == 0);
    }
    off = next;
  }
  dwarf_end(dw);
  return out;
}

}  // namespace

bool is_go_executable(const std::string& path) {
  ElfHandle f(path);
  return f.elf && is_go_binary(f.elf);
}

Result<GoRuntimeLayout> go_layout_for_version(const std::string& version) {
  std::string key = major_minor(version);
  for (const TableRow& row : kTable) {
    if (key != row.version) continue;
    GoRuntimeLayout l;
    l.version = version;
    l.source = "table";
    l.g_m = row.g_m;
    l.g_sched = row.g_sched;
    l.m_g0 = row.m_g0;
    l.m_curg = row.m_curg;
    l.m_gsignal = row.m_gsignal;
    l.gobuf_sp = row.gobuf_sp;
    l.gobuf_pc = row.gobuf_pc;
    l.gobuf_bp = row.gobuf_bp;
    l.g_syscallsp = row.g_syscallsp;
    l.g_syscallpc = row.g_syscallpc;
    l.g_atomicstatus = row.g_atomicstatus;
    l.g_goid = row.g_goid;
    l.g_waitsince = row.g_waitsince;
    l.g_waitreason = row.g_waitreason;
    l.g_gopc = row.g_gopc;
    l.g_startpc = row.g_startpc;
    l.verified = row.verified;
    return l;
  }
  return Error("Go runtime layout of " + (version.empty() ? std::string("an unknown Go version") : version) +
                   " is not known (no DWARF in the binary, no built-in table)",
               "the table covers go1.17-go1.23; build the target without -ldflags=-w (keep DWARF), or add its "
               "version to collector/unwind/go_layout.cpp");
}

Result<GoRuntimeLayout> read_go_layout_from_dwarf(const std::string& path) {
  ElfHandle f(path);
  if (!f.elf || !is_go_binary(f.elf)) return Error(path + " is no Go binary");
  MemberOffsets m = dwarf_members(f.elf, {{"runtime.g", {"stack", "m", "sched", "syscallsp", "syscallpc",
                                                         "atomicstatus", "goid", "waitsince", "waitreason", "gopc",
                                                         "startpc"}},
                                          {"runtime.m", {"g0", "curg", "gsignal"}},
                                          {"runtime.gobuf", {"sp", "pc", "bp"}},
                                          {"runtime.stack", {"lo", "hi"}}});
  auto get = [&](const char* type, const char* member, uint16_t* out) {
    auto t = m.find(type);
    if (t == m.end()) return false;
    auto v = t->second.find(member);
    if (v == t->second.end() || v->second > 0xffff) return false;
    *out = static_cast<uint16_t>(v->second);
    return true;
  };
  GoRuntimeLayout l;
  l.source = "dwarf";
  l.verified = true;
  uint16_t g_stack = 0, lo = 0, hi = 0;
  if (!(get("runtime.g", "stack", &g_stack) && get("runtime.stack", "lo", &lo) && get("runtime.stack", "hi", &hi) &&
        get("runtime.g", "m", &l.g_m) && get("runtime.g", "sched", &l.g_sched) && get("runtime.m", "g0", &l.m_g0) &&
        get("runtime.m", "curg", &l.m_curg) && get("runtime.m", "gsignal", &l.m_gsignal) &&
        get("runtime.gobuf", "sp", &l.gobuf_sp) && get("runtime.gobuf", "pc", &l.gobuf_pc) &&
        get("runtime.gobuf", "bp", &l.gobuf_bp) && get("runtime.g", "syscallsp", &l.g_syscallsp) &&
        get("runtime.g", "syscallpc", &l.g_syscallpc) && get("runtime.g", "atomicstatus", &l.g_atomicstatus) &&
        get("runtime.g", "goid", &l.g_goid) && get("runtime.g", "waitsince", &l.g_waitsince) &&
        get("runtime.g", "waitreason", &l.g_waitreason) && get("runtime.g", "gopc", &l.g_gopc) &&
        get("runtime.g", "startpc", &l.g_startpc)))
    return Error(path + ": no DWARF description of runtime.g/m/gobuf");
  l.g_stack_lo = static_cast<uint16_t>(g_stack + lo);
  l.g_stack_hi = static_cast<uint16_t>(g_stack + hi);
  l.version = read_go_version(f.elf);
  l.tls_g = tls_offset_of_g(f.elf);
  if (auto st = add_switch_functions(f.elf, &l); !st) return st.error();
  return l;
}

Result<GoRuntimeLayout> read_go_runtime_layout(const std::string& path) {
  auto from_dwarf = read_go_layout_from_dwarf(path);
  if (from_dwarf) return from_dwarf;
  ElfHandle f(path);
  if (!f.elf || !is_go_binary(f.elf)) return Error(path + " is no Go binary");
  auto from_table = go_layout_for_version(read_go_version(f.elf));
  if (!from_table) return from_table.error();
  GoRuntimeLayout l = from_table.take();
  l.tls_g = tls_offset_of_g(f.elf);
  if (auto st = add_switch_functions(f.elf, &l); !st) return st.error();
  return l;
}

}  // namespace tickprobe
