// Separate debug files from debuginfod servers (libdebuginfod), by build-id.
//
// Used only when DEBUGINFOD_URLS is set (the client's own convention, as
// gdb, perf and eu-stack use it). Downloads land in the client's cache
// (DEBUGINFOD_CACHE_PATH, else $XDG_CACHE_HOME/debuginfod_client or
// ~/.cache/debuginfod_client), so each build-id is fetched once per
// machine; misses are cached by the client too. Thread-safe.
#pragma once

#include <string>

namespace tickprobe {

// True when DEBUGINFOD_URLS names at least one server.
bool debuginfod_enabled();

// Path of the debug file for a hex build-id in the client's cache
// (downloaded now if needed), or "" when no server has it. `error`
// receives the client's reason on failure.
std::string debuginfod_find_debug_file(const std::string& build_id_hex, std::string* error = nullptr);

}  // namespace tickprobe
