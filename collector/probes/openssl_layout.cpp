#include "probes/openssl_layout.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>

#include "symbolize/elf_info.h"

namespace tickprobe {
namespace {

class ElfFile {
 public:
  explicit ElfFile(const std::string& path) {
    ensure_libelf_initialized();
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ >= 0) elf_ = elf_begin(fd_, ELF_C_READ, nullptr);
    if (elf_) info_ = read_elf_load_info(elf_);
  }
  ~ElfFile() {
    if (elf_) elf_end(elf_);
    if (fd_ >= 0) close(fd_);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
  bool ok() const { return elf_ && info_; }

  // `n` bytes of the loaded image at `vaddr` (file-backed part only).
  bool read(uint64_t vaddr, void* out, size_t n) const {
    auto off = vaddr_to_file_offset(*info_, vaddr);
    if (!off) return false;
    return pread(fd_, out, n, static_cast<off_t>(*off)) == static_cast<ssize_t>(n);
  }

  // The pointer the loader leaves at `vaddr`: the addend of its
  // R_X86_64_RELATIVE relocation (DSOs, PIE), else the stored value
  // (fixed-address executables).
  std::optional<uint64_t> pointer_at(uint64_t vaddr) const {
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || sh.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      size_t n = sh.sh_size / sh.sh_entsize;
      for (size_t i = 0; i < n; i++) {
        GElf_Rela r;
        if (!gelf_getrela(data, static_cast<int>(i), &r)) break;
        if (r.r_offset == vaddr && GELF_R_TYPE(r.r_info) == R_X86_64_RELATIVE)
          return static_cast<uint64_t>(r.r_addend);
      }
    }
    uint64_t v = 0;
    if (!read(vaddr, &v, sizeof(v)) || v == 0) return std::nullopt;
    return v;
  }

 private:
  int fd_ = -1;
  Elf* elf_ = nullptr;
  std::optional<ElfLoadInfo> info_;
};

size_t skip_endbr(const unsigned char* b) {
  return (b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) ? 4 : 0;
}

int32_t rel32(const unsigned char* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// `mov disp(%rdi),%eax; ...; ret` (a field getter) -> disp.
std::optional<int32_t> getter_offset(const ElfFile& f, uint64_t fn) {
  unsigned char b[16] = {};
  if (!f.read(fn, b, sizeof(b))) return std::nullopt;
  size_t i = skip_endbr(b);
  if (b[i] == 0x8b && b[i + 1] == 0x47) return static_cast<int32_t>(b[i + 2]);                  // disp8
  if (b[i] == 0x8b && b[i + 1] == 0x87) return rel32(b + i + 2);                                // disp32
  return std::nullopt;
}

// The method-table slot SSL_set_{accept,connect}_state copies into
// s->handshake_func: `mov 0x8(%reg),%rax` (s->method), then
// `mov disp8(%rax),%rax` followed by a store.
std::optional<int32_t> method_slot(const ElfFile& f, uint64_t fn) {
  unsigned char b[96] = {};
  if (!f.read(fn, b, sizeof(b))) return std::nullopt;
  for (size_t i = 0; i + 8 < sizeof(b); i++)
    if (b[i] == 0x48 && b[i + 1] == 0x8b && b[i + 2] == 0x40 && b[i + 4] == 0x48 && b[i + 5] == 0x89)
      return static_cast<int32_t>(b[i + 3]);
  return std::nullopt;
}

// `lea data(%rip),%rax; ret` -> data.
std::optional<uint64_t> returned_address(const ElfFile& f, uint64_t fn) {
  unsigned char b[16] = {};
  if (!f.read(fn, b, sizeof(b))) return std::nullopt;
  size_t i = skip_endbr(b);
  if (b[i] == 0x48 && b[i + 1] == 0x8d && b[i + 2] == 0x05 && b[i + 7] == 0xc3)
    return fn + i + 7 + static_cast<int64_t>(rel32(b + i + 3));
  return std::nullopt;
}

// `mov $imm,%esi; jmp target` (or `xor %esi,%esi; jmp target`) -> (imm, target).
std::optional<std::pair<int, uint64_t>> tail_call_with_esi(const ElfFile& f, uint64_t fn) {
  unsigned char b[16] = {};
  if (!f.read(fn, b, sizeof(b))) return std::nullopt;
  size_t i = skip_endbr(b);
  int imm;
  if (b[i] == 0xbe) {
    imm = rel32(b + i + 1);
    i += 5;
  } else if (b[i] == 0x31 && b[i + 1] == 0xf6) {
    imm = 0;
    i += 2;
  } else {
    return std::nullopt;
  }
  if (b[i] != 0xe9) return std::nullopt;
  return std::make_pair(imm, fn + i + 5 + static_cast<int64_t>(rel32(b + i + 1)));
}

}  // namespace

Result<OpensslLayout> find_openssl_layout(const std::string& path, const SymbolLookup& lookup) {
  ElfFile f(path);
  if (!f.ok()) return Error("cannot read " + path + " as an ELF file");
  OpensslLayout l;

  auto acc = lookup("ossl_statem_accept"), con = lookup("ossl_statem_connect");
  if (acc && con) {
    l.found_by = "symbols";
  } else {
    auto method = lookup("TLS_method"), set_acc = lookup("SSL_set_accept_state"),
         set_con = lookup("SSL_set_connect_state");
    if (!method || !set_acc || !set_con)
      return Error(path + " defines neither ossl_statem_accept nor TLS_method/SSL_set_accept_state");
    auto table = returned_address(f, *method);
    auto acc_slot = method_slot(f, *set_acc), con_slot = method_slot(f, *set_con);
    if (!table || !acc_slot || !con_slot)
      return Error("unrecognized code in " + path + ": cannot locate OpenSSL's handshake function",
                   "tickprobe tls knows OpenSSL 3 builds for x86-64; a build with symbols (.symtab) always works");
    acc = f.pointer_at(*table + *acc_slot);
    con = f.pointer_at(*table + *con_slot);
    if (!acc || !con) return Error("cannot read the TLS_method table of " + path);
    l.found_by = "TLS_method table";
  }
  l.statem_accept = *acc;
  l.statem_connect = *con;
  auto a = tail_call_with_esi(f, *acc), c = tail_call_with_esi(f, *con);
  if (a && c && a->second == c->second && a->first == 1 && c->first == 0) l.state_machine = a->second;

  auto hand = lookup("SSL_get_state"), init = lookup("SSL_in_init");
  std::optional<int32_t> hand_off, init_off;
  if (hand) hand_off = getter_offset(f, *hand);
  if (init) init_off = getter_offset(f, *init);
  if (hand_off && init_off && *init_off == *hand_off + 8 && *hand_off >= 20) {
    l.hand_state_off = *hand_off;
    l.statem_state_off = *hand_off - 20;
  } else {
    l.notes.push_back("the SSL state-machine layout is unknown: a failure is told from an abandonment by the last "
                      "return value (0), and post-handshake calls may start false handshakes");
  }
  return l;
}

}  // namespace tickprobe
