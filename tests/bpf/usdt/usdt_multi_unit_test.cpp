// The USDT note reader and the x86-64 argument parser of core/usdt_multi.h.
#include <gtest/gtest.h>
#include <sys/user.h>

#include <cstddef>
#include <cstdio>
#include <string>

#include "core/usdt_multi.h"

using namespace tickprobe;

namespace {

struct ArgCase {
  const char* text;
  UsdtArgType type;
  int16_t reg_off;
  uint64_t val_off;
  bool is_signed;
  int8_t bitshift;
};

TEST(UsdtArgs, ParsesEveryX86LocationKindAndSize) {
  const ArgCase cases[] = {
      {"-4@%edi", kUsdtArgReg, offsetof(user_regs_struct, rdi), 0, true, 32},
      {"8@%rax", kUsdtArgReg, offsetof(user_regs_struct, rax), 0, false, 0},
      {"-1@%sil", kUsdtArgReg, offsetof(user_regs_struct, rsi), 0, true, 56},
      {"2@%r9w", kUsdtArgReg, offsetof(user_regs_struct, r9), 0, false, 48},
      {"8@-8(%rbp)", kUsdtArgRegDeref, offsetof(user_regs_struct, rbp), static_cast<uint64_t>(-8), false, 0},
      {"-2@12(%rsp)", kUsdtArgRegDeref, offsetof(user_regs_struct, rsp), 12, true, 48},
      {"4@(%r12)", kUsdtArgRegDeref, offsetof(user_regs_struct, r12), 0, false, 32},
      {"-4@$-9", kUsdtArgConst, 0, static_cast<uint64_t>(-9), true, 32},
      {"8@$5000000000", kUsdtArgConst, 0, 5000000000ull, false, 0},
  };
  for (const auto& c : cases) {
    auto a = parse_usdt_arg(c.text);
    ASSERT_TRUE(a) << c.text << ": " << a.error().message;
    EXPECT_EQ(a->arg_type, c.type) << c.text;
    EXPECT_EQ(a->reg_off, c.reg_off) << c.text;
    EXPECT_EQ(a->val_off, c.val_off) << c.text;
    EXPECT_EQ(a->arg_signed, c.is_signed) << c.text;
    EXPECT_EQ(a->arg_bitshift, c.bitshift) << c.text;
  }
}

TEST(UsdtArgs, RejectsWhatLibbpfCannotReadWithAReason) {
  for (const char* bad : {"%edi", "3@%edi", "4@%xmm0", "8@-8(%rbp,%rax,8)", "8@sym(%rip)", "4@$x", "4@", "16@%rax"}) {
    auto a = parse_usdt_arg(bad);
    EXPECT_FALSE(a) << bad;
    if (!a) {
      EXPECT_NE(a.error().message.find(bad), std::string::npos) << a.error().message;
    }
  }
}

TEST(UsdtArgs, ASiteStringBecomesOneSpecWithItsCookie) {
  auto s = parse_usdt_args("-4@%edi 8@-8(%rbp)  -1@$3", 77);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->arg_cnt, 3);
  EXPECT_EQ(s->usdt_cookie, 77u);
  EXPECT_EQ(s->args[2].arg_type, kUsdtArgConst);
  auto empty = parse_usdt_args("", 0);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->arg_cnt, 0);
  EXPECT_FALSE(parse_usdt_args("8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax 8@%rax", 0));
}

// Ground truth: readelf -n's view of the fixture's notes.
TEST(UsdtSites, FixtureNotesMatchReadelf) {
  auto sites = read_usdt_sites(USDT_FIXTURE);
  ASSERT_TRUE(sites) << sites.error().message;
  std::string out;
  FILE* p = popen("readelf -n '" USDT_FIXTURE "'", "r");
  ASSERT_TRUE(p);
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  ASSERT_EQ(sites->size(), 4u);
  bool guarded = false;
  for (const auto& s : *sites) {
    EXPECT_EQ(s.provider, "fixture");
    EXPECT_NE(out.find("Name: " + s.name), std::string::npos) << s.name;
    EXPECT_NE(out.find("Arguments: " + s.args), std::string::npos) << s.name << ": " << s.args;
    EXPECT_GT(s.file_offset, 0u);
    if (s.name == "guarded") {
      guarded = true;
      EXPECT_GT(s.semaphore_offset, 0u);
      ASSERT_TRUE(parse_usdt_args(s.args, 0));
    } else {
      EXPECT_EQ(s.semaphore_offset, 0u) << s.name;
    }
  }
  EXPECT_TRUE(guarded);
}

TEST(UsdtSites, AFileThatIsNoElfIsAnError) {
  EXPECT_FALSE(read_usdt_sites("/proc/self/status"));
  EXPECT_FALSE(read_usdt_sites("/nonexistent/file"));
}

}  // namespace
