#include "runtime/runtime_description.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <linux/types.h>
#include "bpf/include/runtime.h"

namespace tickprobe {

RuntimeDescription tickgame_runtime() {
  RuntimeDescription d;
  d.name = "tickgame";
  auto p = [](const char* name, int id_arg = -1, int name_arg = -1, std::vector<std::string> args = {}) {
    UsdtProbeRef r;
    r.provider = "tickgame";
    r.name = name;
    r.id_arg = id_arg;
    r.name_arg = name_arg;
    r.args = std::move(args);
    return r;
  };
  d.coro_create = p("coro__create", 0, 1);
  d.coro_destroy = p("coro__destroy", 0);
  d.coro_resume = p("coro__resume", 0);
  d.coro_suspend = p("coro__suspend", 0);
  d.tick_begin = p("tick__begin", 0);
  d.tick_end = p("tick__end");
  d.pauses.push_back({"gc", p("gc__begin", -1, -1, {"cycle"}), p("gc__end", -1, -1, {"cycle", "marked", "freed"})});
  d.pauses.push_back(
      {"arena", p("arena__reset__begin", -1, -1, {"bytes_used"}), p("arena__reset__end", -1, -1, {"bytes_used"})});
  return d;
}

namespace {

Result<UsdtProbeRef> parse_probe(const nlohmann::json& j, const std::string& provider, const std::string& where,
                                 size_t max_args) {
  UsdtProbeRef r;
  if (!j.is_object()) return Error(where + ": expected an object like {\"probe\": \"name\"}");
  if (!j.contains("probe") || !j["probe"].is_string()) return Error(where + ": missing \"probe\" (the USDT probe name)");
  r.name = j["probe"].get<std::string>();
  r.provider = j.value("provider", provider);
  if (r.provider.empty()) return Error(where + ": no provider (set \"provider\" here or at the top level)");
  auto arg_index = [&](const char* key, int& out) -> Status {
    if (!j.contains(key)) return {};
    if (!j[key].is_number_integer() || j[key].get<int>() < 0 || j[key].get<int>() > 11)
      return Error(where + ": \"" + key + "\" must be an argument position 0..11");
    out = j[key].get<int>();
    return {};
  };
  if (auto st = arg_index("id_arg", r.id_arg); !st) return st.error();
  if (auto st = arg_index("name_arg", r.name_arg); !st) return st.error();
  if (j.contains("args")) {
    if (!j["args"].is_array()) return Error(where + ": \"args\" must be a list of argument names");
    for (const auto& a : j["args"]) r.args.push_back(a.is_string() ? a.get<std::string>() : std::string());
    if (r.args.size() > max_args)
      return Error(where + ": at most " + std::to_string(max_args) + " arguments can be captured here");
  }
  return r;
}

}  // namespace

Result<RuntimeDescription> parse_runtime_description(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return Error(std::string("runtime description is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) return Error("runtime description must be a JSON object");
  RuntimeDescription d;
  d.name = j.value("name", "custom");
  d.binary = j.value("binary", "");
  std::string provider = j.value("provider", "");
  auto opt = [&](const nlohmann::json& parent, const char* key, UsdtProbeRef& out, const std::string& where,
                 size_t max_args) -> Status {
    if (!parent.contains(key)) return {};
    auto r = parse_probe(parent[key], provider, where + "." + key, max_args);
    if (!r) return r.error();
    out = r.take();
    return {};
  };
  if (j.contains("coroutines")) {
    const auto& c = j["coroutines"];
    for (auto [key, ref] : {std::pair{"create", &d.coro_create}, std::pair{"destroy", &d.coro_destroy},
                            std::pair{"resume", &d.coro_resume}, std::pair{"suspend", &d.coro_suspend}})
      if (auto st = opt(c, key, *ref, "coroutines", 0); !st) return st.error();
    if (d.coro_create.present() != d.coro_destroy.present())
      return Error("coroutines: \"create\" and \"destroy\" must be given together");
    for (auto* r : {&d.coro_create, &d.coro_destroy, &d.coro_resume, &d.coro_suspend})
      if (r->present() && r->id_arg < 0) return Error("coroutines." + r->name + ": missing \"id_arg\"");
  }
  if (j.contains("tick")) {
    if (auto st = opt(j["tick"], "begin", d.tick_begin, "tick", 0); !st) return st.error();
    if (auto st = opt(j["tick"], "end", d.tick_end, "tick", 0); !st) return st.error();
    if (!d.tick_begin.present()) return Error("tick: \"begin\" is required (frames run from one begin to the next)");
  }
  if (j.contains("pauses")) {
    if (!j["pauses"].is_array()) return Error("pauses must be a list");
    for (const auto& pj : j["pauses"]) {
      PauseDescription p;
      p.kind = pj.value("kind", "");
      if (p.kind.empty()) return Error("pauses: every pause needs a \"kind\" (e.g. \"gc\")");
      if (!pj.contains("begin") || !pj.contains("end")) return Error("pauses." + p.kind + ": needs \"begin\" and \"end\"");
      auto b = parse_probe(pj["begin"], provider, "pauses." + p.kind + ".begin", 1);
      if (!b) return b.error();
      auto e = parse_probe(pj["end"], provider, "pauses." + p.kind + ".end", RT_MAX_ARGS);
      if (!e) return e.error();
      p.begin = b.take();
      p.end = e.take();
      d.pauses.push_back(std::move(p));
    }
    if (d.pauses.size() > RT_MAX_PAUSE_KINDS)
      return Error("at most " + std::to_string(RT_MAX_PAUSE_KINDS) + " pause kinds are supported");
  }
  if (!d.has_coroutines() && !d.has_ticks() && d.pauses.empty())
    return Error("runtime description \"" + d.name + "\" describes no coroutine, tick or pause probes");
  return d;
}

Result<RuntimeDescription> load_runtime_description(const std::string& path) {
  // A description is a small JSON file. /dev/zero, a FIFO or a huge file
  // would otherwise be read until memory runs out.
  constexpr size_t kMaxDescriptionBytes = 1 << 20;
  const std::string hint = "pass 'tickgame' or a JSON runtime description (docs/runtimes.md)";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Error::from_errno("cannot read runtime description " + path, errno, hint);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error("usage: runtime description " + path + " is not a regular file", hint);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxDescriptionBytes) {
    ::close(fd);
    return Error("usage: runtime description " + path + " is larger than 1 MiB (" + std::to_string(st.st_size) + " bytes)",
                 hint);
  }
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxDescriptionBytes) break;  // grew while read
  }
  int err = errno;
  ::close(fd);
  if (n < 0) return Error::from_errno("cannot read runtime description " + path, err, hint);
  if (text.size() > kMaxDescriptionBytes) return Error("runtime description " + path + " is larger than 1 MiB", hint);
  auto d = parse_runtime_description(text);
  if (!d) return Error(path + ": " + d.error().message);
  return d;
}

Result<RuntimeDescription> runtime_description_from_arg(const std::string& arg) {
  if (arg.empty() || arg == "tickgame") return tickgame_runtime();
  return load_runtime_description(arg);
}

uint64_t runtime_cookie(const UsdtProbeRef& p, uint32_t pause_kind) {
  auto nib = [](int v) -> uint64_t { return v < 0 ? RT_ARG_NONE : static_cast<uint64_t>(v) & 0xf; };
  uint64_t c = pause_kind & 0xff;
  c |= nib(p.id_arg) << 8;
  c |= nib(p.name_arg) << 12;
  for (size_t i = 0; i < RT_MAX_ARGS; i++) {
    int pos = (i < p.args.size() && !p.args[i].empty()) ? static_cast<int>(i) : -1;
    c |= nib(pos) << (16 + 4 * i);
  }
  return c;
}

}  // namespace tickprobe
