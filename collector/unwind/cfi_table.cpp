#include "unwind/cfi_table.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "symbolize/elf_info.h"

namespace tickprobe {
namespace {

constexpr int kRegRbp = 6;
constexpr int kRegRsp = 7;
constexpr int kRegRip = 16;

struct ElfCloser {
  int fd = -1;
  Elf* elf = nullptr;
  ~ElfCloser() {
    if (elf) elf_end(elf);
    if (fd >= 0) close(fd);
  }
};

// Function starts from the symbol tables, for binaries without .eh_frame_hdr.
std::vector<uint64_t> starts_from_symbols(Elf* elf) {
  std::vector<uint64_t> starts;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || sh.sh_entsize == 0) continue;
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; i++) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) && GELF_ST_TYPE(sym.st_info) == STT_FUNC &&
          sym.st_value != 0)
        starts.push_back(sym.st_value);
    }
  }
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  return starts;
}

bool decode_breg(const Dwarf_Op& op, int* reg, int64_t* off);

// Translates one libdw frame state into a row. Returns false when the frame
// has a rule the BPF side cannot follow (row becomes TP_CFA_INVALID).
tp_unwind_row frame_to_row(Dwarf_Frame* frame, uint64_t start, bool* is_fp_frame, bool* rbp_unsupported) {
  tp_unwind_row row{};
  row.pc = static_cast<__u32>(start);
  row.cfa_type = TP_CFA_INVALID;
  *is_fp_frame = false;

  // Return address undefined: the outermost frame (_start, clone3).
  Dwarf_Op ra_mem[3];
  Dwarf_Op* ra_ops = nullptr;
  size_t ra_nops = 0;
  if (dwarf_frame_register(frame, kRegRip, ra_mem, &ra_ops, &ra_nops) == 0 && ra_nops == 0 &&
      ra_ops == ra_mem) {
    row.cfa_type = TP_CFA_END;
    return row;
  }

  Dwarf_Op* ops = nullptr;
  size_t nops = 0;
  if (dwarf_frame_cfa(frame, &ops, &nops) != 0 || nops == 0) return row;
  CfaExpression cfa = classify_cfa_expression(ops, nops);
  row.cfa_type = TP_CFA_UNSUPPORTED;
  switch (cfa.form) {
    case CfaForm::kRegOffset:
      if ((cfa.reg != kRegRsp && cfa.reg != kRegRbp) || cfa.offset < INT32_MIN || cfa.offset > INT32_MAX) return row;
      row.cfa_type = cfa.reg == kRegRsp ? TP_CFA_RSP : TP_CFA_RBP;
      row.cfa_offset = static_cast<__s32>(cfa.offset);
      break;
    case CfaForm::kPlt:
      row.cfa_type = TP_CFA_PLT;
      row.cfa_offset = static_cast<__s32>(cfa.offset);
      break;
    case CfaForm::kDerefOffset:
      if ((cfa.reg != kRegRsp && cfa.reg != kRegRbp) || cfa.offset < INT16_MIN || cfa.offset > INT16_MAX ||
          cfa.outer < INT16_MIN || cfa.outer > INT16_MAX)
        return row;
      row.cfa_type = cfa.reg == kRegRsp ? TP_CFA_DEREF_RSP : TP_CFA_DEREF_RBP;
      row.cfa_offset = TP_CFA_DEREF_PACK(cfa.offset, cfa.outer);
      break;
    case CfaForm::kUnsupported:
      return row;
  }

  Dwarf_Op rbp_mem[3];
  Dwarf_Op* rops = nullptr;
  size_t rnops = 0;
  if (dwarf_frame_register(frame, kRegRbp, rbp_mem, &rops, &rnops) != 0) {
    row.rbp_rule = TP_RBP_UNDEF;
  } else if (rnops == 0) {
    row.rbp_rule = rops == nullptr ? TP_RBP_SAME : TP_RBP_UNDEF;
  } else if (rnops == 2 && rops[0].atom == DW_OP_call_frame_cfa &&
             (rops[1].atom == DW_OP_plus_uconst || rops[1].atom == DW_OP_consts ||
              rops[1].atom == DW_OP_constu)) {
    // libdw spells "saved at CFA+N" as call_frame_cfa; plus_uconst N (N may wrap negative).
    int64_t off = static_cast<int64_t>(rops[1].number);
    if (off < INT16_MIN || off > INT16_MAX) {
      row.rbp_rule = TP_RBP_UNDEF;
    } else {
      row.rbp_rule = TP_RBP_OFFSET;
      row.rbp_offset = static_cast<__s16>(off);
    }
  } else if (rnops == 3 && rops[0].atom == DW_OP_call_frame_cfa && rops[1].atom == DW_OP_consts &&
             rops[2].atom == DW_OP_plus) {
    int64_t off = static_cast<int64_t>(rops[1].number);
    row.rbp_rule = TP_RBP_OFFSET;
    row.rbp_offset = static_cast<__s16>(off);
  } else {
    row.rbp_rule = TP_RBP_UNDEF;  // an expression rule (DW_CFA_expression / val_expression)
    *rbp_unsupported = true;
  }
  *is_fp_frame = row.cfa_type == TP_CFA_RBP && row.cfa_offset == 16;
  return row;
}

// Decodes DW_OP_bregN off / DW_OP_bregx reg off (libdw uses the latter for
// CFA rules). Returns false for any other op.
bool decode_breg(const Dwarf_Op& op, int* reg, int64_t* off) {
  if (op.atom >= DW_OP_breg0 && op.atom <= DW_OP_breg31) {
    *reg = op.atom - DW_OP_breg0;
    *off = static_cast<int64_t>(op.number);
    return true;
  }
  if (op.atom == DW_OP_bregx) {
    *reg = static_cast<int>(op.number);
    *off = static_cast<int64_t>(op.number2);
    return true;
  }
  return false;
}

bool same_rule(const tp_unwind_row& a, const tp_unwind_row& b) {
  return a.cfa_type == b.cfa_type && a.cfa_offset == b.cfa_offset && a.rbp_rule == b.rbp_rule &&
         a.rbp_offset == b.rbp_offset;
}

}  // namespace

CfaExpression classify_cfa_expression(const Dwarf_Op* ops, size_t nops) {
  CfaExpression e;
  int reg0 = -1, reg1 = -1;
  int64_t off0 = 0, off1 = 0;
  if (nops == 0 || !decode_breg(ops[0], &reg0, &off0)) return e;
  if (nops == 1) {
    e.form = CfaForm::kRegOffset;
    e.reg = reg0;
    e.offset = off0;
    return e;
  }
  // The PLT expression: rsp + 8 + (((rip & 15) >= N) << 3), spelled
  // breg7 8; breg16 0; lit15; and; litN; ge; lit3; shl; plus.
  if (nops >= 5 && reg0 == kRegRsp && decode_breg(ops[1], &reg1, &off1) && reg1 == kRegRip &&
      ops[4].atom >= DW_OP_lit0 && ops[4].atom <= DW_OP_lit31) {
    e.form = CfaForm::kPlt;
    e.reg = reg0;
    e.offset = ops[4].atom - DW_OP_lit0;
    return e;
  }
  // *(reg + inner) [+ outer]: the old stack pointer saved in a realigned frame.
  if (ops[1].atom == DW_OP_deref && (nops == 2 || nops == 3)) {
    int64_t outer = 0;
    if (nops == 3) {
      if (ops[2].atom != DW_OP_plus_uconst) return e;
      outer = static_cast<int64_t>(ops[2].number);
    }
    e.form = CfaForm::kDerefOffset;
    e.reg = reg0;
    e.offset = off0;
    e.outer = outer;
    return e;
  }
  // Others (libcrypto: *(rsp + 8 + r9 * 8) + 8, which needs r9, known only
  // at the leaf) are not evaluated.
  return e;
}

namespace {

CfiTable build_cfi_table_elf(ElfCloser& h) {
  CfiTable table;
  size_t nphdr = 0;
  if (elf_getphdrnum(h.elf, &nphdr) == 0) {
    for (size_t i = 0; i < nphdr; i++) {
      GElf_Phdr ph;
      if (!gelf_getphdr(h.elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
      table.loads.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz, (ph.p_flags & PF_X) != 0});
    }
  }
  Dwarf_CFI* cfi = dwarf_getcfi_elf(h.elf);
  Dwarf* dwarf = nullptr;
  if (!cfi) {
    // No .eh_frame: try .debug_frame.
    dwarf = dwarf_begin_elf(h.elf, DWARF_C_READ, nullptr);
    if (dwarf) cfi = dwarf_getcfi(dwarf);
    table.from_debug_frame = cfi != nullptr;
  }
  if (!cfi) {
    if (dwarf) dwarf_end(dwarf);
    return table;  // no CFI at all: the BPF side walks frame pointers
  }
  // A CFI from dwarf_getcfi_elf is the caller's to end (dwarf_getcfi's
  // belongs to its Dwarf). Not ending it kept libdw's CIE/FDE caches of
  // every binary for the process's life: 2 MiB for tickgame's libraries.
  struct CfiEnd {
    Dwarf_CFI* cfi;
    ~CfiEnd() {
      if (cfi) dwarf_cfi_end(cfi);
    }
  } cfi_end{dwarf ? nullptr : cfi};


  std::vector<uint64_t> starts = eh_frame_fde_starts(h.elf);
  if (starts.empty()) starts = starts_from_symbols(h.elf);

  uint64_t covered_until = 0;
  for (size_t i = 0; i < starts.size(); i++) {
    uint64_t addr = starts[i];
    if (addr < covered_until) continue;  // overlapping FDEs: keep the first
    if (addr > UINT32_MAX) break;
    bool any = false, fp = false;
    uint64_t end = addr;
    for (int guard = 0; guard < 100000; guard++) {
      Dwarf_Frame* frame = nullptr;
      if (dwarf_cfi_addrframe(cfi, addr, &frame) != 0) break;
      Dwarf_Addr fstart = 0, fend = 0;
      bool signalp = false;
      dwarf_frame_info(frame, &fstart, &fend, &signalp);
      bool row_fp = false, rbp_expr = false;
      tp_unwind_row row = frame_to_row(frame, addr, &row_fp, &rbp_expr);
      if (signalp) {
        row.cfa_type = TP_CFA_INVALID;
        table.stats.signal_frames++;
      } else if (rbp_expr) {
        table.stats.rbp_unsupported++;
      }
      free(frame);
      fp |= row_fp;
      if (table.rows.empty() || !same_rule(table.rows.back(), row) || !any) {
        if (!table.rows.empty() && table.rows.back().pc == row.pc)
          table.rows.back() = row;
        else
          table.rows.push_back(row);
      }
      any = true;
      if (fend <= addr) break;
      addr = fend;
      end = fend;
    }
    if (!any) continue;
    table.fde_count++;
    if (fp) table.fp_fdes++;
    covered_until = end;
    // Close the FDE with an INVALID row unless the next FDE starts right here.
    bool next_adjacent = i + 1 < starts.size() && starts[i + 1] == end;
    if (!next_adjacent && end <= UINT32_MAX) {
      tp_unwind_row gap{};
      gap.pc = static_cast<__u32>(end);
      gap.cfa_type = TP_CFA_INVALID;
      table.rows.push_back(gap);
    }
  }
  if (dwarf) dwarf_end(dwarf);
  // Binaries built with -fno-omit-frame-pointer set up rbp in every non-leaf
  // function (measured: ~45% of all FDEs once leaves, PLT and _start count),
  // Debian's -O2 libraries in almost none (libc: 2.5%, libcrypto: 0.03%).
  // Functions that skip the frame are leaves, and the leaf is always unwound
  // by CFI, so the FP walk above it stays right.
  table.frame_pointers = table.fde_count > 0 && table.fp_fdes * 100 >= table.fde_count * 35;
  table.stats.rows = table.rows.size();
  for (const auto& r : table.rows) {
    if (r.cfa_type == TP_CFA_UNSUPPORTED) table.stats.unsupported_rows++;
    if (r.cfa_type == TP_CFA_DEREF_RSP || r.cfa_type == TP_CFA_DEREF_RBP) table.stats.deref_rows++;
  }
  return table;
}

}  // namespace

Result<CfiTable> build_cfi_table(const std::string& path) {
  elf_version(EV_CURRENT);
  ElfCloser h;
  h.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (h.fd < 0) return Error::from_errno("failed to open " + path, errno);
  h.elf = elf_begin(h.fd, ELF_C_READ_MMAP, nullptr);
  if (!h.elf || elf_kind(h.elf) != ELF_K_ELF)
    return Error("failed to read ELF " + path + ": " + elf_errmsg(-1));
  return build_cfi_table_elf(h);
}

Result<CfiTable> build_cfi_table_memory(const std::vector<char>& image) {
  elf_version(EV_CURRENT);
  ElfCloser h;
  h.elf = elf_memory(const_cast<char*>(image.data()), image.size());
  if (!h.elf || elf_kind(h.elf) != ELF_K_ELF) return Error(std::string("failed to read in-memory ELF: ") + elf_errmsg(-1));
  return build_cfi_table_elf(h);
}

uint64_t load_bias(const std::vector<ElfLoadSegment>& loads, uint64_t map_start, uint64_t file_offset) {
  for (const auto& seg : loads) {
    uint64_t seg_off = seg.offset & ~0xfffULL;
    if (file_offset >= seg_off && file_offset < seg.offset + seg.filesz)
      return map_start - file_offset + seg.offset - seg.vaddr;
  }
  // No segment matched (unusual layouts): assume the file maps at its own offsets.
  return map_start - file_offset;
}

const tp_unwind_row* find_cfi_row(const CfiTable& table, uint64_t pc) {
  const auto& rows = table.rows;
  auto it = std::upper_bound(rows.begin(), rows.end(), pc,
                             [](uint64_t v, const tp_unwind_row& r) { return v < r.pc; });
  if (it == rows.begin()) return nullptr;
  --it;
  return it->cfa_type == TP_CFA_INVALID || it->cfa_type == TP_CFA_UNSUPPORTED ? nullptr : &*it;
}

}  // namespace tickprobe
