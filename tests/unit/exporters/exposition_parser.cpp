#include "exposition_parser.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace tickprobe::testing {

double Exposition::value(const std::string& name, const SeriesLabels& labels) const {
  auto it = samples.find({name, labels});
  return it == samples.end() ? std::nan("") : it->second;
}

size_t Exposition::count(const std::string& name) const {
  size_t n = 0;
  for (const auto& [key, v] : samples) n += key.first == name;
  return n;
}

namespace {

bool unescape(const std::string& in, bool quotes, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out += in[i];
      continue;
    }
    if (++i == in.size()) return false;
    if (in[i] == '\\') out += '\\';
    else if (in[i] == 'n') out += '\n';
    else if (quotes && in[i] == '"') out += '"';
    else return false;
  }
  return true;
}

bool belongs(const std::string& sample, const std::string& family, const std::string& type) {
  if (sample == family) return type != "histogram";
  if (type != "histogram") return false;
  for (const char* suffix : {"_bucket", "_sum", "_count"})
    if (sample == family + suffix) return true;
  return false;
}

}  // namespace

Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line, family;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto err = [&](const std::string& why) { e.errors.push_back("line " + std::to_string(n) + ": " + why + ": " + line); };
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      auto sp = rest.find(' ');
      std::string name = rest.substr(0, sp), arg = sp == std::string::npos ? "" : rest.substr(sp + 1);
      if (line[2] == 'H') {
        std::string h;
        if (!unescape(arg, false, h)) err("bad HELP escape");
        e.help[name] = h;
      } else {
        if (e.type.count(name)) err("family declared twice");
        e.type[name] = arg;
        e.family_order.push_back(name);
        family = name;
      }
      continue;
    }
    if (line[0] == '#') continue;  // comment
    size_t i = line.find_first_of("{ ");
    if (i == std::string::npos) {
      err("no value");
      continue;
    }
    std::string name = line.substr(0, i);
    SeriesLabels labels;
    if (line[i] == '{') {
      ++i;
      bool ok = true;
      while (ok && i < line.size() && line[i] != '}') {
        size_t eq = line.find("=\"", i);
        if (eq == std::string::npos) {
          ok = false;
          break;
        }
        std::string lname = line.substr(i, eq - i), raw;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) raw += line[j++];
          raw += line[j];
        }
        std::string value;
        ok = j < line.size() && unescape(raw, true, value) && labels.emplace(lname, value).second;
        i = j + 1;
        if (ok && i < line.size() && line[i] == ',') ++i;
      }
      if (!ok || i >= line.size()) {
        err("bad labels");
        continue;
      }
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      err("no value");
      continue;
    }
    std::string token = line.substr(i + 1);
    token = token.substr(0, token.find(' '));  // a timestamp may follow
    char* end = nullptr;
    double v = std::strtod(token.c_str(), &end);  // accepts NaN/Nan, +Inf, -Inf in any case
    if (token.empty() || *end) {
      err("bad value");
      continue;
    }
    auto declared = e.type.find(family);
    if (declared == e.type.end() || !belongs(name, family, declared->second))
      err("sample outside its family " + family);
    if (!e.samples.emplace(std::make_pair(name, labels), v).second) err("repeated series");
  }
  return e;
}

}  // namespace tickprobe::testing
