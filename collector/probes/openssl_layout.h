// Where OpenSSL 3 keeps what the TLS family probes, found in the binary that
// defines it (libssl.so.3 or a statically linked executable), without
// debug info:
//
//  - the handshake function (ossl_statem_accept / ossl_statem_connect, which
//    both tail-call state_machine(s, server)): by symbol when .symtab or a
//    debug file has it, else from the TLS_method() table, whose
//    ssl_accept/ssl_connect slots SSL_set_accept_state/SSL_set_connect_state
//    copy into s->handshake_func (the slot offsets are read from their code);
//  - the state machine's fields in struct ssl_st: hand_state from
//    SSL_get_state() (`mov off(%rdi),%eax; ret`), in_init from SSL_in_init();
//    struct ossl_statem_st starts with `state` five ints before hand_state
//    and has in_init two after, which checks the pair.
//
// Pure functions of the file: unit-testable on the system's libssl.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace tickprobe {

struct OpensslLayout {
  // ELF vaddrs. When state_machine is set it is the one probe point (side in
  // its second argument); otherwise accept and connect are probed apart.
  uint64_t state_machine = 0;
  uint64_t statem_accept = 0;
  uint64_t statem_connect = 0;
  int32_t statem_state_off = -1;  // ssl->statem.state, -1 unknown
  int32_t hand_state_off = -1;    // ssl->statem.hand_state, -1 unknown
  std::string found_by;           // "symbols" or "TLS_method table"
  std::vector<std::string> notes; // degraded parts, for the report
};

using SymbolLookup = std::function<std::optional<uint64_t>(const std::string& name)>;

// `path`: the ELF file; `lookup`: its symbols (vaddr by name).
Result<OpensslLayout> find_openssl_layout(const std::string& path, const SymbolLookup& lookup);

}  // namespace tickprobe
