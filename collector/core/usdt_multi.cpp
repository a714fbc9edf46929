#include "core/usdt_multi.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/user.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "core/uprobe_multi.h"
#include "symbolize/elf_info.h"

namespace tickprobe {
namespace {

// The kernel's x86-64 struct pt_regs (what a uprobe program's ctx points
// to) has the layout of the user_regs_struct prefix r15..ss, so its field
// offsets are taken from there.
struct RegName {
  const char* names[4];
  int16_t offset;
};
const RegName kRegs[] = {
    {{"rip", "eip", nullptr, nullptr}, offsetof(user_regs_struct, rip)},
    {{"rax", "eax", "ax", "al"}, offsetof(user_regs_struct, rax)},
    {{"rbx", "ebx", "bx", "bl"}, offsetof(user_regs_struct, rbx)},
    {{"rcx", "ecx", "cx", "cl"}, offsetof(user_regs_struct, rcx)},
    {{"rdx", "edx", "dx", "dl"}, offsetof(user_regs_struct, rdx)},
    {{"rsi", "esi", "si", "sil"}, offsetof(user_regs_struct, rsi)},
    {{"rdi", "edi", "di", "dil"}, offsetof(user_regs_struct, rdi)},
    {{"rbp", "ebp", "bp", "bpl"}, offsetof(user_regs_struct, rbp)},
    {{"rsp", "esp", "sp", "spl"}, offsetof(user_regs_struct, rsp)},
    {{"r8", "r8d", "r8w", "r8b"}, offsetof(user_regs_struct, r8)},
    {{"r9", "r9d", "r9w", "r9b"}, offsetof(user_regs_struct, r9)},
    {{"r10", "r10d", "r10w", "r10b"}, offsetof(user_regs_struct, r10)},
    {{"r11", "r11d", "r11w", "r11b"}, offsetof(user_regs_struct, r11)},
    {{"r12", "r12d", "r12w", "r12b"}, offsetof(user_regs_struct, r12)},
    {{"r13", "r13d", "r13w", "r13b"}, offsetof(user_regs_struct, r13)},
    {{"r14", "r14d", "r14w", "r14b"}, offsetof(user_regs_struct, r14)},
    {{"r15", "r15d", "r15w", "r15b"}, offsetof(user_regs_struct, r15)},
};

int reg_offset(const std::string& reg) {
  for (const auto& r : kRegs)
    for (const char* n : r.names)
      if (n && reg == n) return r.offset;
  return -1;
}

// A whole signed decimal number (as the assembler prints offsets and
// immediates), else false.
bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || !end || *end) return false;
  *out = v;
  return true;
}

}  // namespace

Result<UsdtArgSpec> parse_usdt_arg(const std::string& arg) {
  auto bad = [&](const char* why) { return Error("unsupported USDT argument \"" + arg + "\": " + why); };
  size_t at = arg.find('@');
  if (at == std::string::npos) return bad("no size (N@...)");
  int64_t size = 0;
  if (!parse_int(arg.substr(0, at), &size)) return bad("bad size");
  if (size != 1 && size != -1 && size != 2 && size != -2 && size != 4 && size != -4 && size != 8 && size != -8)
    return bad("size is not +-1, 2, 4 or 8");
  UsdtArgSpec a;
  a.arg_signed = size < 0;
  a.arg_bitshift = static_cast<int8_t>(64 - 8 * (size < 0 ? -size : size));
  std::string loc = arg.substr(at + 1);
  if (loc.empty()) return bad("no location");
  if (loc[0] == '$') {  // an immediate
    int64_t v = 0;
    if (!parse_int(loc.substr(1), &v)) return bad("bad constant");
    a.arg_type = kUsdtArgConst;
    a.val_off = static_cast<uint64_t>(v);
    return a;
  }
  if (loc[0] == '%') {  // a register
    int off = reg_offset(loc.substr(1));
    if (off < 0) return bad("unknown register");
    a.arg_type = kUsdtArgReg;
    a.reg_off = static_cast<int16_t>(off);
    return a;
  }
  // [disp](%reg): memory at a register plus a displacement
  size_t open = loc.find('('), close = loc.find(')');
  if (open == std::string::npos || close != loc.size() - 1 || loc[open + 1] != '%')
    return bad("not N@%reg, N@off(%reg) or N@$imm");
  std::string reg = loc.substr(open + 2, close - open - 2);
  if (reg.find(',') != std::string::npos) return bad("indexed addressing is not supported");
  int off = reg_offset(reg);
  if (off < 0) return bad("unknown register");
  int64_t disp = 0;
  if (open > 0 && !parse_int(loc.substr(0, open), &disp)) return bad("bad displacement (a symbol?)");
  a.arg_type = kUsdtArgRegDeref;
  a.reg_off = static_cast<int16_t>(off);
  a.val_off = static_cast<uint64_t>(disp);
  return a;
}

Result<UsdtSpec> parse_usdt_args(const std::string& args, uint64_t usdt_cookie) {
  UsdtSpec s;
  s.usdt_cookie = usdt_cookie;
  size_t i = 0;
  while (i < args.size()) {
    while (i < args.size() && args[i] == ' ') i++;
    if (i >= args.size()) break;
    size_t j = args.find(' ', i);
    if (j == std::string::npos) j = args.size();
    if (s.arg_cnt >= kUsdtMaxArgs) return Error("USDT site has more than 12 arguments: " + args);
    auto a = parse_usdt_arg(args.substr(i, j - i));
    if (!a) return a.error();
    s.args[s.arg_cnt++] = *a;
    i = j;
  }
  return s;
}

Result<std::vector<UsdtSite>> read_usdt_sites(const std::string& path) {
  ensure_libelf_initialized();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno("cannot open " + path, errno);
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!elf || elf_kind(elf) != ELF_K_ELF) {
    if (elf) elf_end(elf);
    close(fd);
    return Error(path + " is not an ELF file");
  }
  std::vector<UsdtSite> sites;
  auto load = read_elf_load_info(elf);
  size_t shstrndx = 0;
  elf_getshdrstrndx(elf, &shstrndx);
  // Prelinked files moved the code: the notes' base is .stapsdt.base's
  // address at link time (as libbpf and systemtap adjust).
  uint64_t stapsdt_base = 0;
  std::vector<Elf_Scn*> notes;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const char* nm = elf_strptr(elf, shstrndx, sh.sh_name);
    if (!nm) continue;
    if (std::strcmp(nm, ".stapsdt.base") == 0) stapsdt_base = sh.sh_addr;
    if (sh.sh_type == SHT_NOTE && std::strcmp(nm, ".note.stapsdt") == 0) notes.push_back(scn);
  }
  for (Elf_Scn* scn : notes) {
    Elf_Data* data = elf_getdata(scn, nullptr);
    size_t off = 0, name_off = 0, desc_off = 0;
    GElf_Nhdr nh;
    while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
      if (nh.n_type != 3 || nh.n_namesz != 8 || nh.n_descsz < 24 ||
          std::memcmp(static_cast<const char*>(data->d_buf) + name_off, "stapsdt", 8) != 0)
        continue;
      const char* desc = static_cast<const char*>(data->d_buf) + desc_off;
      uint64_t pc, base, sema;
      std::memcpy(&pc, desc, 8);
      std::memcpy(&base, desc + 8, 8);
      std::memcpy(&sema, desc + 16, 8);
      if (stapsdt_base && base) pc += stapsdt_base - base;
      UsdtSite s;
      const char* end = desc + nh.n_descsz;
      const char* p = desc + 24;
      s.provider.assign(p, strnlen(p, end - p));
      p += s.provider.size() + 1;
      if (p < end) s.name.assign(p, strnlen(p, end - p));
      p += s.name.size() + 1;
      if (p < end) s.args.assign(p, strnlen(p, end - p));
      auto at = load ? vaddr_to_file_offset(*load, pc) : std::nullopt;
      if (!at) continue;  // not in a loaded segment: cannot be probed
      s.file_offset = *at;
      if (sema) {
        auto so = vaddr_to_file_offset(*load, sema);
        if (!so) continue;
        s.semaphore_offset = *so;
      }
      sites.push_back(std::move(s));
    }
  }
  elf_end(elf);
  close(fd);
  return sites;
}

UsdtSpecTable::UsdtSpecTable(const bpf_map* specs) {
  if (!specs) return;
  fd_ = bpf_map__fd(specs);
  capacity_ = bpf_map__max_entries(specs);
  layout_ok_ = bpf_map__value_size(specs) == sizeof(UsdtSpec) && bpf_map__key_size(specs) == sizeof(int);
}

Result<uint32_t> UsdtSpecTable::acquire(const UsdtSpec& spec) {
  if (fd_ < 0 || !layout_ok_)
    return Error("the BPF object's __bpf_usdt_specs map is missing or not libbpf 1.1's layout");
  std::string key(reinterpret_cast<const char*>(&spec), sizeof(spec));
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    it->second.second++;
    return it->second.first;
  }
  uint32_t id = 0;
  while (id < capacity_ && by_id_.count(id)) id++;
  if (id >= capacity_)
    return Error("all " + std::to_string(capacity_) + " USDT spec slots are in use",
                 "too many distinct USDT sites attached at once");
  int k = static_cast<int>(id);
  if (bpf_map_update_elem(fd_, &k, &spec, BPF_ANY) != 0)
    return Error::from_errno("cannot store a USDT argument spec", errno);
  by_key_[key] = {id, 1};
  by_id_[id] = key;
  return id;
}

void UsdtSpecTable::release(uint32_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  auto k = by_key_.find(it->second);
  if (k != by_key_.end() && --k->second.second > 0) return;
  if (k != by_key_.end()) by_key_.erase(k);
  by_id_.erase(it);
}

Result<UsdtMultiAttachment> attach_usdt_multi(const bpf_program* prog, UsdtSpecTable& specs, int pid,
                                              const std::string& path, const std::string& provider,
                                              const std::string& name, uint64_t usdt_cookie, int* err) {
  *err = EINVAL;
  // Not readable (a process of another user without CAP_SYS_PTRACE) is a
  // permission error, not "no such probe".
  if (int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC); fd < 0) {
    *err = errno;
    return Error::from_errno("cannot open " + path, *err);
  } else {
    close(fd);
  }
  auto sites = read_usdt_sites(path);
  if (!sites) {
    *err = ENOENT;
    return sites.error();
  }
  UsdtMultiAttachment out;
  std::vector<uint64_t> offsets, cookies, ref_ctrs;
  bool any_sema = false;
  auto give_back = [&] {
    for (uint32_t id : out.spec_ids) specs.release(id);
    out.spec_ids.clear();
  };
  for (const auto& s : *sites) {
    if (s.provider != provider || s.name != name) continue;
    auto spec = parse_usdt_args(s.args, usdt_cookie);
    if (!spec) {
      give_back();
      return Error(provider + ":" + name + " in " + path + ": " + spec.error().message);
    }
    auto id = specs.acquire(*spec);
    if (!id) {
      give_back();
      *err = E2BIG;
      return id.error();
    }
    out.spec_ids.push_back(*id);
    offsets.push_back(s.file_offset);
    cookies.push_back(*id);
    ref_ctrs.push_back(s.semaphore_offset);
    any_sema |= s.semaphore_offset != 0;
  }
  if (offsets.empty()) {
    *err = ENOENT;
    return Error("no USDT probe " + provider + ":" + name + " in " + path);
  }
  if (!any_sema) ref_ctrs.clear();
  int e = attach_uprobe_multi(prog, pid > 0 ? static_cast<uint32_t>(pid) : 0, path, offsets, cookies, ref_ctrs,
                              false, &out.link);
  if (e) {
    give_back();
    *err = e;
    return Error::from_errno("cannot attach to USDT " + provider + ":" + name + " in " + path, e);
  }
  *err = 0;
  return out;
}

}  // namespace tickprobe
