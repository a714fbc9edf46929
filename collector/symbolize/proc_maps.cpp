#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "symbolize/symbolizer.h"

namespace tickprobe {
namespace {

constexpr const char kDeletedSuffix[] = " (deleted)";

bool parse_line(const std::string& line, Mapping* m) {
  // "start-end perms offset major:minor inode   path"; the path is the rest of
  // the line after the padding and may contain spaces.
  unsigned long long start = 0, end = 0, offset = 0, inode = 0;
  char perms[8] = {};
  unsigned int major = 0, minor = 0;
  int consumed = 0;
  if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu%n", &start, &end, perms, &offset, &major, &minor,
                  &inode, &consumed) != 7)
    return false;
  m->start = start;
  m->end = end;
  m->file_offset = offset;
  m->dev_major = major;
  m->dev_minor = minor;
  m->inode = inode;
  m->executable = std::strlen(perms) >= 3 && perms[2] == 'x';
  size_t pos = static_cast<size_t>(consumed);
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  m->path = line.substr(pos);
  m->deleted = false;
  const size_t suffix_len = sizeof(kDeletedSuffix) - 1;
  if (m->inode != 0 && m->path.size() > suffix_len &&
      m->path.compare(m->path.size() - suffix_len, suffix_len, kDeletedSuffix) == 0) {
    m->path.resize(m->path.size() - suffix_len);
    m->deleted = true;
  }
  return true;
}

}  // namespace

std::vector<Mapping> parse_proc_maps(const std::string& text, bool executable_only) {
  std::vector<Mapping> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    Mapping m;
    if (!parse_line(line, &m)) continue;
    if (executable_only && !m.executable) continue;
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<Mapping> read_proc_maps(uint32_t pid, bool executable_only) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  if (!in) return {};
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_proc_maps(buf.str(), executable_only);
}

}  // namespace tickprobe
