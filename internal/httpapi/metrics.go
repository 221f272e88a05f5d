package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"superapp/internal/cmdlog"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry, machines map[string]*cmdlog.Machine) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "superapp_http_requests_total",
			Help: "HTTP requests served, by feature, route and status.",
		}, []string{"feature", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "superapp_http_request_duration_seconds",
			Help:    "HTTP request latency, by feature and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"feature", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	for name, mc := range machines {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "superapp_stream_applied_seq",
			Help:        "Last stream sequence this node applied to its read model.",
			ConstLabels: prometheus.Labels{"stream": name},
		}, func() float64 { return float64(mc.Applied()) }))
	}
	return m
}

func (m *metrics) observe(rt route, status int, d time.Duration) {
	route := rt.method + " " + rt.pattern
	m.requests.WithLabelValues(rt.feature, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(rt.feature, route).Observe(d.Seconds())
}
