#include "runtime/runtime_description.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
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

RuntimeDescription go_runtime() {
  RuntimeDescription d;
  d.name = "go";
  auto fn = [](const char* symbol, bool at_return, const char* id = nullptr) {
    UsdtProbeRef r;
    r.symbol = symbol;
    r.at_return = at_return;
    if (id) r.id = parse_arg_expr(id).take();
    return r;
  };
  // goid is g+152 in Go 1.19 (runtime.g in DWARF); newproc1 assigns it
  // late, so the RETs see it; goexit0(gp) has gp in RAX at its entry.
  d.coro_create = fn("runtime.newproc1", true, "*(rax+152)");
  d.coro_destroy = fn("runtime.goexit0", false, "*(rax+152)");
  // The pause ends where Go's own accounting (PauseNs) ends it: at the
  // nanotime() call in startTheWorldWithSema after the Ps are restarted,
  // not at its RETs (those add wakep(), up to milliseconds).
  UsdtProbeRef end = fn("runtime.startTheWorldWithSema", false);
  end.at_call = "runtime.nanotime1";
  d.pauses.push_back({"stw", fn("runtime.stopTheWorldWithSema", false), end, true});
  d.gc_start = fn("runtime.gcStart", false);
  d.gc_cycle_end = fn("runtime.gcMarkTermination", false);
  return d;
}

Result<RuntimeDescription> with_goroutine_tick(RuntimeDescription d, const std::string& symbol,
                                               const std::string& tick_id) {
  if (d.name != "go")
    return Error("usage: --tick-function needs the Go runtime description (runtime \"" + d.name + "\")",
                 "for other runtimes name the tick probes in a JSON description (docs/runtimes.md)");
  if (symbol.empty()) return Error("usage: empty tick function name", "e.g. --tick-function 'main.(*Server).tick'");
  UsdtProbeRef b, e;
  b.symbol = e.symbol = symbol;
  e.at_return = true;
  if (!tick_id.empty()) {
    auto x = parse_arg_expr(tick_id);
    if (!x) return Error("usage: --tick-id: " + x.error().message, x.error().hint);
    b.id = x.take();
  }
  d.tick_begin = b;
  d.tick_end = e;
  d.tick_goroutine = parse_arg_expr("*(r14+152)").take();  // g.goid, Go 1.19
  UsdtProbeRef pb, pe;
  pb.symbol = pe.symbol = "runtime.gopark";
  pb.id = parse_arg_expr("rcx").take();  // gopark(unlockf, lock, reason waitReason, ...)
  pe.at_return = true;
  d.park_begin = pb;
  d.park_end = pe;
  return d;
}

namespace {

constexpr const char* kRegisterNames[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                          "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

int register_index(const std::string& name) {
  for (int i = 0; i < 16; i++)
    if (name == kRegisterNames[i]) return i;
  return -1;
}

// Unknown keys are an error: a typo must not silently disable a probe.
Status check_keys(const nlohmann::json& j, std::initializer_list<const char*> allowed, const std::string& where) {
  if (!j.is_object()) return {};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      return Error(where + ": unknown key \"" + it.key() + "\" (known: " + list + ")");
    }
  }
  return {};
}

}  // namespace

std::string ArgExpr::describe() const {
  if (reg < 0) return "";
  std::string r = kRegisterNames[reg & 15];
  if (!deref) return r;
  if (offset == 0) return "*(" + r + ")";
  return "*(" + r + (offset > 0 ? "+" : "-") + std::to_string(offset > 0 ? offset : -int64_t{offset}) + ")";
}

Result<ArgExpr> parse_arg_expr(const std::string& text) {
  std::string t;
  for (char c : text)
    if (c != ' ') t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ArgExpr e;
  auto bad = [&] {
    return Error("bad argument expression \"" + text + "\"",
                 "use a register (rax, rbx, ..., r15) or the word at register+offset: *(rax+152)");
  };
  if (t.size() > 3 && t[0] == '*' && t[1] == '(' && t.back() == ')') {
    std::string inner = t.substr(2, t.size() - 3);
    size_t sign = inner.find_first_of("+-");
    std::string reg = inner.substr(0, sign);
    e.reg = register_index(reg);
    if (e.reg < 0) return bad();
    e.deref = true;
    if (sign != std::string::npos) {
      std::string num = inner.substr(sign + 1);
      if (num.empty()) return bad();
      char* end = nullptr;
      long long v = std::strtoll(num.c_str(), &end, 0);
      if (*end != '\0' || v >= (1 << 19)) return bad();
      e.offset = static_cast<int32_t>(inner[sign] == '-' ? -v : v);
    }
    return e;
  }
  e.reg = register_index(t);
  if (e.reg < 0) return bad();
  return e;
}

namespace {

Result<UsdtProbeRef> parse_probe(const nlohmann::json& j, const std::string& provider, const std::string& where,
                                 size_t max_args) {
  UsdtProbeRef r;
  if (!j.is_object()) return Error(where + ": expected an object like {\"probe\": \"name\"}");
  if (auto st = check_keys(j, {"probe", "provider", "id_arg", "name_arg", "args", "symbol", "at", "id"}, where); !st)
    return st.error();
  if (j.contains("symbol")) {
    if (!j["symbol"].is_string() || j["symbol"].get<std::string>().empty())
      return Error(where + ": \"symbol\" must be a function name");
    for (const char* usdt_only : {"probe", "provider", "id_arg", "name_arg", "args"})
      if (j.contains(usdt_only))
        return Error(where + ": \"" + usdt_only + "\" is for USDT probes; a function probe takes \"at\" and \"id\"");
    r.symbol = j["symbol"].get<std::string>();
    std::string at = j.value("at", "entry");
    if (at.rfind("call:", 0) == 0 && at.size() > 5) {
      r.at_call = at.substr(5);
    } else if (at != "entry" && at != "ret") {
      return Error(where + ": \"at\" must be \"entry\", \"ret\" or \"call:FUNCTION\"");
    }
    r.at_return = at == "ret";
    if (j.contains("id")) {
      if (!j["id"].is_string()) return Error(where + ": \"id\" must be an argument expression like \"*(rax+152)\"");
      auto e = parse_arg_expr(j["id"].get<std::string>());
      if (!e) return Error(where + ": " + e.error().message, e.error().hint);
      r.id = e.take();
    }
    return r;
  }
  if (j.contains("at") || j.contains("id"))
    return Error(where + ": \"at\" and \"id\" are for function probes (\"symbol\")");
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
  if (auto st =
          check_keys(j, {"name", "binary", "provider", "coroutines", "tick", "pauses", "gc"}, "runtime description");
      !st)
    return st.error();
  if (j.contains("coroutines"))
    if (auto st = check_keys(j["coroutines"], {"create", "destroy", "resume", "suspend"}, "coroutines"); !st)
      return st.error();
  if (j.contains("tick"))
    if (auto st = check_keys(j["tick"], {"begin", "end", "goroutine", "park"}, "tick"); !st) return st.error();
  if (j.contains("tick") && j["tick"].contains("park"))
    if (auto st = check_keys(j["tick"]["park"], {"begin", "end"}, "tick.park"); !st) return st.error();
  if (j.contains("gc"))
    if (auto st = check_keys(j["gc"], {"start", "cycle_end"}, "gc"); !st) return st.error();
  if (j.contains("pauses") && j["pauses"].is_array())
    for (const auto& pj : j["pauses"])
      if (auto st = check_keys(pj, {"kind", "begin", "end", "stops_world"}, "pauses"); !st) return st.error();
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
    for (auto* r : {&d.coro_create, &d.coro_destroy, &d.coro_resume, &d.coro_suspend}) {
      if (r->present() && !r->is_function() && r->id_arg < 0)
        return Error("coroutines." + r->name + ": missing \"id_arg\"");
      if (r->is_function() && !r->id.present()) return Error("coroutines." + r->symbol + ": missing \"id\"");
    }
  }
  if (j.contains("tick")) {
    if (auto st = opt(j["tick"], "begin", d.tick_begin, "tick", 0); !st) return st.error();
    if (auto st = opt(j["tick"], "end", d.tick_end, "tick", 0); !st) return st.error();
    if (!d.tick_begin.present()) return Error("tick: \"begin\" is required (frames run from one begin to the next)");
    const auto& t = j["tick"];
    if (t.contains("goroutine")) {
      if (!t["goroutine"].is_string())
        return Error("tick.goroutine must be an argument expression like \"*(r14+152)\"");
      auto e = parse_arg_expr(t["goroutine"].get<std::string>());
      if (!e) return Error("tick.goroutine: " + e.error().message, e.error().hint);
      d.tick_goroutine = e.take();
      if (!d.tick_begin.is_function() || !d.tick_end.is_function())
        return Error("tick: goroutine ticks need function probes for \"begin\" and \"end\"");
      if (t.contains("park")) {
        if (auto st = opt(t["park"], "begin", d.park_begin, "tick.park", 0); !st) return st.error();
        if (auto st = opt(t["park"], "end", d.park_end, "tick.park", 0); !st) return st.error();
        if (!d.park_begin.is_function() || !d.park_end.is_function())
          return Error("tick.park: \"begin\" and \"end\" must both be function probes");
      }
    } else if (t.contains("park")) {
      return Error("tick.park needs tick.goroutine (parks are per goroutine)");
    } else if (d.tick_begin.is_function() || d.tick_end.is_function()) {
      return Error("tick: function probes need \"goroutine\" (the expression of the goroutine id)",
                   "e.g. \"goroutine\": \"*(r14+152)\" for Go 1.19");
    }
  }
  if (j.contains("gc")) {
    if (auto st = opt(j["gc"], "start", d.gc_start, "gc", 0); !st) return st.error();
    if (auto st = opt(j["gc"], "cycle_end", d.gc_cycle_end, "gc", 0); !st) return st.error();
    if (!d.gc_start.is_function() || !d.gc_cycle_end.is_function())
      return Error("gc: \"start\" and \"cycle_end\" must both be function probes");
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
      if (pj.contains("stops_world")) {
        if (!pj["stops_world"].is_boolean()) return Error("pauses." + p.kind + ".stops_world must be true or false");
        p.stops_world = pj["stops_world"].get<bool>();
        if (p.stops_world && (!p.begin.is_function() || !p.end.is_function()))
          return Error("pauses." + p.kind + ": stops_world needs function probes for begin and end");
      }
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
  if (arg == "go") return go_runtime();
  return load_runtime_description(arg);
}

uint64_t runtime_cookie(const UsdtProbeRef& p, uint32_t pause_kind, bool stops_world) {
  if (p.is_function()) {
    uint64_t c = pause_kind & 0xff;
    if (stops_world) c |= uint64_t{1} << 14;
    if (p.id.present()) {
      c |= (static_cast<uint64_t>(p.id.reg) & 0xf) << 8;
      c |= static_cast<uint64_t>(p.id.deref ? 1 : 0) << 12;
      c |= uint64_t{1} << 13;
      c |= static_cast<uint64_t>(static_cast<uint32_t>(p.id.offset)) << 32;
    }
    return c;
  }
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
