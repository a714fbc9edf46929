// gzip (RFC 1952) compression and decompression with zlib. The gzip header
// carries no file name and mtime 0, so equal input gives equal output with
// the same zlib build.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace tickprobe {

// level: 0..9, or -1 for zlib's default (6).
Result<std::string> gzip_compress(std::string_view data, int level = -1);

// Accepts gzip or zlib streams (auto-detected). Fails on truncated or corrupt
// input, or when the output would exceed max_output bytes.
Result<std::string> gzip_decompress(std::string_view data, size_t max_output = size_t{1} << 30);

}  // namespace tickprobe
