// `tickprobe tls`: watch one process's OpenSSL handshakes for a while and
// return the report plus the handshake-CPU profile (for -o).
#pragma once

#include "core/result.h"
#include "model/profile.h"
#include "model/tls_report.h"
#include "probes/tls.h"
#include "runtime/hunts.h"

namespace tickprobe {

struct TlsHuntOptions {
  HuntCommon common;
  TlsOptions tls;
  size_t top = 10;  // worst handshakes and top stacks shown
};

struct TlsHuntResult {
  TlsReport report;
  Profile cpu_profile;  // samples inside handshake calls
};

Result<TlsHuntResult> run_tls_hunt(const TlsHuntOptions& o);

// Report parts computed from the family's data (exposed for tests).
void summarize_tls_outcomes(const TlsSnapshot& snap, double elapsed_s, size_t top, TlsReport& r);
void summarize_tls_profile(const Profile& profile, size_t top, TlsReport& r);

}  // namespace tickprobe
