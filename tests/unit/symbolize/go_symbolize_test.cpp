// Go symbolization against ground truth: the Go fixture game server
// (tests/fixtures/go) in its normal build (.symtab, read by `go tool nm`)
// and its `-ldflags='-s -w'` build, where only .gopclntab names functions.
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/function_sites.h"
#include "symbolize/binary_image.h"
#include "symbolize/go_pclntab.h"
#include "symbolize/symbolizer.h"
#include "test_support.h"
#include "unwind/go_layout.h"

namespace tickprobe {
namespace {

const std::string kFull = std::string(TICKPROBE_BIN_DIR) + "/go_gameserver";
const std::string kStripped = std::string(TICKPROBE_BIN_DIR) + "/go_gameserver_stripped";
const std::string kSource = std::string(TICKPROBE_SOURCE_DIR) + "/tests/fixtures/go/gameserver/main.go";

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  return out;
}

struct NmFunc {
  uint64_t addr;
  uint64_t size;
  std::string name;
};

// Text symbols of the unstripped build as `go tool nm -size` lists them.
std::vector<NmFunc> go_nm(const std::string& path) {
  std::string out = run_capture("HOME=/tmp go tool nm -size -sort address " + path + " 2>/dev/null");
  std::vector<NmFunc> funcs;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string addr, size, type, name;
    if (!(fields >> addr >> size >> type) || (type != "T" && type != "t")) continue;
    std::getline(fields, name);
    name.erase(0, name.find_first_not_of(' '));
    funcs.push_back(NmFunc{std::stoull(addr, nullptr, 16), std::stoull(size), name});
  }
  return funcs;
}

struct ElfHandle {
  int fd = -1;
  Elf* elf = nullptr;
  explicit ElfHandle(const std::string& path) {
    elf_version(EV_CURRENT);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  }
  ~ElfHandle() {
    if (elf) elf_end(elf);
    if (fd >= 0) ::close(fd);
  }
};

// The linker writes the pclntab's names with the contents of brackets cut
// to "..." (type..eq.[5]pkg.T -> type..eq.[...]pkg.T, generic shapes), and
// that shortened name is what runtime.FuncForPC and runtime/pprof show.
// Local types keep their middle dot (writerOnly·1) there; .symtab, which
// `go tool nm` reads, spells it with a dot.
std::string pclntab_style(const std::string& name) {
  std::string out;
  int depth = 0;
  for (char c : name) {
    if (c == '[') {
      if (depth++ == 0) out += "[...";
      continue;
    }
    if (c == ']' && depth > 0) {
      if (--depth == 0) out += ']';
      continue;
    }
    if (depth == 0) out += c;
  }
  return out;
}

int line_of(const std::string& needle) {
  std::ifstream in(kSource);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find(needle) != std::string::npos) return n;
  return -1;
}

std::shared_ptr<BinaryImage> open_image(const std::string& path) {
  std::string error;
  auto image = BinaryImage::open_file(path, DebugSearch{}, &error);
  EXPECT_TRUE(image) << error;
  return image;
}

TEST(GoPclntab, DetectsGoAndReadsTheVersion) {
  ElfHandle full(kFull), stripped(kStripped);
  ASSERT_TRUE(full.elf && stripped.elf);
  EXPECT_TRUE(is_go_binary(full.elf));
  EXPECT_TRUE(is_go_binary(stripped.elf));
  std::string expected = run_capture("HOME=/tmp go env GOVERSION");
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();
  EXPECT_EQ(read_go_version(stripped.elf), expected);
  std::string error;
  auto table = GoPclntab::parse(stripped.elf, &error);
  ASSERT_TRUE(table) << error;
  EXPECT_EQ(table->go_version(), expected);
  EXPECT_GT(table->function_count(), 1000u);
  EXPECT_TRUE(table->has_inline_data());

  ElfHandle libc("/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_FALSE(is_go_binary(libc.elf));
  EXPECT_FALSE(GoPclntab::parse(libc.elf, &error));
  EXPECT_NE(error.find(".gopclntab"), std::string::npos) << error;
}

// Every text symbol `go tool nm` lists for the normal build names the same
// function in the stripped build, at its entry, middle and last byte.
TEST(GoPclntab, StrippedBuildNamesEveryFunctionLikeGoToolNm) {
  std::vector<NmFunc> funcs = go_nm(kFull);
  ASSERT_GT(funcs.size(), 1000u) << "go tool nm listed too few functions";
  auto image = open_image(kStripped);
  ASSERT_TRUE(image);
  ASSERT_FALSE(image->has_symtab());
  ASSERT_TRUE(image->go_pclntab()) << image->go_error();
  // Both builds come from the same source and flags but -s -w: the text is
  // laid out identically (checked on a known function first).
  auto burn = image->find("main.burnCPU");
  ASSERT_TRUE(burn);
  bool found = false;
  for (const NmFunc& f : funcs)
    if (f.name == "main.burnCPU") {
      EXPECT_EQ(f.addr, *burn);
      found = true;
    }
  ASSERT_TRUE(found);

  size_t checked = 0, wrong = 0;
  std::string examples;
  for (size_t i = 0; i < funcs.size(); ++i) {
    const NmFunc& f = funcs[i];
    if (f.size == 0) continue;  // markers (runtime.etext), no code
    // Aliases at one address (nm lists both): either name is right.
    if ((i + 1 < funcs.size() && funcs[i + 1].addr == f.addr) || (i > 0 && funcs[i - 1].addr == f.addr)) continue;
    std::vector<uint64_t> addrs = {f.addr};
    if (f.size > 1) addrs.insert(addrs.end(), {f.addr + f.size / 2, f.addr + f.size - 1});
    for (uint64_t a : addrs) {
      int64_t sym = image->lookup(a);
      std::string got = sym >= 0 ? image->name(sym, true) : "";
      for (size_t dot; (dot = got.find("\u00b7")) != std::string::npos;) got.replace(dot, 2, ".");
      ++checked;
      if (got != pclntab_style(go_display_name(f.name))) {
        if (++wrong <= 10) examples += f.name + " @" + std::to_string(a) + " -> '" + got + "'\n";
      }
    }
  }
  std::printf("checked %zu addresses of %zu functions, %zu wrong\n", checked, funcs.size(), wrong);
  EXPECT_EQ(wrong, 0u) << examples;
}

// File:line from the pclntab; inlined frames expand (main.port is inlined
// into main.main by the compiler: it is a one-line leaf).
TEST(GoPclntab, LinesAndInlinedFrames) {
  auto image = open_image(kStripped);
  ASSERT_TRUE(image && image->go_pclntab());
  const GoPclntab& table = *image->go_pclntab();
  auto burn = image->find("main.burnCPU");
  ASSERT_TRUE(burn);
  int64_t fn = table.lookup(*burn + 8);
  ASSERT_GE(fn, 0);
  auto frames = table.frames(*burn + 8);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().function, "main.burnCPU");
  EXPECT_NE(frames.back().file.find("gameserver/main.go"), std::string::npos) << frames.back().file;
  int first = line_of("func burnCPU()");
  EXPECT_GE(static_cast<int>(frames.back().line), first);
  EXPECT_LT(static_cast<int>(frames.back().line), first + 15);

  auto main_main = image->find("main.main");
  ASSERT_TRUE(main_main);
  int64_t m = table.lookup(*main_main);
  const int port_line = line_of("func port(l net.Listener)");
  bool saw_inlined_port = false;
  for (uint64_t pc = table.entry(m); pc < table.end(m); ++pc) {
    auto f = table.frames(pc);
    ASSERT_FALSE(f.empty());
    EXPECT_EQ(f.back().function, "main.main");
    EXPECT_FALSE(f.back().inlined);
    for (size_t i = 0; i + 1 < f.size(); ++i) {
      EXPECT_TRUE(f[i].inlined);
      if (f[i].function == "main.port") {
        saw_inlined_port = true;
        EXPECT_EQ(static_cast<int>(f[i].line), port_line);
        // The caller's line is a call of port() in main.main.
        EXPECT_GT(static_cast<int>(f[i + 1].line), line_of("func main()"));
      }
    }
  }
  EXPECT_TRUE(saw_inlined_port);
}

// Through the Symbolizer on a live stripped process: names, ".abi0"-free
// names, file:line and inlined frames.
TEST(GoSymbolizer, LiveStrippedProcess) {
  using namespace tickprobe::test;
  Subprocess server({kStripped, "-duration", "30s"});
  ASSERT_TRUE(server.started());
  for (int i = 0; i < 100 && server.stdout_text().find("ready") == std::string::npos; ++i) usleep(50000);
  ASSERT_NE(server.stdout_text().find("ready"), std::string::npos);
  auto image = open_image(kStripped);
  ASSERT_TRUE(image);
  auto burn = image->find("main.burnCPU");
  auto memmove = image->find("runtime.memmove");  // an ABI0 (assembly) function
  ASSERT_TRUE(burn && memmove);

  SymbolizerOptions opts;
  opts.line_info = true;
  Symbolizer sym(opts);
  // Non-PIE: runtime address == ELF vaddr.
  auto frames = sym.symbolize_user(static_cast<uint32_t>(server.pid()), {*burn + 4, *memmove + 1});
  ASSERT_GE(frames.size(), 2u);
  EXPECT_EQ(frames.front().function, "main.burnCPU");
  EXPECT_NE(frames.front().file.find("main.go"), std::string::npos);
  EXPECT_GT(frames.front().line, 0u);
  EXPECT_EQ(frames.back().function, "runtime.memmove");

  Symbolizer plain;
  auto full = plain.symbolize_user(static_cast<uint32_t>(server.pid()), {*memmove + 1});
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(full[0].function, "runtime.memmove");
}

// The runtime layout the BPF unwinder hops g0 -> curg with: DWARF of the
// normal build is the ground truth for the built-in Go 1.19 table used for
// the stripped build.
TEST(GoRuntimeLayout, DwarfAndTableAgree) {
  auto dwarf = read_go_layout_from_dwarf(kFull);
  ASSERT_TRUE(dwarf) << dwarf.error().message;
  auto table = read_go_runtime_layout(kStripped);
  ASSERT_TRUE(table) << table.error().message;
  const GoRuntimeLayout& d = *dwarf;
  const GoRuntimeLayout& t = *table;
  EXPECT_EQ(d.source, "dwarf");
  EXPECT_EQ(t.source, "table");
  EXPECT_EQ(d.version, t.version);
  EXPECT_EQ(d.g_stack_lo, t.g_stack_lo);
  EXPECT_EQ(d.g_stack_hi, t.g_stack_hi);
  EXPECT_EQ(d.g_m, t.g_m);
  EXPECT_EQ(d.g_sched, t.g_sched);
  EXPECT_EQ(d.m_g0, t.m_g0);
  EXPECT_EQ(d.m_curg, t.m_curg);
  EXPECT_EQ(d.m_gsignal, t.m_gsignal);
  EXPECT_EQ(d.gobuf_sp, t.gobuf_sp);
  EXPECT_EQ(d.gobuf_pc, t.gobuf_pc);
  EXPECT_EQ(d.gobuf_bp, t.gobuf_bp);
  // The goroutine reader's runtime.g fields: the 1.19 row is DWARF's.
  EXPECT_EQ(d.g_syscallsp, t.g_syscallsp);
  EXPECT_EQ(d.g_syscallpc, t.g_syscallpc);
  EXPECT_EQ(d.g_atomicstatus, t.g_atomicstatus);
  EXPECT_EQ(d.g_goid, t.g_goid);
  EXPECT_EQ(d.g_waitsince, t.g_waitsince);
  EXPECT_EQ(d.g_waitreason, t.g_waitreason);
  EXPECT_EQ(d.g_gopc, t.g_gopc);
  EXPECT_EQ(d.g_startpc, t.g_startpc);
  EXPECT_TRUE(d.verified);
  EXPECT_TRUE(t.verified);  // the 1.19 row is checked by this very test
  // Facts measured with DWARF on Go 1.19 (issue 10).
  EXPECT_EQ(d.g_goid, 152);
  EXPECT_EQ(d.g_atomicstatus, 144);
  EXPECT_EQ(d.g_waitreason, 176);
  EXPECT_EQ(d.g_gopc, 296);
  EXPECT_EQ(d.g_startpc, 312);
  EXPECT_EQ(d.tls_g, -8);
  EXPECT_EQ(t.tls_g, -8);
  // Facts measured with DWARF on Go 1.19 (issue 10): g.sched +56, m.curg +192.
  EXPECT_EQ(d.g_sched, 56);
  EXPECT_EQ(d.m_curg, 192);
  EXPECT_EQ(d.gobuf_bp, 48);
  ASSERT_EQ(t.switch_functions.size(), 4u);
  EXPECT_EQ(t.switch_functions[0].name, "runtime.systemstack");
  EXPECT_TRUE(t.switch_functions[0].frameless);
  EXPECT_EQ(t.switch_functions[3].name, "runtime.mcall");
  EXPECT_FALSE(t.switch_functions[3].frameless);
  // Same text layout in both builds: same ranges.
  for (size_t i = 0; i < t.switch_functions.size(); ++i) {
    EXPECT_EQ(d.switch_functions[i].start, t.switch_functions[i].start);
    EXPECT_LT(t.switch_functions[i].start, t.switch_functions[i].end);
  }
}

TEST(GoRuntimeLayout, UnknownVersionIsRefused) {
  EXPECT_TRUE(go_layout_for_version("go1.19.8"));
  EXPECT_TRUE(go_layout_for_version("go1.19"));
  // The table covers go1.17-go1.23 (only 1.19 verified here); outside it: refused.
  for (const char* v : {"go1.17.13", "go1.18", "go1.20.3", "go1.21.0", "go1.22.5", "go1.23.1"}) {
    auto row = go_layout_for_version(v);
    ASSERT_TRUE(row) << v;
    EXPECT_EQ(row->version, v);
    EXPECT_FALSE(row->verified) << v;
    EXPECT_EQ(row->g_sched, 56) << v;
  }
  EXPECT_EQ(go_layout_for_version("go1.23.1")->g_goid, 160);  // syscallbp (1.23) shifts it
  EXPECT_FALSE(go_layout_for_version("go1.16.15"));
  auto unknown = go_layout_for_version("go1.24.1");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("go1.24.1"), std::string::npos);
  EXPECT_FALSE(unknown.error().hint.empty());
  EXPECT_FALSE(go_layout_for_version(""));
  EXPECT_FALSE(go_layout_for_version("go1.1"));
  auto not_go = read_go_runtime_layout("/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_FALSE(not_go);
  EXPECT_FALSE(is_go_executable("/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_TRUE(is_go_executable(kStripped));
}

// A stripped binary of a Go version outside the table (the version in its
// .go.buildinfo rewritten to a fake one) is refused with a hint, never read
// with guessed offsets.
TEST(GoRuntimeLayout, StrippedBinaryOfUnknownVersionIsRefused) {
  std::string bytes = test::read_file(kStripped);
  auto at = bytes.find("go1.19.");
  ASSERT_NE(at, std::string::npos);
  // The buildinfo version string (a uvarint length byte before it).
  auto info = bytes.find("\xff Go buildinf:");
  if (info != std::string::npos) {
    auto in_info = bytes.find("go1.19.", info);
    if (in_info != std::string::npos) at = in_info;
  }
  bytes.replace(at, 7, "go9.99.");
  const std::string fake = std::string(TICKPROBE_BIN_DIR) + "/go_gameserver_fake_version";
  {
    std::ofstream out(fake, std::ios::binary);
    out << bytes;
  }
  auto r = read_go_runtime_layout(fake);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("go9.99."), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().hint.find("DWARF"), std::string::npos) << r.error().hint;
  std::remove(fake.c_str());
}

// Function probes go on RET instructions and call sites found with capstone.
TEST(GoFunctionSites, RetsAndCallSitesOfRuntimeFunctions) {
  auto bytes_at = [](uint64_t off, size_t n) {
    std::ifstream f(kStripped, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(off));
    std::string b(n, '\0');
    f.read(b.data(), static_cast<std::streamsize>(n));
    return b;
  };
  for (const char* fn : {"runtime.newproc1", "runtime.startTheWorldWithSema", "main.leakyWorker"}) {
    auto sites = find_function_sites(kStripped, fn);
    ASSERT_TRUE(sites) << sites.error().message;
    EXPECT_GT(sites->size, 0u);
    ASSERT_FALSE(sites->ret_offsets.empty()) << fn;
    for (uint64_t off : sites->ret_offsets) {
      EXPECT_GT(off, sites->entry_offset);
      EXPECT_LT(off, sites->entry_offset + sites->size);
      EXPECT_EQ(static_cast<unsigned char>(bytes_at(off, 1)[0]), 0xc3) << fn << " +" << off - sites->entry_offset;
    }
    // Go's prologue: the stack-bound check against g (R14) comes first.
    EXPECT_EQ(bytes_at(sites->entry_offset, 3), std::string("\x49\x3b\x66", 3)) << fn;
  }
  auto start = find_function_sites(kStripped, "runtime.startTheWorldWithSema", "runtime.nanotime1");
  ASSERT_TRUE(start);
  ASSERT_EQ(start->call_offsets.size(), 1u);  // startTime := nanotime()
  EXPECT_EQ(static_cast<unsigned char>(bytes_at(start->call_offsets[0], 1)[0]), 0xe8);
  EXPECT_FALSE(find_function_sites(kStripped, "main.noSuchFunction"));
  EXPECT_FALSE(find_function_sites(kStripped, "runtime.newproc1", "main.noSuchFunction"));
  // Non-Go binaries: .dynsym extents.
  auto libc = find_function_sites("/lib/x86_64-linux-gnu/libc.so.6", "malloc");
  ASSERT_TRUE(libc) << libc.error().message;
  EXPECT_FALSE(libc->ret_offsets.empty());
  // capstone is loaded only while it disassembles (runtime/x86_disassembler.h):
  // none of it stays mapped once the sites are found.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) EXPECT_EQ(line.find("libcapstone"), std::string::npos) << line;
}

}  // namespace
}  // namespace tickprobe
