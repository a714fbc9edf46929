// The uprobe site chooser (core/uprobe_site.h): the kernel's cost classes on
// instruction bytes, the entry-block walk on made-up prologues (argument
// moves, clobbers, branches into the block, stack moves under a return
// probe), and the sites it picks in the machine's real allocators (glibc,
// jemalloc, tcmalloc, mimalloc; a missing one is skipped), checked against
// an independent decode of the bytes before the site.
#include "core/uprobe_site.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <capstone/capstone.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/include/uprobe_args.h"
#include "symbolize/elf_info.h"
#include "symbolize/link_order.h"

namespace tickprobe {
namespace {

using Bytes = std::vector<uint8_t>;

UprobeCost cost(const Bytes& b, uint64_t vaddr = 0x1000) {
  return uprobe_cost(b.data(), b.size(), vaddr);
}

TEST(UprobeCost, KernelClasses) {
  EXPECT_EQ(cost({0x53}), UprobeCost::kEmulated);                            // push %rbx
  EXPECT_EQ(cost({0x41, 0x54}), UprobeCost::kEmulated);                      // push %r12
  EXPECT_EQ(cost({0x66, 0x50}), UprobeCost::kSingleStep);                    // pushw %ax
  EXPECT_EQ(cost({0x74, 0x05}), UprobeCost::kEmulated);                      // je
  EXPECT_EQ(cost({0x0f, 0x87, 1, 0, 0, 0}), UprobeCost::kEmulated);          // ja rel32
  EXPECT_EQ(cost({0x66, 0x0f, 0x84, 1, 0, 0, 0}), UprobeCost::kSingleStep);  // 0x66 branch: refused by the kernel
  EXPECT_EQ(cost({0xe8, 0, 0, 0, 0}), UprobeCost::kEmulated);                // call
  EXPECT_EQ(cost({0xe9, 0, 0, 0, 0}), UprobeCost::kEmulated);                // jmp
  EXPECT_EQ(cost({0xf2, 0xe9, 0, 0, 0, 0}), UprobeCost::kEmulated);          // bnd jmp
  EXPECT_EQ(cost({0x90}), UprobeCost::kEmulated);
  EXPECT_EQ(cost({0xf3, 0x90}), UprobeCost::kEmulated);                         // pause: "prefix* + nop"
  EXPECT_EQ(cost({0x41, 0x90}), UprobeCost::kSingleStep);                       // xchg %eax,%r8d
  EXPECT_EQ(cost({0x66, 0x0f, 0x1f, 0x44, 0, 0}), UprobeCost::kEmulated);       // x86_nops[6]
  EXPECT_EQ(cost({0x0f, 0x1f, 0x44, 0, 0}), UprobeCost::kOptimized);            // nop5
  EXPECT_EQ(cost({0x0f, 0x1f, 0x44, 0, 0}, 0x1ffd), UprobeCost::kEmulated);     // crosses a page: not optimized
  EXPECT_EQ(cost({0x48, 0x81, 0xff, 0, 0x10, 0, 0}), UprobeCost::kSingleStep);  // cmp $0x1000,%rdi
  EXPECT_EQ(cost({0x48, 0x89, 0xf8}), UprobeCost::kSingleStep);                 // mov %rdi,%rax
  EXPECT_EQ(cost({0x48, 0x85, 0xff}), UprobeCost::kSingleStep);                 // test %rdi,%rdi
  EXPECT_EQ(cost({0xc3}), UprobeCost::kSingleStep);                             // ret
  EXPECT_EQ(cost({0xf3, 0x0f, 0x1e, 0xfa}), UprobeCost::kSingleStep);           // endbr64
}

UprobeSite choose(const Bytes& code, uint32_t args, bool ret, const std::vector<uint64_t>& targets = {}) {
  UprobeSiteRequest req;
  req.args = args;
  req.return_probe = ret;
  std::vector<uint64_t> abs;
  for (uint64_t t : targets) abs.push_back(0x1000 + t);
  return choose_uprobe_site(code.data(), code.size(), 0x1000, req, abs);
}

// jemalloc 5.3's malloc: cmp $0x1000,%rdi; ja slow; lea ...
const Bytes kJemallocMalloc = {0x48, 0x81, 0xff, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x87, 0x93,
                               0x00, 0x00, 0x00, 0x48, 0x8d, 0x15, 0x5c, 0x7f, 0x2c, 0x00};

TEST(UprobeSite, MovesPastASingleSteppedCompareToTheBranch) {
  UprobeSite s = choose(kJemallocMalloc, 1, true);
  EXPECT_EQ(s.delta, 7u);
  EXPECT_EQ(s.cost, UprobeCost::kEmulated);
  EXPECT_EQ(s.entry_cost, UprobeCost::kSingleStep);
  EXPECT_EQ(s.arg_reg[0], 7);  // still %rdi
  EXPECT_EQ(s.cookie_bits(), 0u);
  EXPECT_EQ(s.insn.rfind("ja", 0), 0u) << s.insn;
}

TEST(UprobeSite, ABranchIntoTheBlockKeepsTheEntry) {
  UprobeSite s = choose(kJemallocMalloc, 1, true, {7});
  EXPECT_EQ(s.delta, 0u) << s.limited_by;
  EXPECT_NE(s.limited_by.find("branch lands"), std::string::npos) << s.limited_by;
  // A target past the site does not matter.
  EXPECT_EQ(choose(kJemallocMalloc, 1, true, {13}).delta, 7u);
}

TEST(UprobeSite, FollowsAnArgumentMovedToAnotherRegister) {
  // mimalloc 2.0's malloc: mov 0xb449(%rip),%rax; mov %rdi,%rsi;
  // mov %fs:(%rax),%rdi; cmp $0x400,%rsi; ja
  const Bytes code = {0x48, 0x8b, 0x05, 0x49, 0xb4, 0x00, 0x00, 0x48, 0x89, 0xfe, 0x64, 0x48,
                      0x8b, 0x38, 0x48, 0x81, 0xfe, 0x00, 0x04, 0x00, 0x00, 0x77, 0x29};
  UprobeSite s = choose(code, 1, true);
  EXPECT_EQ(s.delta, 21u);
  EXPECT_EQ(s.cost, UprobeCost::kEmulated);
  EXPECT_EQ(s.arg_reg[0], 6);  // %rsi
  EXPECT_EQ(s.cookie_bits(), UPROBE_ARG_ENCODE(0, 6));
  EXPECT_EQ(UPROBE_ARG_FIELD(s.cookie_bits(), 0), 7u);
  EXPECT_EQ(UPROBE_ARG_FIELD(s.cookie_bits(), 1), 0u);
}

TEST(UprobeSite, StopsWhereAnArgumentIsOverwritten) {
  // mov %rdi,%rax; xor %eax,%eax; jne: the only copy of rdi... is rdi itself,
  // which survives; with `xor %edi,%edi` instead it does not.
  const Bytes survives = {0x48, 0x89, 0xf8, 0x31, 0xc0, 0x75, 0x02};
  EXPECT_EQ(choose(survives, 1, false).delta, 5u);
  const Bytes clobbered = {0x48, 0x89, 0xf8, 0x31, 0xff, 0x31, 0xc0, 0x75, 0x02};
  UprobeSite s = choose(clobbered, 1, false);
  EXPECT_EQ(s.delta, 0u);
  EXPECT_NE(s.limited_by.find("overwritten"), std::string::npos) << s.limited_by;
  // ... unless the copy in %rax survives: then the cookie names %rax.
  const Bytes copied = {0x48, 0x89, 0xf8, 0x31, 0xff, 0x75, 0x02};
  s = choose(copied, 1, false);
  EXPECT_EQ(s.delta, 5u);
  EXPECT_EQ(s.arg_reg[0], 0);
  // A 32-bit move does not carry the 64-bit value.
  const Bytes narrowed = {0x89, 0xf8, 0x31, 0xff, 0x75, 0x02};
  EXPECT_EQ(choose(narrowed, 1, false).delta, 0u);
  // An argument the program does not read may go.
  EXPECT_EQ(choose(clobbered, 0, false).delta, 7u);
}

TEST(UprobeSite, AReturnProbeNeedsTheReturnAddressAtTheStackPointer) {
  // test %rdi,%rdi; sub $8,%rsp; jne: fine for an entry probe (CFI unwinds
  // from anywhere), not under a uretprobe.
  const Bytes code = {0x48, 0x85, 0xff, 0x48, 0x83, 0xec, 0x08, 0x75, 0x02};
  EXPECT_EQ(choose(code, 1, false).delta, 7u);
  UprobeSite s = choose(code, 1, true);
  EXPECT_EQ(s.delta, 0u);
  EXPECT_NE(s.limited_by.find("stack pointer"), std::string::npos) << s.limited_by;
  // glibc's free: test %rdi,%rdi; je; push %rbp: the je, reached by free(NULL) too.
  const Bytes free_code = {0x48, 0x85, 0xff, 0x0f, 0x84, 0xbf, 0x00, 0x00, 0x00, 0x55};
  s = choose(free_code, 1, false);
  EXPECT_EQ(s.delta, 3u);
  EXPECT_EQ(s.cost, UprobeCost::kEmulated);
  // A store through %rsp (the return address's slot) also ends it.
  const Bytes store = {0x48, 0x85, 0xff, 0x48, 0x89, 0x3c, 0x24, 0x75, 0x02};  // mov %rdi,(%rsp)
  EXPECT_EQ(choose(store, 1, true).delta, 0u);
}

TEST(UprobeSite, AnEmulatedEntryStays) {
  // push %r12 first (glibc's malloc): nothing later is cheaper.
  const Bytes code = {0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb, 0x75, 0x02};
  UprobeSite s = choose(code, 1, true);
  EXPECT_EQ(s.delta, 0u);
  EXPECT_EQ(s.cost, UprobeCost::kEmulated);
}

TEST(UprobeSite, ImplicitWritesCount) {
  // mov %rdi,%rax; mul %rsi (writes rdx:rax); jo: arg 2 (rdx) is gone, args 0-1 are not.
  const Bytes code = {0x48, 0x89, 0xf8, 0x48, 0xf7, 0xe6, 0x70, 0x02};
  EXPECT_EQ(choose(code, 2, false).delta, 6u);
  EXPECT_EQ(choose(code, 3, false).delta, 0u);
}

// ------------------------------------------------------- real allocators

struct Lib {
  const char* path;
  bool required;  // glibc is always there
};

std::vector<uint8_t> read_code(const std::string& path, uint64_t vaddr, size_t n) {
  std::vector<uint8_t> out;
  auto info = read_elf_load_info(path);
  if (!info) return out;
  auto off = vaddr_to_file_offset(*info, vaddr);
  if (!off) return out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return out;
  out.resize(n);
  if (std::fseek(f, static_cast<long>(*off), SEEK_SET) != 0 || std::fread(out.data(), 1, n, f) != n) out.clear();
  std::fclose(f);
  return out;
}

// Independent check of a chosen site: decoding from the entry reaches the
// site on an instruction boundary, with no control transfer before it.
void expect_straight_line_to(const std::string& where, const std::vector<uint8_t>& code, uint64_t vaddr,
                             uint64_t delta) {
  csh cs;
  ASSERT_EQ(cs_open(CS_ARCH_X86, CS_MODE_64, &cs), CS_ERR_OK);
  cs_insn* insn = nullptr;
  size_t n = cs_disasm(cs, code.data(), code.size(), vaddr, 0, &insn);
  uint64_t at = vaddr;
  bool reached = delta == 0;
  for (size_t i = 0; i < n && !reached; i++) {
    std::string m = insn[i].mnemonic;
    EXPECT_TRUE(m[0] != 'j' && m.rfind("call", 0) != 0 && m.rfind("ret", 0) != 0)
        << where << ": " << m << " before the site";
    at += insn[i].size;
    reached = at == vaddr + delta;
  }
  EXPECT_TRUE(reached) << where << ": +" << delta << " is no instruction boundary";
  if (insn) cs_free(insn, n);
  cs_close(&cs);
}

TEST(UprobeSite, RealAllocatorsGetCheapSites) {
  const Lib libs[] = {{"/lib/x86_64-linux-gnu/libc.so.6", true},
                      {"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", false},
                      {"/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4", false},
                      {"/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", false}};
  struct Fn {
    const char* name;
    uint32_t args;
    bool ret;
  };
  const Fn fns[] = {{"malloc", 1, true},  {"free", 1, false},          {"calloc", 2, true},
                    {"realloc", 2, true}, {"posix_memalign", 3, true}, {"aligned_alloc", 2, true}};
  int checked = 0, inner_jumps = 0;
  for (const Lib& lib : libs) {
    if (access(lib.path, R_OK) != 0) {
      ASSERT_FALSE(lib.required) << lib.path;
      std::printf("skip %s (not installed)\n", lib.path);
      continue;
    }
    auto chooser = UprobeSiteChooser::open(lib.path);
    ASSERT_TRUE(chooser) << chooser.error().message;
    std::vector<std::string> names;
    for (const Fn& f : fns) names.push_back(f.name);
    auto defs = find_defined_functions(lib.path, names, false);
    ASSERT_TRUE(defs.count("malloc") && defs.count("free")) << lib.path;
    for (const Fn& f : fns) {
      if (!defs.count(f.name)) continue;
      uint64_t vaddr = defs.at(f.name);
      UprobeSite s = (*chooser)->choose(vaddr, {f.args, f.ret});
      std::printf("%-44s %-15s +%-3llu %-15s (entry %s) %-24s arg0 r%d; %s\n", lib.path, f.name,
                  static_cast<unsigned long long>(s.delta), uprobe_cost_name(s.cost), uprobe_cost_name(s.entry_cost),
                  s.insn.c_str(), s.arg_reg[0], s.limited_by.c_str());
      std::string where = std::string(lib.path) + " " + f.name;
      EXPECT_LE(s.cost, s.entry_cost) << where;
      // The object-wide scan agrees that nothing lands inside the prefix.
      for (uint64_t t : (*chooser)->branch_targets_into(vaddr, s.delta))
        ADD_FAILURE() << where << ": branch target " << std::hex << t << " inside the skipped prefix";
      // No false negatives: every direct jump found by decoding the
      // function's first 160 bytes that lands inside them is in the index.
      {
        std::vector<uint8_t> head = read_code(lib.path, vaddr, 160);
        auto found = (*chooser)->branch_targets_into(vaddr, 160);
        csh cs;
        ASSERT_EQ(cs_open(CS_ARCH_X86, CS_MODE_64, &cs), CS_ERR_OK);
        cs_insn* insn = nullptr;
        size_t n = cs_disasm(cs, head.data(), head.size(), vaddr, 0, &insn);
        for (size_t i = 0; i < n; i++) {
          if (insn[i].mnemonic[0] != 'j' || std::strncmp(insn[i].op_str, "0x", 2) != 0) continue;
          uint64_t t = std::stoull(insn[i].op_str, nullptr, 16);
          if (t <= vaddr || t > vaddr + 160) continue;
          inner_jumps++;
          EXPECT_TRUE(std::binary_search(found.begin(), found.end(), t))
              << where << ": the jump at " << std::hex << insn[i].address << " to " << t << " was not found";
        }
        if (insn) cs_free(insn, n);
        cs_close(&cs);
      }
      // Re-decode the prefix independently.
      expect_straight_line_to(where, read_code(lib.path, vaddr, s.delta + 16), vaddr, s.delta);
      checked++;
    }
    // The hot pair is never single-stepped in these builds.
    for (const char* hot : {"malloc", "free"}) {
      UprobeSite s = (*chooser)->choose(defs.at(hot), {1, std::string(hot) == "malloc"});
      EXPECT_NE(s.cost, UprobeCost::kSingleStep) << lib.path << " " << hot << ": " << s.limited_by;
    }
  }
  EXPECT_GE(checked, 4);
  EXPECT_GT(inner_jumps, 0);  // the index check above did compare something
}

}  // namespace
}  // namespace tickprobe
