#include "symbolize/go_pclntab.h"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstring>

namespace tickprobe {
namespace {

constexpr uint32_t kMagicGo118 = 0xfffffff0;  // Go 1.18, 1.19
constexpr uint32_t kMagicGo120 = 0xfffffff1;  // Go 1.20+
constexpr uint32_t kPcdataInlTreeIndex = 2;   // runtime/symtab.go _PCDATA_InlTreeIndex
constexpr uint32_t kFuncdataInlTree = 3;      // _FUNCDATA_InlTree
constexpr size_t kPcHeaderSize = 8 + 8 * 8;   // magic..ptrSize, then 8 words (64-bit)
// moduledata.gofunc: after pcHeader, 6 slices, findfunctab, minpc, maxpc,
// text..enoptrbss (10 words), [covctrs, ecovctrs (1.20+)], end, gcdata,
// gcbss, types, etypes, rodata.
constexpr size_t kModuledataGofunc118 = 304;
constexpr size_t kModuledataGofunc120 = 320;
// Bounds: a function with more inline levels than this is cut (a corrupt
// tree could loop); names longer than this are cut.
constexpr int kMaxInlineDepth = 64;
constexpr size_t kMaxName = 4096;

struct Section {
  uint64_t addr = 0;
  const uint8_t* bytes = nullptr;
  size_t size = 0;
  bool found() const { return bytes != nullptr; }
};

Section find_section(Elf* elf, const char* wanted) {
  Section out;
  size_t shstrndx = 0;
  if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0) return out;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS) continue;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (!name || std::strcmp(name, wanted) != 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf) return out;
    out.addr = shdr.sh_addr;
    out.bytes = static_cast<const uint8_t*>(data->d_buf);
    out.size = data->d_size;
    return out;
  }
  return out;
}

bool has_section(Elf* elf, const char* name) {
  size_t shstrndx = 0;
  if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0) return false;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) continue;
    const char* n = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (n && std::strcmp(n, name) == 0) return true;
  }
  return false;
}

uint64_t read_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Unsigned LEB128 as Go's binary.Uvarint / runtime.readvarint write it.
bool read_uvarint(const uint8_t* p, size_t size, size_t* pos, uint32_t* out) {
  uint32_t v = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    if (*pos >= size) return false;
    uint8_t b = p[(*pos)++];
    v |= static_cast<uint32_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

}  // namespace

bool is_go_binary(Elf* elf) {
  return has_section(elf, ".note.go.buildid") || has_section(elf, ".go.buildinfo") || has_section(elf, ".gopclntab") ||
         has_section(elf, ".data.rel.ro.gopclntab");
}

std::string read_go_version(Elf* elf) {
  // .go.buildinfo: "\xff Go buildinf:" (14), ptrSize, flags; with flags & 2
  // (Go 1.18+) the version follows at 32 as a uvarint-length string.
  Section s = find_section(elf, ".go.buildinfo");
  static const char kMagic[] = "\xff Go buildinf:";
  if (!s.found() || s.size < 33 || std::memcmp(s.bytes, kMagic, 14) != 0) return {};
  if (!(s.bytes[15] & 2)) return {};  // pointer-based (Go < 1.18): not read
  size_t pos = 32;
  uint32_t len = 0;
  if (!read_uvarint(s.bytes, s.size, &pos, &len) || len == 0 || len > 64 || pos + len > s.size) return {};
  std::string v(reinterpret_cast<const char*>(s.bytes + pos), len);
  return v.rfind("go", 0) == 0 || v.rfind("devel", 0) == 0 ? v : std::string();
}

std::unique_ptr<GoPclntab> GoPclntab::parse(Elf* elf, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return nullptr;
  };
  Section pcln = find_section(elf, ".gopclntab");
  if (!pcln.found()) pcln = find_section(elf, ".data.rel.ro.gopclntab");
  if (!pcln.found()) return fail("no .gopclntab section");
  if (pcln.size < kPcHeaderSize) return fail(".gopclntab is too small");
  uint32_t magic;
  std::memcpy(&magic, pcln.bytes, 4);
  if (magic != kMagicGo118 && magic != kMagicGo120) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "unsupported .gopclntab magic 0x%08x (Go 1.18 or newer is supported)", magic);
    return fail(buf);
  }
  if (pcln.bytes[7] != 8) return fail("only 64-bit Go binaries are supported");

  std::unique_ptr<GoPclntab> t(new GoPclntab());
  t->magic_ = magic;
  t->min_lc_ = pcln.bytes[6] ? pcln.bytes[6] : 1;
  t->func_fixed_size_ = magic == kMagicGo118 ? 40 : 44;
  t->data_.assign(pcln.bytes, pcln.bytes + pcln.size);
  const uint8_t* h = t->data_.data();
  uint64_t nfunc = read_u64(h + 8);
  uint64_t text_start = read_u64(h + 24);
  uint64_t offs[5];
  for (int i = 0; i < 5; ++i) offs[i] = read_u64(h + 32 + 8 * i);
  for (uint64_t o : offs)
    if (o >= pcln.size) return fail(".gopclntab header offsets point outside the section");
  t->funcnametab_ = offs[0];
  t->cutab_ = offs[1];
  t->filetab_ = offs[2];
  t->pctab_ = offs[3];
  t->pclntab_ = offs[4];
  if (t->pclntab_ + (nfunc + 1) * 8 > pcln.size) return fail(".gopclntab functab is truncated");
  if (text_start == 0) {
    // A position-independent binary relocates textStart at load time; the
    // file holds 0. moduledata.text is the start of .text there too.
    Section text = find_section(elf, ".text");
    text_start = text.addr;
  }

  t->funcs_.reserve(nfunc);
  const uint8_t* ftab = h + t->pclntab_;
  for (uint64_t i = 0; i < nfunc; ++i) {
    uint32_t entryoff, funcoff, next_entryoff;
    std::memcpy(&entryoff, ftab + 8 * i, 4);
    std::memcpy(&funcoff, ftab + 8 * i + 4, 4);
    std::memcpy(&next_entryoff, ftab + 8 * (i + 1), 4);
    if (t->pclntab_ + funcoff + t->func_fixed_size_ > pcln.size) continue;
    t->funcs_.push_back(
        Func{text_start + entryoff, text_start + next_entryoff, static_cast<uint32_t>(t->pclntab_ + funcoff)});
  }
  if (!std::is_sorted(t->funcs_.begin(), t->funcs_.end(),
                      [](const Func& a, const Func& b) { return a.entry < b.entry; }))
    std::sort(t->funcs_.begin(), t->funcs_.end(), [](const Func& a, const Func& b) { return a.entry < b.entry; });
  t->version_ = read_go_version(elf);

  // moduledata: the word that points at the pcHeader, followed by the
  // funcnametab slice pointing at pcHeader + funcnameOffset.
  Section rodata = find_section(elf, ".rodata");
  const size_t gofunc_at = magic == kMagicGo118 ? kModuledataGofunc118 : kModuledataGofunc120;
  for (const char* name : {".noptrdata", ".data", ".data.rel.ro"}) {
    Section d = find_section(elf, name);
    if (!d.found() || !rodata.found() || d.size < gofunc_at + 8) continue;
    for (size_t off = 0; off + gofunc_at + 8 <= d.size; off += 8) {
      if (read_u64(d.bytes + off) != pcln.addr) continue;
      if (read_u64(d.bytes + off + 8) != pcln.addr + t->funcnametab_) continue;
      uint64_t gofunc = read_u64(d.bytes + off + gofunc_at);
      if (gofunc >= rodata.addr && gofunc < rodata.addr + rodata.size) {
        t->gofunc_ = gofunc;
        t->rodata_addr_ = rodata.addr;
        t->rodata_.assign(rodata.bytes, rodata.bytes + rodata.size);
      }
      break;
    }
    if (t->gofunc_) break;
  }
  return t;
}

int64_t GoPclntab::lookup(uint64_t vaddr) const {
  auto it =
      std::upper_bound(funcs_.begin(), funcs_.end(), vaddr, [](uint64_t a, const Func& f) { return a < f.entry; });
  if (it == funcs_.begin()) return -1;
  --it;
  if (vaddr >= it->end) return -1;
  return it - funcs_.begin();
}

int64_t GoPclntab::find(std::string_view wanted) const {
  for (size_t i = 0; i < funcs_.size(); ++i)
    if (name(static_cast<int64_t>(i)) == wanted) return static_cast<int64_t>(i);
  return -1;
}

uint32_t GoPclntab::u32(size_t off) const {
  if (off + 4 > data_.size()) return 0;
  uint32_t v;
  std::memcpy(&v, data_.data() + off, 4);
  return v;
}

std::string_view GoPclntab::cstring(size_t off) const {
  if (off >= data_.size()) return {};
  const char* p = reinterpret_cast<const char*>(data_.data() + off);
  size_t max = std::min(data_.size() - off, kMaxName);
  return std::string_view(p, strnlen(p, max));
}

std::string_view GoPclntab::func_name(int32_t nameoff) const {
  if (nameoff < 0) return {};
  return cstring(funcnametab_ + static_cast<uint32_t>(nameoff));
}

std::string_view GoPclntab::name(int64_t index) const {
  return func_name(static_cast<int32_t>(u32(funcs_[index].func_off + 4)));
}

std::string_view GoPclntab::file_name(const Func& f, int32_t fileno) const {
  if (fileno < 0) return {};
  uint32_t cu = u32(f.func_off + 32);  // _func.cuOffset
  uint32_t fileoff = u32(cutab_ + 4 * (static_cast<size_t>(cu) + static_cast<uint32_t>(fileno)));
  if (fileoff == ~0u) return {};
  return cstring(filetab_ + fileoff);
}

uint32_t GoPclntab::pcdata_off(const Func& f, uint32_t index) const {
  uint32_t npcdata = u32(f.func_off + 28);
  if (index >= npcdata) return 0;
  return u32(f.func_off + func_fixed_size_ + 4 * index);
}

uint32_t GoPclntab::funcdata_off(const Func& f, uint32_t index) const {
  uint32_t npcdata = u32(f.func_off + 28);
  uint8_t nfuncdata = f.func_off + func_fixed_size_ - 1 < data_.size() ? data_[f.func_off + func_fixed_size_ - 1] : 0;
  if (index >= nfuncdata) return ~0u;
  return u32(f.func_off + func_fixed_size_ + 4 * (static_cast<size_t>(npcdata) + index));
}

int32_t GoPclntab::pc_value(const Func& f, uint32_t table_off, uint64_t vaddr) const {
  if (table_off == 0) return -1;
  size_t pos = pctab_ + table_off;
  uint64_t pc = f.entry;
  int32_t value = -1;
  const uint8_t* p = data_.data();
  for (bool first = true;; first = false) {
    uint32_t uvdelta = 0, pcdelta = 0;
    if (!read_uvarint(p, data_.size(), &pos, &uvdelta)) return -1;
    if (uvdelta == 0 && !first) return -1;
    value += static_cast<int32_t>(-(uvdelta & 1) ^ (uvdelta >> 1));
    if (!read_uvarint(p, data_.size(), &pos, &pcdelta)) return -1;
    pc += static_cast<uint64_t>(pcdelta) * min_lc_;
    if (vaddr < pc) return value;
    if (pc >= f.end) return -1;
  }
}

int32_t GoPclntab::sp_delta(uint64_t vaddr) const {
  int64_t index = lookup(vaddr);
  if (index < 0) return -1;
  const Func& f = funcs_[index];
  return pc_value(f, u32(f.func_off + 16), vaddr);  // _func.pcsp
}

std::vector<GoFrame> GoPclntab::frames(uint64_t vaddr) const {
  std::vector<GoFrame> out;
  int64_t index = lookup(vaddr);
  if (index < 0) return out;
  const Func& f = funcs_[index];
  const uint32_t pcfile = u32(f.func_off + 20), pcln = u32(f.func_off + 24);
  auto location = [&](uint64_t pc, GoFrame* frame) {
    frame->file = file_name(f, pc_value(f, pcfile, pc));
    int32_t line = pc_value(f, pcln, pc);
    frame->line = line > 0 ? static_cast<uint32_t>(line) : 0;
  };
  uint64_t pc = vaddr;
  uint32_t inltree = gofunc_ ? funcdata_off(f, kFuncdataInlTree) : ~0u;
  if (inltree != ~0u) {
    const uint32_t inl_index_table = pcdata_off(f, kPcdataInlTreeIndex);
    // inlinedCall: 1.18/1.19 {parent i16, funcID u8, pad, file i32, line i32,
    // func_ i32, parentPc i32} (20 bytes); 1.20+ {funcID u8, pad[3],
    // nameOff i32, parentPc i32, startLine i32} (16 bytes).
    const bool old = magic_ == kMagicGo118;
    const size_t size = old ? 20 : 16, name_at = old ? 12 : 4, parent_pc_at = old ? 16 : 8;
    const uint64_t tree = gofunc_ + inltree;
    for (int depth = 0; depth < kMaxInlineDepth; ++depth) {
      int32_t ix = pc_value(f, inl_index_table, pc);
      if (ix < 0) break;
      uint64_t at = tree + static_cast<uint64_t>(ix) * size;
      if (at < rodata_addr_ || at + size > rodata_addr_ + rodata_.size()) break;
      const uint8_t* call = rodata_.data() + (at - rodata_addr_);
      int32_t nameoff, parent_pc;
      std::memcpy(&nameoff, call + name_at, 4);
      std::memcpy(&parent_pc, call + parent_pc_at, 4);
      GoFrame frame;
      frame.function = func_name(nameoff);
      frame.inlined = true;
      location(pc, &frame);
      out.push_back(frame);
      uint64_t next = f.entry + static_cast<uint32_t>(parent_pc);
      if (next >= f.end || next == pc) break;
      pc = next;
    }
  }
  GoFrame outer;
  outer.function = name(index);
  location(pc, &outer);
  out.push_back(outer);
  return out;
}

}  // namespace tickprobe
