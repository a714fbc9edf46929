#include "exporters/folded.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "golden.h"
#include "sample_profile.h"

namespace tickprobe {
namespace {

using testing::make_sample_profile;

TEST(Folded, MergesSortsAndDropsZeroStacks) {
  FoldedOptions opts;
  opts.value_index = 0;  // samples
  auto text = render_folded(make_sample_profile(), opts);
  ASSERT_TRUE(text) << text.error().message;
  // Ground truth from sample_profile.h; byte-sorted like `LC_ALL=C sort`.
  EXPECT_EQ(*text,
            "main;net_flush;send;entry_SYSCALL_64;do_syscall_64;__x64_sys_sendto;tcp_sendmsg 3\n"
            "main;plugin_tick;[unknown] in libgameplugin.so+0x1234 1\n"
            "main;tick_loop;Foo<Bar>::operator()(char const*) & \"x:y\" 1\n"
            "main;tick_loop;log_frame;operator<<(std::ostream&, Vec3 const&) 2\n"
            "main;tick_loop;tick_loop;tick_physics 2\n"
            "main;tick_loop;tick_physics 4\n"
            "main;tick_loop;tick_physics;std::vector<int>::push_back 5\n");
}

TEST(Folded, DefaultValueIsProfileDefault) {
  auto text = render_folded(make_sample_profile());
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("main;tick_loop;tick_physics;std::vector<int>::push_back 50000000\n"), std::string::npos);
  testing::expect_matches_golden("sample.folded", *text);
}

TEST(Folded, IndependentOfSampleOrder) {
  Profile p = make_sample_profile();
  auto before = render_folded(p);
  std::reverse(p.samples.begin(), p.samples.end());
  auto after = render_folded(p);
  ASSERT_TRUE(before && after);
  EXPECT_EQ(*before, *after);
}

TEST(Folded, ProcessAndThreadPrefix) {
  FoldedOptions opts;
  opts.value_index = 0;
  opts.include_process = true;
  opts.include_thread = true;
  opts.include_pid = true;
  opts.annotate_kernel = true;
  auto text = render_folded(make_sample_profile(), opts);
  ASSERT_TRUE(text);
  testing::expect_matches_golden("sample_threads.folded", *text);
  // The two push_back samples differ by thread, so they no longer merge.
  EXPECT_NE(text->find("tickgame-4242;sim-4243;main;tick_loop;tick_physics;std::vector<int>::push_back 3\n"),
            std::string::npos);
  EXPECT_NE(text->find("tickgame-4242;sim-2-4244;main;tick_loop;tick_physics;std::vector<int>::push_back 2\n"),
            std::string::npos);
  EXPECT_NE(text->find("do_syscall_64_[k];__x64_sys_sendto_[k];tcp_sendmsg_[k] 3\n"), std::string::npos);

  opts.include_thread = false;
  opts.include_pid = false;
  text = render_folded(make_sample_profile(), opts);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("tickgame;main;tick_loop;tick_physics;std::vector<int>::push_back 5\n"), std::string::npos);
}

TEST(Folded, FoldStacksCarriesFrameKinds) {
  FoldedOptions opts;
  opts.include_process = true;
  auto stacks = fold_stacks(make_sample_profile(), opts);
  ASSERT_TRUE(stacks);
  const FoldedStack& net = (*stacks)[0];
  ASSERT_EQ(net.frames.size(), 8u);
  EXPECT_EQ(net.frames[0].kind, FrameKind::kProcess);
  EXPECT_EQ(net.frames[1].kind, FrameKind::kUser);
  EXPECT_EQ(net.frames.back().name, "tcp_sendmsg");
  EXPECT_EQ(net.frames.back().kind, FrameKind::kKernel);
  EXPECT_EQ((*stacks)[1].frames.back().kind, FrameKind::kUnknown);
}

TEST(Folded, BadValueIndexIsAnError) {
  FoldedOptions opts;
  opts.value_index = 7;
  auto text = render_folded(make_sample_profile(), opts);
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find("out of range"), std::string::npos);
  EXPECT_FALSE(render_folded(Profile{}));
}

TEST(Folded, WritesToSink) {
  StringSink sink;
  FoldedOptions opts;
  opts.value_index = 0;
  ASSERT_TRUE(write_folded(make_sample_profile(), opts, sink));
  EXPECT_EQ(sink.str(), *render_folded(make_sample_profile(), opts));
}

// --line-info: each frame carries its source line, so the two call sites
// of tick_physics (lines 17 and 23) are two frames; without it they merge.
TEST(Folded, LineInfoNamesFramesByFileAndLine) {
  FoldedOptions opts;
  opts.value_index = 0;
  opts.line_info = true;
  auto text = render_folded(make_sample_profile(), opts);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_NE(text->find("main (main.cpp:42);tick_loop (tick.cpp:88);tick_physics (physics.cpp:17) 4\n"),
            std::string::npos)
      << *text;
  EXPECT_NE(text->find(";tick_physics (physics.cpp:23);std::vector<int>::push_back (stl_vector.h:1287) 5\n"),
            std::string::npos)
      << *text;
  // Frames without a file keep their plain name.
  EXPECT_NE(text->find(";[unknown] in libgameplugin.so+0x1234 1\n"), std::string::npos) << *text;
  opts.line_info = false;
  auto plain = render_folded(make_sample_profile(), opts);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->find("(physics.cpp"), std::string::npos);
}

}  // namespace
}  // namespace tickprobe
