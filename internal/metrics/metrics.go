// Package metrics is machined's Prometheus registry: its services, controllers, resources
// and log store, read when scraped, and the node API calls it serves, counted as they
// happen.
package metrics

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/pkg/role"
)

// ResourceCount is how many resources of one type a namespace holds.
type ResourceCount struct {
	Namespace, Type string
	Count           int
}

// Sources are what the registry reads at every scrape; a nil one is left out.
type Sources struct {
	Services    func() []service.Status
	Controllers func() []controller.ControllerStatus
	Resources   func() []ResourceCount
	// LogBytes are the bytes on disk of each log of the log store.
	LogBytes func() map[string]int64
}

// Metrics is the registry.
type Metrics struct {
	reg     *prometheus.Registry
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// New returns the registry of src, with the Go runtime's and the process's metrics.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plinth_api_calls_total",
			Help: "Node API calls served by machined, by method, the caller's highest role and the gRPC status code.",
		}, []string{"method", "role", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plinth_api_call_duration_seconds",
			Help:    "How long machined took to serve node API calls (a stream: until it ended), by method and role.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 120},
		}, []string{"method", "role"}),
	}
	m.reg.MustRegister(m.calls, m.latency, &state{src: src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry, for an HTTP handler.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Text is the registry in Prometheus's text exposition format.
func (m *Metrics) Text() ([]byte, error) {
	families, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// callerRole is the most powerful role that apid passed with the call, or "none".
func callerRole(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	roles := md.Get(role.MetadataKey)
	for _, r := range role.All {
		if slices.Contains(roles, r) {
			return r
		}
	}
	return "none"
}

func (m *Metrics) observe(ctx context.Context, method string, start time.Time, err error) {
	r := callerRole(ctx)
	m.calls.WithLabelValues(method, r, status.Code(err).String()).Inc()
	m.latency.WithLabelValues(method, r).Observe(time.Since(start).Seconds())
}

// UnaryInterceptor counts and times unary calls.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observe(ctx, info.FullMethod, start, err)
		return resp, err
	}
}

// StreamInterceptor counts and times streaming calls.
func (m *Metrics) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observe(ss.Context(), info.FullMethod, start, err)
		return err
	}
}

var (
	serviceRunning = prometheus.NewDesc("plinth_service_running", "1 when the service is Running.", []string{"service"}, nil)
	serviceState   = prometheus.NewDesc("plinth_service_state", "1 for the service's current state.", []string{"service", "state"}, nil)
	serviceHealthy = prometheus.NewDesc("plinth_service_healthy",
		"1 when the service's health check passes, 0 when it fails; absent while it has no result.", []string{"service"}, nil)
	serviceRestarts = prometheus.NewDesc("plinth_service_restarts_total", "Restarts of the service since machined started, automatic and requested.", []string{"service"}, nil)
	ctrlRunning     = prometheus.NewDesc("plinth_controller_running", "1 while the controller runs.", []string{"controller"}, nil)
	ctrlRuns        = prometheus.NewDesc("plinth_controller_runs_total", "Starts of the controller since machined started, the first one included.", []string{"controller"}, nil)
	ctrlFailures    = prometheus.NewDesc("plinth_controller_failures_total", "Failures of the controller (an error or a panic), after each of which it is restarted.", []string{"controller"}, nil)
	resources       = prometheus.NewDesc("plinth_resources", "Resources in the store, by namespace and type.", []string{"namespace", "type"}, nil)
	logBytes        = prometheus.NewDesc("plinth_log_store_bytes", "Bytes on disk of each log of the log store, this boot's and the previous boot's.", []string{"log"}, nil)
)

// state collects what the sources say at scrape time.
type state struct{ src Sources }

func (s *state) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{serviceRunning, serviceState, serviceHealthy, serviceRestarts, ctrlRunning, ctrlRuns, ctrlFailures, resources, logBytes} {
		ch <- d
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (s *state) Collect(ch chan<- prometheus.Metric) {
	if s.src.Services != nil {
		for _, st := range s.src.Services() {
			ch <- prometheus.MustNewConstMetric(serviceRunning, prometheus.GaugeValue, bool01(st.State == service.Running), st.ID)
			ch <- prometheus.MustNewConstMetric(serviceState, prometheus.GaugeValue, 1, st.ID, string(st.State))
			if st.Healthy != nil {
				ch <- prometheus.MustNewConstMetric(serviceHealthy, prometheus.GaugeValue, bool01(*st.Healthy), st.ID)
			}
			ch <- prometheus.MustNewConstMetric(serviceRestarts, prometheus.CounterValue, float64(st.Restarts), st.ID)
		}
	}
	if s.src.Controllers != nil {
		for _, c := range s.src.Controllers() {
			ch <- prometheus.MustNewConstMetric(ctrlRunning, prometheus.GaugeValue, bool01(c.Running), c.Name)
			ch <- prometheus.MustNewConstMetric(ctrlRuns, prometheus.CounterValue, float64(c.Runs), c.Name)
			ch <- prometheus.MustNewConstMetric(ctrlFailures, prometheus.CounterValue, float64(c.Failures), c.Name)
		}
	}
	if s.src.Resources != nil {
		for _, r := range s.src.Resources() {
			ch <- prometheus.MustNewConstMetric(resources, prometheus.GaugeValue, float64(r.Count), r.Namespace, r.Type)
		}
	}
	if s.src.LogBytes != nil {
		for name, n := range s.src.LogBytes() {
			ch <- prometheus.MustNewConstMetric(logBytes, prometheus.GaugeValue, float64(n), name)
		}
	}
}
