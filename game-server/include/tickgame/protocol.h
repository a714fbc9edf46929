// Wire protocol shared by tickgame and tickbots.
//
// Every frame is:   u32 length (little endian) | u8 type | payload
// `length` counts the type byte plus the payload, so the smallest legal frame
// has length 1. A frame whose length is 0 or larger than the decoder's
// max_frame_bytes is malformed; so is an unknown type or a payload whose size
// does not match its type. The decoder never allocates more than
// max_frame_bytes + 4 bytes per connection and handles frames split across
// reads ("partial") or several frames in one read ("coalesced"/"sticky").
//
// All integers are little endian; floats are IEEE-754 binary32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tickgame {

inline constexpr std::size_t kFrameHeaderBytes = 5;  // u32 length + u8 type
inline constexpr std::size_t kDefaultMaxFrameBytes = 64 * 1024;
inline constexpr std::size_t kMaxNameBytes = 32;
inline constexpr std::size_t kMaxChatBytes = 256;

enum class MsgType : std::uint8_t {
  // client -> server
  kLogin = 1,  // u8 name_len, name bytes
  kInput = 2,  // u32 seq, i8 dx, i8 dy, u8 skill (0 = none), u32 target_id
  kChat = 3,   // u16 text_len, text bytes
  kPing = 4,   // u64 client_time_ns, u32 seq
  // server -> client
  kWelcome = 64,     // u32 player_id, u16 tick_hz, u64 tick
  kWorldDelta = 65,  // u64 tick, u16 n_updates, n * EntityUpdate, u16 n_removed, n * u32 id
  kPong = 66,        // u64 client_time_ns, u32 seq, u64 server_tick
  kChatOut = 67,     // u32 from_player_id, u16 text_len, text bytes
};

// Why a frame was rejected. Each reason closes only the offending connection
// and is counted separately in the server's /stats.
enum class FrameError : std::uint8_t {
  kNone = 0,
  kEmptyFrame,     // length == 0
  kFrameTooLarge,  // length > max_frame_bytes
  kUnknownType,    // type byte not a known message for this direction
  kBadPayload,     // payload size/content does not match the type
  kNotLoggedIn,    // a game message before login
  kDuplicateLogin, // a second login on one connection
  kCount
};
const char* frame_error_name(FrameError e);

struct Login { std::string name; };
struct Input { std::uint32_t seq = 0; std::int8_t dx = 0, dy = 0; std::uint8_t skill = 0; std::uint32_t target = 0; };
struct Chat { std::string text; };
struct Ping { std::uint64_t client_time_ns = 0; std::uint32_t seq = 0; };
struct Welcome { std::uint32_t player_id = 0; std::uint16_t tick_hz = 0; std::uint64_t tick = 0; };
struct Pong { std::uint64_t client_time_ns = 0; std::uint32_t seq = 0; std::uint64_t server_tick = 0; };
struct ChatOut { std::uint32_t from = 0; std::string text; };

// One entity in a world delta: 15 bytes on the wire.
struct EntityUpdate { std::uint32_t id = 0; std::uint8_t kind = 0; float x = 0, y = 0; std::int16_t hp = 0; };
inline constexpr std::size_t kEntityUpdateBytes = 15;

// A frame view handed out by FrameDecoder: valid until the next feed()/next().
struct FrameView {
  MsgType type;
  std::span<const std::uint8_t> payload;
};

// Little-endian writer appending to any byte container with push_back/insert.
template <class Buf>
class Writer {
 public:
  explicit Writer(Buf& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<typename Buf::value_type>(v)); }
  void u16(std::uint16_t v) { for (int i = 0; i < 2; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i))); }
  void u32(std::uint32_t v) { for (int i = 0; i < 4; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i))); }
  void u64(std::uint64_t v) { for (int i = 0; i < 8; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i))); }
  void f32(float f) { std::uint32_t v; std::memcpy(&v, &f, 4); u32(v); }
  void bytes(std::string_view s) { for (char c : s) u8(static_cast<std::uint8_t>(c)); }
  // Starts a frame; returns the offset of its length field for end_frame().
  std::size_t begin_frame(MsgType t) { std::size_t at = out_.size(); u32(0); u8(static_cast<std::uint8_t>(t)); return at; }
  void end_frame(std::size_t at) {
    std::uint32_t len = static_cast<std::uint32_t>(out_.size() - at - 4);
    for (int i = 0; i < 4; ++i) out_[at + i] = static_cast<typename Buf::value_type>(len >> (8 * i));
  }
 private:
  Buf& out_;
};

// Bounds-checked little-endian reader over a payload; any overrun sets !ok().
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  std::uint8_t u8();
  std::uint16_t u16();
  std::uint32_t u32();
  std::uint64_t u64();
  float f32();
  std::string str(std::size_t n);
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == in_.size(); }
 private:
  bool need(std::size_t n);
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// Incremental frame decoder for one connection.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame_bytes = kDefaultMaxFrameBytes) : max_frame_(max_frame_bytes) {}
  // Appends received bytes. Never buffers more than one max-size frame:
  // callers must drain next() before feeding more (feed_capacity() says how
  // much can be read without exceeding that bound).
  void feed(const std::uint8_t* data, std::size_t n);
  std::size_t feed_capacity() const;
  // Next complete frame, or nullopt if more bytes are needed or an error
  // occurred (then error() != kNone and the decoder stays failed).
  std::optional<FrameView> next();
  FrameError error() const { return error_; }
  std::size_t buffered() const { return buf_.size() - start_; }
 private:
  void compact();
  std::size_t max_frame_;
  std::vector<std::uint8_t> buf_;
  std::size_t start_ = 0;
  FrameError error_ = FrameError::kNone;
};

bool is_client_message(std::uint8_t t);
bool is_server_message(std::uint8_t t);

// Encoders: append one complete frame to `out`.
template <class Buf> void encode_login(Buf& out, std::string_view name) {
  Writer w(out); auto at = w.begin_frame(MsgType::kLogin);
  name = name.substr(0, kMaxNameBytes); w.u8(static_cast<std::uint8_t>(name.size())); w.bytes(name); w.end_frame(at);
}
template <class Buf> void encode_input(Buf& out, const Input& in) {
  Writer w(out); auto at = w.begin_frame(MsgType::kInput);
  w.u32(in.seq); w.u8(static_cast<std::uint8_t>(in.dx)); w.u8(static_cast<std::uint8_t>(in.dy)); w.u8(in.skill); w.u32(in.target); w.end_frame(at);
}
template <class Buf> void encode_chat(Buf& out, std::string_view text) {
  Writer w(out); auto at = w.begin_frame(MsgType::kChat);
  text = text.substr(0, kMaxChatBytes); w.u16(static_cast<std::uint16_t>(text.size())); w.bytes(text); w.end_frame(at);
}
template <class Buf> void encode_ping(Buf& out, const Ping& p) {
  Writer w(out); auto at = w.begin_frame(MsgType::kPing); w.u64(p.client_time_ns); w.u32(p.seq); w.end_frame(at);
}
template <class Buf> void encode_welcome(Buf& out, const Welcome& m) {
  Writer w(out); auto at = w.begin_frame(MsgType::kWelcome); w.u32(m.player_id); w.u16(m.tick_hz); w.u64(m.tick); w.end_frame(at);
}
template <class Buf> void encode_pong(Buf& out, const Pong& m) {
  Writer w(out); auto at = w.begin_frame(MsgType::kPong); w.u64(m.client_time_ns); w.u32(m.seq); w.u64(m.server_tick); w.end_frame(at);
}
template <class Buf> void encode_chat_out(Buf& out, std::uint32_t from, std::string_view text) {
  Writer w(out); auto at = w.begin_frame(MsgType::kChatOut);
  text = text.substr(0, kMaxChatBytes); w.u32(from); w.u16(static_cast<std::uint16_t>(text.size())); w.bytes(text); w.end_frame(at);
}
template <class Buf, class Updates, class Removed>
void encode_world_delta(Buf& out, std::uint64_t tick, const Updates& updates, const Removed& removed) {
  Writer w(out); auto at = w.begin_frame(MsgType::kWorldDelta);
  w.u64(tick); w.u16(static_cast<std::uint16_t>(updates.size()));
  for (const EntityUpdate& u : updates) { w.u32(u.id); w.u8(u.kind); w.f32(u.x); w.f32(u.y); w.u16(static_cast<std::uint16_t>(u.hp)); }
  w.u16(static_cast<std::uint16_t>(removed.size()));
  for (std::uint32_t id : removed) w.u32(id);
  w.end_frame(at);
}

// Decoders: false if the payload does not match the type exactly.
bool decode_login(std::span<const std::uint8_t> p, Login& out);
bool decode_input(std::span<const std::uint8_t> p, Input& out);
bool decode_chat(std::span<const std::uint8_t> p, Chat& out);
bool decode_ping(std::span<const std::uint8_t> p, Ping& out);
bool decode_welcome(std::span<const std::uint8_t> p, Welcome& out);
bool decode_pong(std::span<const std::uint8_t> p, Pong& out);
bool decode_chat_out(std::span<const std::uint8_t> p, ChatOut& out);
// Validates a world delta; returns the number of updates (or -1 if malformed).
int decode_world_delta(std::span<const std::uint8_t> p, std::uint64_t& tick, std::vector<EntityUpdate>* updates = nullptr);

}  // namespace tickgame
