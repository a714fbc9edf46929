#include "unwind/user_unwind.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "symbolize/symbolizer.h"

namespace tickprobe {
namespace {

struct ProcMem {
  int fd = -1;
  explicit ProcMem(uint32_t pid) {
    fd = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  }
  ~ProcMem() {
    if (fd >= 0) ::close(fd);
  }
  bool read(uint64_t addr, void* out, size_t len) const {
    return fd >= 0 && ::pread(fd, out, len, static_cast<off_t>(addr)) == static_cast<ssize_t>(len);
  }
  bool read_u64(uint64_t addr, uint64_t* out) const { return read(addr, out, sizeof *out); }
};

std::vector<char> read_range(const ProcMem& mem, uint64_t start, uint64_t end) {
  std::vector<char> bytes;
  if (end <= start || end - start > (1u << 20)) return bytes;
  bytes.resize(end - start);
  if (!mem.read(start, bytes.data(), bytes.size())) bytes.clear();
  return bytes;
}

// The raw row for pc (TP_CFA_INVALID and _UNSUPPORTED included), or null.
const tp_unwind_row* raw_row(const CfiTable& t, uint64_t pc) {
  auto it =
      std::upper_bound(t.rows.begin(), t.rows.end(), pc, [](uint64_t v, const tp_unwind_row& r) { return v < r.pc; });
  if (it == t.rows.begin()) return nullptr;
  return &*(it - 1);
}

}  // namespace

const UserUnwinder::Table& UserUnwinder::table_for(uint32_t pid, const std::string& path, uint64_t dev, uint64_t inode,
                                                   uint64_t start, uint64_t end) {
  auto key = std::make_pair(dev, inode);
  auto it = tables_.find(key);
  if (it != tables_.end()) return *it->second;
  auto t = std::make_unique<Table>();
  Result<CfiTable> built = Error("unset");
  if (path == "[vdso]") {
    ProcMem mem(pid);
    built = build_cfi_table_memory(read_range(mem, start, end));
  } else {
    std::string via_root = "/proc/" + std::to_string(pid) + "/root" + path;
    built = build_cfi_table(access(via_root.c_str(), R_OK) == 0 ? via_root : path);
  }
  if (built) {
    t->cfi = built.take();
    t->ok = true;
  }
  return *tables_.emplace(key, std::move(t)).first->second;
}

UserUnwindResult UserUnwinder::unwind(uint32_t pid, const UserRegs& regs, size_t max_frames) {
  UserUnwindResult out;
  ProcMem mem(pid);
  struct Map {
    uint64_t start, end, bias;
    const Table* table;
  };
  std::vector<Map> maps;
  for (const Mapping& m : read_proc_maps(pid, /*executable_only=*/true)) {
    bool file_backed = !m.path.empty() && m.path[0] == '/' && m.inode != 0;
    bool vdso = m.path == "[vdso]";
    if (!file_backed && !vdso) {
      maps.push_back({m.start, m.end, 0, nullptr});
      continue;
    }
    uint64_t dev = vdso ? ~0ULL : (static_cast<uint64_t>(m.dev_major) << 32) | m.dev_minor;
    const Table& t = table_for(pid, m.path, dev, vdso ? 0 : m.inode, m.start, m.end);
    maps.push_back({m.start, m.end, t.ok ? load_bias(t.cfi.loads, m.start, m.file_offset) : 0, t.ok ? &t : nullptr});
  }
  std::sort(maps.begin(), maps.end(), [](const Map& a, const Map& b) { return a.start < b.start; });
  auto find_map = [&](uint64_t ip) -> const Map* {
    auto it = std::upper_bound(maps.begin(), maps.end(), ip, [](uint64_t v, const Map& m) { return v < m.start; });
    if (it == maps.begin()) return nullptr;
    --it;
    return ip < it->end ? &*it : nullptr;
  };

  uint64_t ip = regs.ip, sp = regs.sp, bp = regs.bp;
  for (size_t n = 0; ip != 0; n++) {
    if (n >= max_frames) {
      out.flags |= TP_STACK_TRUNCATED;
      break;
    }
    out.ips.push_back(ip);
    const Map* m = find_map(ip);
    if (!m) out.flags |= TP_STACK_NO_MAPPING;
    bool cfi_step = m && m->table && !m->table->cfi.rows.empty() && (n == 0 || !m->table->cfi.frame_pointers);
    const tp_unwind_row* row = cfi_step ? raw_row(m->table->cfi, ip - m->bias - (n ? 1 : 0)) : nullptr;
    if (row && row->cfa_type != TP_CFA_INVALID && row->cfa_type != TP_CFA_UNSUPPORTED) {
      if (row->cfa_type == TP_CFA_END) break;
      uint64_t cfa = 0, ra = 0;
      switch (row->cfa_type) {
        case TP_CFA_RSP:
          cfa = sp + row->cfa_offset;
          break;
        case TP_CFA_RBP:
          cfa = bp + row->cfa_offset;
          break;
        case TP_CFA_DEREF_RSP:
        case TP_CFA_DEREF_RBP: {
          uint64_t base = (row->cfa_type == TP_CFA_DEREF_RSP ? sp : bp) + TP_CFA_DEREF_INNER(row->cfa_offset);
          if (!mem.read_u64(base, &cfa)) {
            out.flags |= TP_STACK_READ_FAULT;
            return out;
          }
          cfa += TP_CFA_DEREF_OUTER(row->cfa_offset);
          break;
        }
        default:  // TP_CFA_PLT
          cfa = sp + 8 + (((ip & 15) >= static_cast<uint64_t>(row->cfa_offset)) ? 8 : 0);
      }
      if (!mem.read_u64(cfa - 8, &ra)) {
        out.flags |= TP_STACK_READ_FAULT;
        break;
      }
      if (row->rbp_rule == TP_RBP_OFFSET) {
        uint64_t next_bp = 0;
        bp = mem.read_u64(cfa + row->rbp_offset, &next_bp) ? next_bp : 0;
      } else if (row->rbp_rule == TP_RBP_UNDEF) {
        bp = 0;
      }
      if (cfa <= sp) break;  // the stack must grow towards the root
      sp = cfa;
      ip = ra;
      continue;
    }
    // Frame-pointer step: [bp] is the caller's bp, [bp+8] the return address.
    if (bp == 0 || bp < sp) break;
    uint64_t next_bp = 0, ra = 0;
    if (!mem.read_u64(bp, &next_bp) || !mem.read_u64(bp + 8, &ra)) {
      out.flags |= TP_STACK_READ_FAULT;
      break;
    }
    out.flags |= TP_STACK_USED_FP;
    sp = bp + 16;
    bp = next_bp;
    ip = ra;
  }
  return out;
}

}  // namespace tickprobe
