// Command items-api is a small inventory API: net/http with Go 1.22 routing
// patterns, log/slog JSON logs, OpenTelemetry tracing exported over OTLP/gRPC,
// and Prometheus metrics on a separate admin port.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/time/rate"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the API listens on")
	metricsAddr := flag.String("metrics-addr", "127.0.0.1:9090", "address of the admin server (/metrics)")
	createRPS := flag.Float64("create-rps", 2, "POST /items: tokens added per second, per client")
	createBurst := flag.Int("create-burst", 10, "POST /items: bucket size, per client")
	flag.Parse()

	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	shutdownTracing, err := setupTracing(ctx)
	if err != nil {
		logger.Error("tracing setup failed", "error", err)
		os.Exit(1)
	}

	store := newStore()
	limiter := newClientLimiter(rate.Limit(*createRPS), *createBurst)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /items", store.list)
	mux.HandleFunc("GET /items/{id}", store.get)
	mux.Handle("POST /items", limiter.middleware(http.HandlerFunc(store.create)))

	srv := &http.Server{
		Addr:              *addr,
		Handler:           otelhttp.NewHandler(requestMiddleware(logger, mux), "items-api"),
		ReadHeaderTimeout: 5 * time.Second,
	}

	adminMux := http.NewServeMux()
	adminMux.Handle("GET /metrics", promhttp.Handler())
	admin := &http.Server{Addr: *metricsAddr, Handler: adminMux, ReadHeaderTimeout: 5 * time.Second}

	errs := make(chan error, 2)
	go func() { errs <- serve(logger, srv, "api") }()
	go func() { errs <- serve(logger, admin, "admin") }()

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-errs:
		logger.Error("server failed", "error", err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	_ = admin.Shutdown(shutdownCtx)
	if err := shutdownTracing(shutdownCtx); err != nil {
		logger.Error("tracer provider shutdown failed", "error", err)
	}
	logger.Info("stopped")
}

func serve(logger *slog.Logger, srv *http.Server, name string) error {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return err
	}
	logger.Info("listening", "server", name, "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// setupTracing installs the global tracer provider and propagator. The OTLP
// exporter and the resource read the standard OTEL_* environment variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_BSP_*).
func setupTracing(ctx context.Context) (func(context.Context) error, error) {
	exporter, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
	))
	return tp.Shutdown, nil
}

// ---- handlers ---------------------------------------------------------------

type Item struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

type store struct {
	mu     sync.RWMutex
	nextID int
	items  map[int]Item
}

func newStore() *store {
	s := &store{nextID: 1, items: map[int]Item{}}
	for _, it := range []Item{{Name: "keyboard", Price: 49.5}, {Name: "mouse", Price: 19.9}} {
		it.ID = s.nextID
		s.items[it.ID] = it
		s.nextID++
	}
	return s
}

func (s *store) list(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	out := make([]Item, 0, len(s.items))
	for id := 1; id < s.nextID; id++ {
		if it, ok := s.items[id]; ok {
			out = append(out, it)
		}
	}
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *store) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "id must be an integer"})
		return
	}
	s.mu.RLock()
	it, ok := s.items[id]
	s.mu.RUnlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "item not found"})
		return
	}
	writeJSON(w, http.StatusOK, it)
}

func (s *store) create(w http.ResponseWriter, r *http.Request) {
	var in Item
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil || in.Name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"name\": string, \"price\": number}"})
		return
	}
	s.mu.Lock()
	in.ID = s.nextID
	s.nextID++
	s.items[in.ID] = in
	s.mu.Unlock()
	loggerFrom(r.Context()).InfoContext(r.Context(), "item created", "item_id", in.ID)
	writeJSON(w, http.StatusCreated, in)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
