#include "core/uprobe_site.h"

#include "runtime/x86_disassembler.h"

#include <capstone/capstone.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "bpf/include/uprobe_args.h"
#include "symbolize/elf_info.h"

namespace tickprobe {

namespace {

// The entry block is walked this far at most: prologues reach their first
// branch within a few instructions.
constexpr size_t kMaxBlockInsns = 32;
constexpr size_t kMaxBlockBytes = 160;
constexpr uint64_t kMaxFunctionBytes = 1 << 20;
constexpr int kRsp = 4;

// Each general-purpose register's names by width, in x86 encoding order
// (the row is the register number); the first is the 64-bit one.
constexpr unsigned kGprNames[16][5] = {
    {X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH},
    {X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH},
    {X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH},
    {X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH},
    {X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL, X86_REG_INVALID},
    {X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL, X86_REG_INVALID},
    {X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL, X86_REG_INVALID},
    {X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL, X86_REG_INVALID},
    {X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B, X86_REG_INVALID},
    {X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B, X86_REG_INVALID},
    {X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B, X86_REG_INVALID},
    {X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B, X86_REG_INVALID},
    {X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B, X86_REG_INVALID},
    {X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B, X86_REG_INVALID},
    {X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B, X86_REG_INVALID},
    {X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B, X86_REG_INVALID},
};

// x86 register number of a general-purpose register of any width, -1 for
// anything else.
int gpr_number(unsigned reg) {
  if (reg == X86_REG_INVALID) return -1;
  for (int r = 0; r < 16; r++)
    for (unsigned name : kGprNames[r])
      if (name == reg) return r;
  return -1;
}

bool is_64bit_gpr(unsigned reg) {
  for (const auto& row : kGprNames)
    if (row[0] == reg) return true;
  return false;
}

bool is_prefix(uint8_t b) {
  return b == 0x66 || b == 0x67 || b == 0xf2 || b == 0xf3 || b == 0x2e || b == 0x3e || b == 0x26 || b == 0x36 ||
         b == 0x64 || b == 0x65 || b == 0xf0;
}

// The kernel's x86_nops[1..8] (ASM_NOP_MAX 8 on x86_64): a nop of exactly
// this form is emulated whatever its first byte.
bool is_kernel_nop(const uint8_t* b, size_t len) {
  static const uint8_t nops[9][8] = {
      {},
      {0x90},
      {0x66, 0x90},
      {0x0f, 0x1f, 0x00},
      {0x0f, 0x1f, 0x40, 0x00},
      {0x0f, 0x1f, 0x44, 0x00, 0x00},
      {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
      {0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
      {0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
  };
  return len >= 1 && len <= 8 && std::memcmp(b, nops[len], len) == 0;
}

// cs_insn_group() without the handle: the decoded instruction's groups.
bool has_group(const cs_insn& in, uint8_t group) {
  if (!in.detail) return false;
  for (uint8_t i = 0; i < in.detail->groups_count; i++)
    if (in.detail->groups[i] == group) return true;
  return false;
}

// Direct control transfers: their target, or false.
bool direct_branch_target(const cs_insn& in, uint64_t* target) {
  const cs_x86& x = in.detail->x86;
  if (!(has_group(in, X86_GRP_JUMP) || has_group(in, X86_GRP_CALL))) return false;
  if (x.op_count != 1 || x.operands[0].type != X86_OP_IMM) return false;
  *target = static_cast<uint64_t>(x.operands[0].imm);
  return true;
}

}  // namespace

const char* uprobe_cost_name(UprobeCost c) {
  switch (c) {
    case UprobeCost::kOptimized:
      return "optimized";
    case UprobeCost::kEmulated:
      return "emulated";
    case UprobeCost::kSingleStep:
      return "single-stepped";
  }
  return "?";
}

UprobeCost uprobe_cost(const uint8_t* b, size_t len, uint64_t vaddr) {
  if (len == 0) return UprobeCost::kSingleStep;
  // arch_uprobe_analyze_insn: can_optimize() (a 5-byte nop or nopl that
  // does not cross a page), then branch_setup_xol_ops() (nops, jmp, call,
  // jcc; any 0x66 prefix on a branch is refused), then push_setup_xol_ops()
  // (push reg, REX 0x41 only). Everything else is single-stepped.
  size_t p = 0;
  bool opsize = false;
  while (p < len && is_prefix(b[p])) opsize |= b[p++] == 0x66;
  uint8_t rex = 0;
  if (p < len && (b[p] & 0xf0) == 0x40) rex = b[p++];
  if (p >= len) return UprobeCost::kSingleStep;
  uint8_t op = b[p];
  bool nop90 = op == 0x90 && !rex && p + 1 == len;  // (REX.B 90 is xchg %r8: never call it a nop)
  bool nopl = op == 0x0f && p + 2 < len && b[p + 1] == 0x1f && ((b[p + 2] >> 3) & 7) == 0;
  if (len == 5 && (nop90 || nopl) && 4096 - (vaddr & 4095) >= 5) return UprobeCost::kOptimized;
  if (is_kernel_nop(b, len) || nop90) return UprobeCost::kEmulated;
  bool branch = op == 0xeb || op == 0xe9 || op == 0xe8 || (op >= 0x70 && op <= 0x7f) ||
                (op == 0x0f && p + 1 < len && b[p + 1] >= 0x80 && b[p + 1] <= 0x8f);
  if (branch) return opsize ? UprobeCost::kSingleStep : UprobeCost::kEmulated;
  if (op >= 0x50 && op <= 0x57 && p + 1 == len && p == static_cast<size_t>(rex ? 1 : 0) && (!rex || rex == 0x41))
    return UprobeCost::kEmulated;
  return UprobeCost::kSingleStep;
}

uint64_t UprobeSite::cookie_bits() const {
  static constexpr int8_t sysv[6] = {7, 6, 2, 1, 8, 9};
  uint64_t bits = 0;
  for (int i = 0; i < UPROBE_ARGS_MAX; i++)
    if (arg_reg[i] >= 0 && arg_reg[i] != sysv[i]) bits |= UPROBE_ARG_ENCODE(i, static_cast<unsigned>(arg_reg[i]));
  return bits;
}

UprobeSite choose_uprobe_site(const uint8_t* code, size_t len, uint64_t vaddr, const UprobeSiteRequest& req,
                              const std::vector<uint64_t>& branch_targets) {
  UprobeSite best;
  auto dis = X86Disassembler::open(/*detail=*/true);
  if (!dis) {
    best.limited_by = "capstone unavailable";
    return best;
  }
  const cs_insn* in = &dis->insn();
  // Where each argument's entry value is: value[reg] = argument index, or -1.
  static constexpr int8_t sysv[6] = {7, 6, 2, 1, 8, 9};
  std::array<int8_t, 16> value;
  value.fill(-1);
  uint32_t nargs = std::min<uint32_t>(req.args, 6);
  for (uint32_t i = 0; i < 6; i++) value[sysv[i]] = static_cast<int8_t>(i);
  uint64_t first_target = UINT64_MAX;
  for (uint64_t t : branch_targets)
    if (t > vaddr) first_target = std::min(first_target, t);
  bool sp_moved = false, have_best = false;

  const uint8_t* p = code;
  size_t left = std::min(len, kMaxBlockBytes);
  uint64_t addr = vaddr;
  for (size_t n = 0;; n++) {
    uint64_t at = addr;
    if (n >= kMaxBlockInsns) {
      best.limited_by = "no branch within " + std::to_string(kMaxBlockInsns) + " instructions";
      break;
    }
    if (!dis->next(&p, &left, &addr)) {
      best.limited_by = "undecodable instruction at +" + std::to_string(at - vaddr);
      break;
    }
    if (at > vaddr && at >= first_target) {
      best.limited_by = "a branch lands at +" + std::to_string(first_target - vaddr);
      break;
    }
    // This instruction is reached by every call with the state tracked so far.
    std::array<int8_t, 6> where;
    bool args_ok = true;
    for (uint32_t i = 0; i < 6; i++) {
      where[i] = -1;
      for (int r = 0; r < 16; r++)
        if (value[r] == static_cast<int8_t>(i) && (where[i] < 0 || r == sysv[i])) where[i] = static_cast<int8_t>(r);
      if (i < nargs && where[i] < 0) args_ok = false;
    }
    UprobeCost cost = uprobe_cost(in->bytes, in->size, at);
    if (at == vaddr) best.entry_cost = cost;
    if (!args_ok) {
      best.limited_by = "an argument is overwritten before +" + std::to_string(at - vaddr);
      break;
    }
    if (req.return_probe && sp_moved) {
      best.limited_by = "the stack pointer moves before +" + std::to_string(at - vaddr) + " (return probe)";
      break;
    }
    if (!have_best || cost < best.cost) {
      best.delta = at - vaddr;
      best.cost = cost;
      best.arg_reg = where;
      for (uint32_t i = nargs; i < 6; i++) best.arg_reg[i] = sysv[i];  // not read: unchanged in the cookie
      best.insn = std::string(in->mnemonic) + (in->op_str[0] ? " " : "") + in->op_str;
      have_best = true;
    }
    if (best.cost == UprobeCost::kOptimized) {
      best.limited_by = "optimized site";
      break;
    }
    // Control transfer: the block ends here (a direct one was a candidate).
    bool transfer = has_group(*in, X86_GRP_JUMP) || has_group(*in, X86_GRP_CALL) || has_group(*in, X86_GRP_RET) ||
                    has_group(*in, X86_GRP_INT) || has_group(*in, X86_GRP_IRET) || in->id == X86_INS_SYSCALL ||
                    in->id == X86_INS_SYSENTER || in->id == X86_INS_UD2 || in->id == X86_INS_HLT;
    if (transfer) {
      best.limited_by = "first branch at +" + std::to_string(at - vaddr);
      break;
    }
    // Effects on the tracked state.
    const cs_x86& x = in->detail->x86;
    unsigned id = in->id;
    bool reads_only = id == X86_INS_CMP || id == X86_INS_TEST || id == X86_INS_BT || id == X86_INS_NOP ||
                      id == X86_INS_ENDBR64 || id == X86_INS_PREFETCHT0 || id == X86_INS_PREFETCHT1 ||
                      id == X86_INS_PREFETCHT2 || id == X86_INS_PREFETCHNTA || id == X86_INS_PUSH;
    bool dst_only = id == X86_INS_MOV || id == X86_INS_MOVZX || id == X86_INS_MOVSX || id == X86_INS_MOVSXD ||
                    id == X86_INS_MOVABS || id == X86_INS_LEA || id == X86_INS_POP;
    std::array<bool, 16> written{};
    // Implicit writes (mul's rdx:rax, rep's rcx, push/pop's rsp, ...).
    cs_regs rr, rw;
    uint8_t nr = 0, nw = 0;
    if (dis->regs_access(rr, &nr, rw, &nw)) {
      for (uint8_t i = 0; i < nw; i++)
        if (int g = gpr_number(rw[i]); g >= 0) written[g] = true;
    } else {
      written.fill(true);
    }
    for (uint8_t i = 0; i < x.op_count; i++) {
      const cs_x86_op& o = x.operands[i];
      if (o.type == X86_OP_REG) {
        int g = gpr_number(o.reg);
        if (g < 0) continue;
        if (reads_only) continue;
        // capstone's access flags; without them the first operand counts as written.
        bool w = o.access ? (o.access & CS_AC_WRITE) != 0 : i == 0;
        if (dst_only ? i == 0 : w) written[g] = true;
      } else if (o.type == X86_OP_MEM && !reads_only && (o.access ? (o.access & CS_AC_WRITE) != 0 : i == 0) &&
                 gpr_number(o.mem.base) == kRsp && id != X86_INS_LEA) {
        sp_moved = true;  // a store to the stack: the return address may be gone
      }
    }
    if (id == X86_INS_PUSH) written[kRsp] = true;
    // A move between 64-bit registers carries the value along.
    int8_t moved = -1;
    int moved_to = -1;
    if (id == X86_INS_MOV && x.op_count == 2 && x.operands[0].type == X86_OP_REG && x.operands[1].type == X86_OP_REG &&
        is_64bit_gpr(x.operands[0].reg) && is_64bit_gpr(x.operands[1].reg)) {
      moved = value[gpr_number(x.operands[1].reg)];
      moved_to = gpr_number(x.operands[0].reg);
    }
    for (int r = 0; r < 16; r++)
      if (written[r]) value[r] = -1;
    if (moved_to >= 0) value[moved_to] = moved;
    if (written[kRsp]) sp_moved = true;
  }
  if (!have_best) {
    best.delta = 0;
    best.arg_reg = {7, 6, 2, 1, 8, 9};
  }
  return best;
}

// ------------------------------------------------------------------ the object

UprobeSiteChooser::~UprobeSiteChooser() = default;

Result<std::unique_ptr<UprobeSiteChooser>> UprobeSiteChooser::open(const std::string& path) {
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
  std::unique_ptr<UprobeSiteChooser> c(new UprobeSiteChooser());
  auto load = read_elf_load_info(elf);
  if (!load) return Error(path + " has no program headers");
  for (const PtLoad& s : load->segments) {
    if (!s.executable() || s.p_filesz == 0) continue;
    Segment seg{s.p_vaddr, std::vector<uint8_t>(s.p_filesz)};
    if (::pread(fd, seg.bytes.data(), seg.bytes.size(), static_cast<off_t>(s.p_offset)) !=
        static_cast<ssize_t>(seg.bytes.size()))
      return Error::from_errno("cannot read the code of " + path, errno);
    c->text_.push_back(std::move(seg));
  }
  // Every byte position read as a direct branch (rel32 call/jmp/jcc, rel8
  // jmp/jcc/loop): (target, position), sorted by target. One pass here;
  // each query is then a range lookup.
  for (const Segment& seg : c->text_) {
    const uint8_t* b = seg.bytes.data();
    size_t n = seg.bytes.size();
    for (size_t i = 0; i < n; i++) {
      uint64_t at = seg.vaddr + i;
      uint8_t op = b[i];
      if ((op == 0xe8 || op == 0xe9) && i + 5 <= n) {
        int32_t rel;
        std::memcpy(&rel, b + i + 1, 4);
        c->byte_branches_.emplace_back(at + 5 + static_cast<int64_t>(rel), at);
      } else if (op == 0x0f && i + 6 <= n && b[i + 1] >= 0x80 && b[i + 1] <= 0x8f) {
        int32_t rel;
        std::memcpy(&rel, b + i + 2, 4);
        c->byte_branches_.emplace_back(at + 6 + static_cast<int64_t>(rel), at);
      }
      if ((op == 0xeb || (op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3)) && i + 2 <= n)
        c->byte_branches_.emplace_back(at + 2 + static_cast<int64_t>(static_cast<int8_t>(b[i + 1])), at);
    }
  }
  std::sort(c->byte_branches_.begin(), c->byte_branches_.end());
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM)) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf || shdr.sh_entsize == 0) continue;
    for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym) || sym.st_shndx == SHN_UNDEF) continue;
      int type = GELF_ST_TYPE(sym.st_info);
      // Any symbol in the code may be entered from outside (another
      // object's call, a function falling through into the next one).
      if (type == STT_FUNC || type == STT_GNU_IFUNC || type == STT_NOTYPE) c->symbol_starts_.push_back(sym.st_value);
      if (type != STT_FUNC || sym.st_size == 0 || sym.st_size > kMaxFunctionBytes) continue;
      uint64_t& size = c->functions_[sym.st_value];
      size = std::max<uint64_t>(size, sym.st_size);
    }
  }
  std::sort(c->symbol_starts_.begin(), c->symbol_starts_.end());
  c->symbol_starts_.erase(std::unique(c->symbol_starts_.begin(), c->symbol_starts_.end()), c->symbol_starts_.end());
  return c;
}

const uint8_t* UprobeSiteChooser::code_at(uint64_t vaddr, size_t* left) const {
  for (const Segment& s : text_)
    if (vaddr >= s.vaddr && vaddr < s.vaddr + s.bytes.size()) {
      *left = s.bytes.size() - (vaddr - s.vaddr);
      return s.bytes.data() + (vaddr - s.vaddr);
    }
  *left = 0;
  return nullptr;
}

std::vector<uint64_t> UprobeSiteChooser::branch_targets_into(uint64_t vaddr, uint64_t len) const {
  std::vector<uint64_t> out;
  const uint64_t lo = vaddr + 1, hi = vaddr + len;
  auto in_window = [&](uint64_t t) { return t >= lo && t <= hi; };
  // The function itself, decoded exactly (its size from the symbol tables).
  uint64_t fn_size = 0;
  if (auto it = functions_.find(vaddr); it != functions_.end()) fn_size = it->second;
  size_t avail = 0;
  const uint8_t* fn = code_at(vaddr, &avail);
  if (fn_size > avail) fn_size = 0;
  // One disassembler for this call (capstone is loaded while it lives).
  auto dis = X86Disassembler::open(/*detail=*/true);
  if (fn && fn_size) {
    if (dis) {
      const cs_insn& in = dis->insn();
      const uint8_t* p = fn;
      size_t left = fn_size;
      uint64_t addr = vaddr;
      while (left > 0) {
        if (!dis->next(&p, &left, &addr)) {
          ++p, --left, ++addr;  // padding or data: resynchronize
          continue;
        }
        uint64_t t;
        if (direct_branch_target(in, &t) && in_window(t)) out.push_back(t);
      }
    } else {
      fn_size = 0;  // fall back to the byte scan below
    }
  }
  // Everywhere else: every byte position read as a branch opcode. This
  // finds every direct branch, and byte patterns that are none: a position
  // inside a known function is kept only if decoding that function from its
  // start finds a branch there; elsewhere (no symbol) it is kept.
  auto real_branch_at = [&](uint64_t at) {
    auto it = functions_.upper_bound(at);
    if (it == functions_.begin()) return true;
    --it;
    if (at >= it->first + it->second) return true;
    size_t left = 0;
    const uint8_t* code = code_at(it->first, &left);
    if (!code || left < it->second) return true;
    if (!dis) return true;
    const cs_insn* in = &dis->insn();
    const uint8_t* p = code;
    left = it->second;
    uint64_t addr = it->first;
    bool found = false, unsure = false;
    while (left > 0 && addr <= at) {
      uint64_t here = addr;
      if (!dis->next(&p, &left, &addr)) {
        if (here == at) unsure = true;
        ++p, --left, ++addr;
        continue;
      }
      // The branch opcode may follow prefixes (bnd jmp, notrack, hints).
      if (at >= here && at < here + in->size) {
        found = true;
        for (uint64_t k = here; k < at; k++)
          if (!is_prefix(in->bytes[k - here]) && (in->bytes[k - here] & 0xf0) != 0x40) found = false;
        break;
      }
    }
    return found || unsure;
  };
  auto add = [&](uint64_t at, uint64_t t) {
    if (in_window(t) && real_branch_at(at)) out.push_back(t);
  };
  auto from = std::lower_bound(byte_branches_.begin(), byte_branches_.end(), std::make_pair(lo, uint64_t{0}));
  for (auto it = from; it != byte_branches_.end() && it->first <= hi; ++it) {
    uint64_t at = it->second;
    if (fn_size && at >= vaddr && at < vaddr + fn_size) continue;  // decoded above
    add(at, it->first);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

UprobeSite UprobeSiteChooser::choose(uint64_t vaddr, const UprobeSiteRequest& req) const {
  size_t avail = 0;
  const uint8_t* code = code_at(vaddr, &avail);
  if (!code) {
    UprobeSite s;
    s.limited_by = "code not in an executable segment";
    return s;
  }
  size_t len = std::min(avail, kMaxBlockBytes);
  if (auto it = functions_.find(vaddr); it != functions_.end()) len = std::min<size_t>(len, it->second);
  std::vector<uint64_t> entered = branch_targets_into(vaddr, len);
  // Another symbol inside the block is another way in: a function that
  // falls through into the next one must not take that one's calls.
  for (auto it = std::upper_bound(symbol_starts_.begin(), symbol_starts_.end(), vaddr);
       it != symbol_starts_.end() && *it <= vaddr + len; ++it)
    entered.push_back(*it);
  return choose_uprobe_site(code, len, vaddr, req, entered);
}

}  // namespace tickprobe
