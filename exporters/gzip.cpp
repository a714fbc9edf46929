#include "exporters/gzip.h"

#include <zlib.h>

#include <climits>

namespace tickprobe {

Result<std::string> gzip_compress(std::string_view data, int level) {
  if (data.size() > UINT_MAX) {
    return Error("failed to gzip: input of " + std::to_string(data.size()) + " bytes is too large");
  }
  z_stream zs{};
  // 16 + MAX_WBITS selects the gzip wrapper instead of raw zlib.
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Error("failed to initialize zlib deflate: " + std::string(zs.msg ? zs.msg : "unknown error"));
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Error("failed to gzip: zlib deflate returned " + std::to_string(rc));
  out.resize(produced);
  return out;
}

Result<std::string> gzip_decompress(std::string_view data, size_t max_output) {
  if (data.size() > UINT_MAX) return Error("failed to gunzip: input is too large");
  z_stream zs{};
  // 32 + MAX_WBITS: detect gzip or zlib headers automatically.
  if (inflateInit2(&zs, 32 + MAX_WBITS) != Z_OK) return Error("failed to initialize zlib inflate");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[64 * 1024];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      std::string msg = zs.msg ? zs.msg : "zlib error " + std::to_string(rc);
      inflateEnd(&zs);
      return Error("failed to gunzip: " + msg);
    }
    out.append(buf, sizeof buf - zs.avail_out);
    if (out.size() > max_output) {
      inflateEnd(&zs);
      return Error("failed to gunzip: output exceeds " + std::to_string(max_output) + " bytes");
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return Error("failed to gunzip: truncated input");
    }
  }
  inflateEnd(&zs);
  return out;
}

}  // namespace tickprobe
