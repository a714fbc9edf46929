// Prometheus families for the agent's /metrics, from AgentStats.
//
// Naming follows Prometheus conventions: tickprobe_ prefix, base units
// (seconds, bytes), _total for counters. Per-target series carry pid and
// comm labels; the number of targets is bounded by the agent.
#pragma once

#include <string>

#include "model/agent_stats.h"
#include "prometheus.h"

namespace tickprobe {

MetricsSnapshot agent_metrics(const AgentStats& stats);

// The /healthz body: "ok\n", or one line "degraded: FAMILY (REASON xN, ...);
// ..." naming the families that failed to attach to a traced process, with
// the failure counts by reason.
std::string agent_health_text(const AgentStats& stats);

}  // namespace tickprobe
