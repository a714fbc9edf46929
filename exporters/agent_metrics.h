// Prometheus families for the agent's /metrics, from AgentStats.
//
// Naming follows Prometheus conventions: tickprobe_ prefix, base units
// (seconds, bytes), _total for counters. Per-target series carry pid and
// comm labels; the number of targets is bounded by the agent.
#pragma once

#include <functional>
#include <string>

#include "model/agent_stats.h"
#include "prometheus_exposition.h"

namespace tickprobe {

MetricsSnapshot agent_metrics(const AgentStats& stats);

// The agent's /metrics as a prometheus::Collectable: every Collect() calls
// `stats` (the agent reads its kernel maps and the families' totals then)
// and converts agent_metrics() of the result (prometheus_exposition.h).
class AgentCollectable : public SnapshotCollectable {
 public:
  explicit AgentCollectable(std::function<AgentStats()> stats,
                            size_t max_series_per_family = kDefaultMaxSeriesPerFamily)
      : SnapshotCollectable([stats = std::move(stats)] { return agent_metrics(stats()); }, max_series_per_family) {}
};

// The /healthz body: "ok\n", or one line "degraded: FAMILY (REASON xN, ...);
// ..." naming the families that failed to attach to a traced process, with
// the failure counts by reason.
std::string agent_health_text(const AgentStats& stats);

}  // namespace tickprobe
