package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// restartCollector exposes a counter per container from a count the
// supervisors report in their status: zocker_container_restarts_total from
// the restart counts, zocker_log_dropped_lines_total from the log lines
// dropped on a full disk. What follows is said of restarts; dropped lines
// behave the same way.
//
// Why not a plain prometheus.Counter: the source of truth is the supervisor's
// status file, a running count since that supervisor started, which outlives
// this process (restarting the reconciler never restarts containers). A
// Counter incremented by the deltas we happen to see would start at 0 after
// every reconciler restart and lose the restarts made while we were down.
//
// Why not expose the supervisor's count as is: it drops to 0 whenever the
// container is replaced (a new supervisor), and a counter that goes backwards
// is read by rate() as a reset, which is fine once but is not what "restarts
// of container web" means.
//
// So: the first value seen for a name is taken as the starting total (after
// a reconciler restart the series continues where Prometheus last saw it, so
// no false crash-loop increase), later increases are added, and a count lower
// than the last one means a new supervisor whose whole count is new restarts.
// The exposed value never goes backwards while this process runs.
type restartCollector struct {
	desc *prometheus.Desc

	mu     sync.Mutex
	byName map[string]*restartState
}

type restartState struct {
	last  int     // the supervisor's count at the last observation
	total float64 // what is exposed
}

func newRestartCollector() *restartCollector {
	return newStatusCounter("zocker_container_restarts_total",
		"Restarts of the container's command by its supervisor, never decreasing while the service runs.")
}

func newLogDroppedCollector() *restartCollector {
	return newStatusCounter("zocker_log_dropped_lines_total",
		"Output lines of the container's command its supervisor could not write to the log (full disk) and dropped.")
}

func newStatusCounter(name, help string) *restartCollector {
	return &restartCollector{
		desc:   prometheus.NewDesc(name, help, []string{"name"}, nil),
		byName: map[string]*restartState{},
	}
}

// observe takes the supervisor's current count for name.
func (c *restartCollector) observe(name string, count int) {
	if count < 0 {
		count = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.byName[name]
	switch {
	case !ok:
		c.byName[name] = &restartState{last: count, total: float64(count)}
	case count >= s.last:
		s.total += float64(count - s.last)
		s.last = count
	default: // a new supervisor: its count started again from 0
		s.total += float64(count)
		s.last = count
	}
}

// forget drops name's series (the container was pruned).
func (c *restartCollector) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byName, name)
}

// Describe implements prometheus.Collector.
func (c *restartCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *restartCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, s := range c.byName {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, s.total, name)
	}
}
