// Prometheus families for the agent's /metrics, from AgentStats.
//
// Naming follows Prometheus conventions: tickprobe_ prefix, base units
// (seconds, bytes), _total for counters. Per-target series carry pid and
// comm labels; the number of targets is bounded by the agent.
#pragma once

#include "model/agent_stats.h"
#include "prometheus.h"

namespace tickprobe {

MetricsSnapshot agent_metrics(const AgentStats& stats);

}  // namespace tickprobe
