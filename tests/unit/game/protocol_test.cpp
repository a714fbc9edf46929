// Framing: partial and coalesced reads, size limits, malformed frames.
#include <gtest/gtest.h>

#include <random>

#include "tickgame/protocol.h"

using namespace tickgame;

namespace {
struct Decoded { MsgType type; std::vector<std::uint8_t> payload; };

std::vector<std::uint8_t> sample_stream(std::vector<Decoded>* expect, std::mt19937& rng, int frames) {
  std::vector<std::uint8_t> out;
  for (int i = 0; i < frames; ++i) {
    std::size_t before = out.size();
    switch (rng() % 4) {
      case 0: encode_login(out, "player" + std::to_string(i)); break;
      case 1: encode_input(out, Input{static_cast<std::uint32_t>(i), 1, -1, 1, 42}); break;
      case 2: encode_chat(out, std::string(rng() % 200, 'x')); break;
      default: encode_ping(out, Ping{0x1122334455667788ull + i, static_cast<std::uint32_t>(i)}); break;
    }
    expect->push_back(Decoded{static_cast<MsgType>(out[before + 4]), {out.begin() + before + 5, out.end()}});
  }
  return out;
}

std::vector<Decoded> drain(FrameDecoder& d) {
  std::vector<Decoded> got;
  while (auto f = d.next()) got.push_back(Decoded{f->type, {f->payload.begin(), f->payload.end()}});
  return got;
}
}  // namespace

TEST(Framing, RandomSplitsYieldTheSameFrames) {
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::vector<Decoded> expect;
    auto stream = sample_stream(&expect, rng, 40);
    FrameDecoder dec;
    std::vector<Decoded> got;
    std::size_t pos = 0;
    while (pos < stream.size()) {
      std::size_t n = std::min<std::size_t>(1 + rng() % 23, stream.size() - pos);  // includes 1-byte reads
      dec.feed(stream.data() + pos, n);
      pos += n;
      for (auto& f : drain(dec)) got.push_back(std::move(f));
    }
    ASSERT_EQ(dec.error(), FrameError::kNone);
    ASSERT_EQ(got.size(), expect.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].type, expect[i].type);
      EXPECT_EQ(got[i].payload, expect[i].payload);
    }
    EXPECT_EQ(dec.buffered(), 0u);
  }
}

TEST(Framing, CoalescedFramesInOneRead) {
  std::mt19937 rng(3);
  std::vector<Decoded> expect;
  auto stream = sample_stream(&expect, rng, 100);
  FrameDecoder dec(1 << 20);
  dec.feed(stream.data(), stream.size());
  auto got = drain(dec);
  ASSERT_EQ(got.size(), expect.size());
  EXPECT_EQ(got.back().payload, expect.back().payload);
}

TEST(Framing, RoundTripsMessages) {
  std::vector<std::uint8_t> buf;
  encode_input(buf, Input{9, -1, 1, 2, 77});
  FrameDecoder dec;
  dec.feed(buf.data(), buf.size());
  auto f = dec.next();
  ASSERT_TRUE(f);
  ASSERT_EQ(f->type, MsgType::kInput);
  Input in;
  ASSERT_TRUE(decode_input(f->payload, in));
  EXPECT_EQ(in.seq, 9u);
  EXPECT_EQ(in.dx, -1);
  EXPECT_EQ(in.dy, 1);
  EXPECT_EQ(in.skill, 2);
  EXPECT_EQ(in.target, 77u);

  buf.clear();
  std::vector<EntityUpdate> ups{{1, 2, 3.5f, 4.5f, 60}, {7, 1, 0, 999.f, -3}};
  std::vector<std::uint32_t> removed{5, 6};
  encode_world_delta(buf, 1234, ups, removed);
  dec.feed(buf.data(), buf.size());
  f = dec.next();
  ASSERT_TRUE(f);
  std::uint64_t tick = 0;
  std::vector<EntityUpdate> got;
  EXPECT_EQ(decode_world_delta(f->payload, tick, &got), 2);
  EXPECT_EQ(tick, 1234u);
  EXPECT_EQ(got[1].y, 999.f);
  EXPECT_EQ(got[1].hp, -3);
}

TEST(Framing, OversizedFrameRejectedFromHeaderAlone) {
  FrameDecoder dec(1024);
  std::uint8_t hdr[5] = {0x01, 0x04, 0x00, 0x00, 2};  // length 1025
  dec.feed(hdr, sizeof hdr);
  EXPECT_FALSE(dec.next());
  EXPECT_EQ(dec.error(), FrameError::kFrameTooLarge);
  // The decoder stays failed and buffers nothing more.
  std::uint8_t more[100] = {};
  dec.feed(more, sizeof more);
  EXPECT_FALSE(dec.next());
  EXPECT_LE(dec.buffered(), sizeof hdr);
}

TEST(Framing, MaxSizeFrameAccepted) {
  FrameDecoder dec(1024);
  std::vector<std::uint8_t> f(4 + 1024, 0);
  f[0] = 0x00; f[1] = 0x04; f[4] = 3;  // length 1024, type chat
  dec.feed(f.data(), f.size());
  auto v = dec.next();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->payload.size(), 1023u);
  EXPECT_EQ(dec.feed_capacity(), 1028u);
}

TEST(Framing, EmptyFrameIsAnError) {
  FrameDecoder dec;
  std::uint8_t z[4] = {0, 0, 0, 0};
  dec.feed(z, 4);
  EXPECT_FALSE(dec.next());
  EXPECT_EQ(dec.error(), FrameError::kEmptyFrame);
}

TEST(Framing, FeedCapacityBoundsBuffering) {
  FrameDecoder dec(100);
  std::uint8_t hdr[4] = {100, 0, 0, 0};
  dec.feed(hdr, 4);
  EXPECT_EQ(dec.feed_capacity(), 100u);  // exactly the rest of the largest frame
}

TEST(Payloads, MalformedPayloadsAreRejected) {
  std::vector<std::uint8_t> p;
  Input in;
  EXPECT_FALSE(decode_input(p, in));  // empty
  p = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // one byte too long
  EXPECT_FALSE(decode_input(p, in));
  p = {1, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0};  // bad skill
  EXPECT_FALSE(decode_input(p, in));
  Login l;
  p = {0};  // empty name
  EXPECT_FALSE(decode_login(p, l));
  p = {200, 'a'};  // length beyond payload
  EXPECT_FALSE(decode_login(p, l));
  Chat c;
  p = {0xff, 0xff};  // too long
  EXPECT_FALSE(decode_chat(p, c));
  Ping ping;
  p = {1, 2, 3};
  EXPECT_FALSE(decode_ping(p, ping));
  std::uint64_t tick;
  p = {0, 0, 0, 0, 0, 0, 0, 0, 5, 0};  // claims 5 updates, has none
  EXPECT_EQ(decode_world_delta(p, tick), -1);
}

TEST(Payloads, FrameErrorNamesAreStable) {
  EXPECT_STREQ(frame_error_name(FrameError::kFrameTooLarge), "frame_too_large");
  EXPECT_STREQ(frame_error_name(FrameError::kBadPayload), "bad_payload");
  EXPECT_STREQ(frame_error_name(FrameError::kUnknownType), "unknown_type");
}
