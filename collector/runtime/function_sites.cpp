#include "runtime/function_sites.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "runtime/x86_disassembler.h"
#include "symbolize/elf_info.h"
#include "symbolize/go_pclntab.h"

namespace tickprobe {
namespace {

constexpr uint64_t kMaxFunctionBytes = 1 << 20;

bool elf_symbol(Elf* elf, const std::string& name, uint64_t* vaddr, uint64_t* size) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM)) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf || shdr.sh_entsize == 0) continue;
    for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
          sym.st_shndx == SHN_UNDEF || sym.st_size == 0)
        continue;
      const char* n = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (n && name == n) {
        *vaddr = sym.st_value;
        *size = sym.st_size;
        return true;
      }
    }
  }
  return false;
}

}  // namespace

Result<FunctionSites> find_function_sites(const std::string& path, const std::string& symbol,
                                          const std::string& callee) {
  ensure_libelf_initialized();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno("cannot open " + path, errno, "is the process still running?");
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  struct Closer {
    int fd;
    Elf* elf;
    ~Closer() {
      if (elf) elf_end(elf);
      ::close(fd);
    }
  } closer{fd, elf};
  if (!elf || elf_kind(elf) != ELF_K_ELF) return Error(path + " is no ELF file");

  std::unique_ptr<GoPclntab> go;
  if (is_go_binary(elf)) {
    std::string error;
    go = GoPclntab::parse(elf, &error);
  }
  auto locate = [&](const std::string& name, uint64_t* vaddr, uint64_t* size) {
    if (go) {
      if (int64_t fn = go->find(name); fn >= 0) {
        *vaddr = go->entry(fn);
        *size = go->end(fn) - *vaddr;
        return true;
      }
    }
    return elf_symbol(elf, name, vaddr, size);
  };
  FunctionSites sites;
  if (!locate(symbol, &sites.vaddr, &sites.size))
    return Error("function " + symbol + " not found in " + path, "is it the right binary (or inlined)?");
  uint64_t callee_addr = 0, callee_size = 0;
  if (!callee.empty() && !locate(callee, &callee_addr, &callee_size))
    return Error("function " + callee + " not found in " + path, "is it the right binary (or inlined)?");
  if (sites.size == 0 || sites.size > kMaxFunctionBytes) return Error("function " + symbol + " has no usable size");

  auto load = read_elf_load_info(elf);
  if (!load) return Error(path + " has no program headers");
  auto off = vaddr_to_file_offset(*load, sites.vaddr);
  if (!off) return Error("function " + symbol + " is not in a loaded segment of " + path);
  sites.entry_offset = *off;

  std::vector<uint8_t> code(sites.size);
  if (::pread(fd, code.data(), code.size(), static_cast<off_t>(*off)) != static_cast<ssize_t>(code.size()))
    return Error::from_errno("cannot read " + symbol + " from " + path, errno);
  auto dis = X86Disassembler::open();
  if (!dis) return dis.error();
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t addr = sites.vaddr;
  while (left > 0) {
    if (!dis->next(&p, &left, &addr)) {
      // Not code (padding, data): skip a byte, as objdump does.
      ++p;
      --left;
      ++addr;
      continue;
    }
    const cs_insn* insn = &dis->insn();
    if (insn->id == X86_INS_RET) sites.ret_offsets.push_back(*off + (insn->address - sites.vaddr));
    // A direct call: E8 rel32, target = next instruction + rel32.
    if (callee_addr && insn->id == X86_INS_CALL && insn->size == 5 && insn->bytes[0] == 0xe8) {
      int32_t rel;
      std::memcpy(&rel, insn->bytes + 1, 4);
      if (insn->address + 5 + static_cast<int64_t>(rel) == callee_addr)
        sites.call_offsets.push_back(*off + (insn->address - sites.vaddr));
    }
  }
  return sites;
}

}  // namespace tickprobe
