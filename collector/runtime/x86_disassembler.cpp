#include "runtime/x86_disassembler.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>

namespace tickprobe {
namespace {
#define TP_STR2(x) #x
#define TP_STR(x) TP_STR2(x)
// The soname of the capstone whose header we compiled against.
constexpr const char* kCapstoneSoname = "libcapstone.so." TP_STR(CS_API_MAJOR);
#undef TP_STR
#undef TP_STR2
}  // namespace

struct X86Disassembler::Library {
  void* handle = nullptr;
  csh cs = 0;
  bool cs_opened = false;
  cs_insn* insn = nullptr;
  decltype(&cs_open) open = nullptr;
  decltype(&cs_option) option = nullptr;
  decltype(&cs_malloc) malloc = nullptr;
  decltype(&cs_disasm_iter) disasm_iter = nullptr;
  decltype(&cs_free) free = nullptr;
  decltype(&cs_close) close = nullptr;
  decltype(&cs_regs_access) regs_access = nullptr;

  ~Library() {
    if (insn) free(insn, 1);
    if (cs_opened) close(&cs);
    if (handle) dlclose(handle);
  }
};

Result<X86Disassembler> X86Disassembler::open(bool detail) {
  auto lib = std::make_unique<Library>();
  lib->handle = dlopen(kCapstoneSoname, RTLD_NOW | RTLD_LOCAL);
  if (!lib->handle) {
    const char* why = dlerror();
    return Error(std::string("cannot load the disassembler (") + kCapstoneSoname + "): " + (why ? why : "?"),
                 "install capstone: apt-get install libcapstone4 (scripts/bootstrap.sh)");
  }
  bool all = true;
  auto sym = [&](auto* fn, const char* name) {
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(lib->handle, name));
    all = all && *fn;
  };
  sym(&lib->open, "cs_open");
  sym(&lib->option, "cs_option");
  sym(&lib->malloc, "cs_malloc");
  sym(&lib->disasm_iter, "cs_disasm_iter");
  sym(&lib->free, "cs_free");
  sym(&lib->close, "cs_close");
  sym(&lib->regs_access, "cs_regs_access");
  if (!all) return Error(std::string(kCapstoneSoname) + " lacks the cs_* functions tickprobe needs");
  if (lib->open(CS_ARCH_X86, CS_MODE_64, &lib->cs) != CS_ERR_OK) return Error("capstone cannot disassemble x86-64");
  lib->cs_opened = true;
  if (detail) lib->option(lib->cs, CS_OPT_DETAIL, CS_OPT_ON);
  lib->insn = lib->malloc(lib->cs);
  if (!lib->insn) return Error("capstone: out of memory");
  X86Disassembler d;
  d.lib_ = std::move(lib);
  return d;
}

X86Disassembler::X86Disassembler(X86Disassembler&&) noexcept = default;
X86Disassembler& X86Disassembler::operator=(X86Disassembler&&) noexcept = default;
X86Disassembler::~X86Disassembler() = default;

bool X86Disassembler::next(const uint8_t** code, size_t* size, uint64_t* address) {
  return lib_->disasm_iter(lib_->cs, code, size, address, lib_->insn);
}

const cs_insn& X86Disassembler::insn() const {
  return *lib_->insn;
}

bool X86Disassembler::regs_access(cs_regs read, uint8_t* nread, cs_regs write, uint8_t* nwrite) const {
  return lib_->regs_access(lib_->cs, lib_->insn, read, nread, write, nwrite) == CS_ERR_OK;
}

}  // namespace tickprobe
