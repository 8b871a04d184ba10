package node

import (
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// gatherStats returns the metrics of reg whose names start with prefix as
// name -> value (prefix cut, label values appended as {k=v,...}; a
// histogram gives its count and sum): a small live view for discovery.
func gatherStats(reg prometheus.Gatherer, prefix string) map[string]float64 {
	out := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		name, ok := strings.CutPrefix(mf.GetName(), prefix)
		if !ok {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := name
			if lps := m.GetLabel(); len(lps) > 0 {
				parts := make([]string, 0, len(lps))
				for _, lp := range lps {
					parts = append(parts, lp.GetName()+"="+lp.GetValue())
				}
				sort.Strings(parts)
				key += "{" + strings.Join(parts, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[key+"_sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}
