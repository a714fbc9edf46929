#include "tickgame/protocol.h"

namespace tickgame {

const char* frame_error_name(FrameError e) {
  switch (e) {
    case FrameError::kNone: return "none";
    case FrameError::kEmptyFrame: return "empty_frame";
    case FrameError::kFrameTooLarge: return "frame_too_large";
    case FrameError::kUnknownType: return "unknown_type";
    case FrameError::kBadPayload: return "bad_payload";
    case FrameError::kNotLoggedIn: return "not_logged_in";
    case FrameError::kDuplicateLogin: return "duplicate_login";
    case FrameError::kCount: break;
  }
  return "unknown";
}

bool Reader::need(std::size_t n) {
  if (!ok_ || in_.size() - pos_ < n) { ok_ = false; return false; }
  return true;
}
std::uint8_t Reader::u8() { if (!need(1)) return 0; return in_[pos_++]; }
std::uint16_t Reader::u16() {
  if (!need(2)) return 0;
  std::uint16_t v = static_cast<std::uint16_t>(in_[pos_] | (in_[pos_ + 1] << 8)); pos_ += 2; return v;
}
std::uint32_t Reader::u32() {
  if (!need(4)) return 0;
  std::uint32_t v = 0; for (int i = 0; i < 4; ++i) v |= std::uint32_t(in_[pos_ + i]) << (8 * i);
  pos_ += 4; return v;
}
std::uint64_t Reader::u64() {
  if (!need(8)) return 0;
  std::uint64_t v = 0; for (int i = 0; i < 8; ++i) v |= std::uint64_t(in_[pos_ + i]) << (8 * i);
  pos_ += 8; return v;
}
float Reader::f32() { std::uint32_t v = u32(); float f; std::memcpy(&f, &v, 4); return f; }
std::string Reader::str(std::size_t n) {
  if (!need(n)) return {};
  std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n); pos_ += n; return s;
}

bool is_client_message(std::uint8_t t) { return t >= 1 && t <= 4; }
bool is_server_message(std::uint8_t t) { return t >= 64 && t <= 67; }

std::size_t FrameDecoder::feed_capacity() const {
  std::size_t limit = max_frame_ + 4;
  std::size_t have = buffered();
  return have >= limit ? 0 : limit - have;
}

void FrameDecoder::compact() {
  if (start_ == 0) return;
  if (start_ == buf_.size()) { buf_.clear(); start_ = 0; return; }
  // Only move bytes when the consumed prefix dominates, keeping feed O(n).
  if (start_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
}

void FrameDecoder::feed(const std::uint8_t* data, std::size_t n) {
  if (error_ != FrameError::kNone || n == 0) return;
  compact();
  buf_.insert(buf_.end(), data, data + n);
}

std::optional<FrameView> FrameDecoder::next() {
  if (error_ != FrameError::kNone) return std::nullopt;
  std::size_t have = buf_.size() - start_;
  if (have < 4) { compact(); return std::nullopt; }
  const std::uint8_t* p = buf_.data() + start_;
  std::uint32_t len = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
  // Reject on the header alone: never wait for (or buffer) an oversized body.
  if (len == 0) { error_ = FrameError::kEmptyFrame; return std::nullopt; }
  if (len > max_frame_) { error_ = FrameError::kFrameTooLarge; return std::nullopt; }
  if (have < 4 + std::size_t(len)) { compact(); return std::nullopt; }
  FrameView v{static_cast<MsgType>(p[4]), std::span<const std::uint8_t>(p + 5, len - 1)};
  start_ += 4 + len;
  return v;
}

bool decode_login(std::span<const std::uint8_t> p, Login& out) {
  Reader r(p); std::size_t n = r.u8();
  if (n == 0 || n > kMaxNameBytes) return false;
  out.name = r.str(n); return r.at_end();
}
bool decode_input(std::span<const std::uint8_t> p, Input& out) {
  Reader r(p); out.seq = r.u32(); out.dx = static_cast<std::int8_t>(r.u8()); out.dy = static_cast<std::int8_t>(r.u8());
  out.skill = r.u8(); out.target = r.u32(); return r.at_end() && out.skill <= 3;
}
bool decode_chat(std::span<const std::uint8_t> p, Chat& out) {
  Reader r(p); std::size_t n = r.u16(); if (n > kMaxChatBytes) return false;
  out.text = r.str(n); return r.at_end();
}
bool decode_ping(std::span<const std::uint8_t> p, Ping& out) {
  Reader r(p); out.client_time_ns = r.u64(); out.seq = r.u32(); return r.at_end();
}
bool decode_welcome(std::span<const std::uint8_t> p, Welcome& out) {
  Reader r(p); out.player_id = r.u32(); out.tick_hz = r.u16(); out.tick = r.u64(); return r.at_end();
}
bool decode_pong(std::span<const std::uint8_t> p, Pong& out) {
  Reader r(p); out.client_time_ns = r.u64(); out.seq = r.u32(); out.server_tick = r.u64(); return r.at_end();
}
bool decode_chat_out(std::span<const std::uint8_t> p, ChatOut& out) {
  Reader r(p); out.from = r.u32(); std::size_t n = r.u16(); if (n > kMaxChatBytes) return false;
  out.text = r.str(n); return r.at_end();
}
int decode_world_delta(std::span<const std::uint8_t> p, std::uint64_t& tick, std::vector<EntityUpdate>* updates) {
  Reader r(p); tick = r.u64(); std::size_t n = r.u16();
  for (std::size_t i = 0; i < n && r.ok(); ++i) {
    EntityUpdate u; u.id = r.u32(); u.kind = r.u8(); u.x = r.f32(); u.y = r.f32(); u.hp = static_cast<std::int16_t>(r.u16());
    if (updates) updates->push_back(u);
  }
  std::size_t m = r.u16();
  for (std::size_t i = 0; i < m && r.ok(); ++i) r.u32();
  return r.at_end() ? static_cast<int>(n) : -1;
}

}  // namespace tickgame
