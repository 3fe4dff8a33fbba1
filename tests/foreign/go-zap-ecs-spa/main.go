// Command storefront serves the storefront single-page app and its JSON API.
//
// Everything that is not under /api/ is the SPA: a file from the embedded
// web/ directory when one exists, otherwise index.html, so client-side routes
// (/cart, /orders/42, ...) survive a reload. Logs are ECS JSON (ecszap) on
// stdout; traces go over OTLP/HTTP, configured by the usual OTEL_* variables.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"go.elastic.co/ecszap"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const version = "1.4.2"

//go:embed web
var webFS embed.FS

func main() {
	addr := flag.String("addr", envOr("ADDR", ":8080"), "listen address")
	flag.Parse()

	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	if lv := os.Getenv("LOG_LEVEL"); lv != "" {
		_ = level.UnmarshalText([]byte(lv))
	}
	core := ecszap.NewCore(ecszap.NewDefaultEncoderConfig(), os.Stdout, level)
	logger := zap.New(core, zap.AddCaller()).With(zap.String("service.name", envOr("OTEL_SERVICE_NAME", "storefront")))
	defer logger.Sync() //nolint:errcheck
	zap.ReplaceGlobals(logger)

	if err := run(*addr, logger); err != nil {
		logger.Fatal("storefront stopped", zap.Error(err))
	}
}

func run(addr string, logger *zap.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	shutdownTracing, err := setupTracing(ctx, logger)
	if err != nil {
		return err
	}

	web, err := fs.Sub(webFS, "web")
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	api := newAPI(logger)
	mux.HandleFunc("GET /api/healthz", api.healthz)
	mux.HandleFunc("GET /api/items", api.listItems)
	mux.HandleFunc("GET /api/items/{id}", api.getItem)
	mux.HandleFunc("POST /api/orders", api.createOrder)
	mux.HandleFunc("/api/", api.notFound)
	mux.Handle("/", spa(web))

	srv := &http.Server{
		Addr:              addr,
		Handler:           otelhttp.NewHandler(accessLog(logger.Named("http"), mux), "storefront"),
		ReadHeaderTimeout: 5 * time.Second,
	}

	errc := make(chan error, 1)
	go func() {
		logger.Info("storefront listening", zap.String("server.address", addr), zap.String("service.version", version))
		errc <- srv.ListenAndServe()
	}()

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		logger.Info("shutting down")
	}

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown", zap.Error(err))
	}
	if err := shutdownTracing(sctx); err != nil {
		logger.Warn("tracer provider shutdown", zap.Error(err))
	}
	return nil
}

// setupTracing installs a batching tracer provider exporting OTLP/HTTP
// (protobuf); endpoint, headers and batching come from OTEL_* variables.
func setupTracing(ctx context.Context, logger *zap.Logger) (func(context.Context) error, error) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Error("opentelemetry", zap.Error(err))
	}))

	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("storefront"), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
	))
	return tp.Shutdown, nil
}

// spa serves the embedded files, and index.html for every other path.
func spa(web fs.FS) http.Handler {
	files := http.FileServerFS(web)
	index, err := fs.ReadFile(web, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(web, name); err == nil && !st.IsDir() {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				files.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index)
	})
}

type ctxKey struct{}

// accessLog writes one ECS record per request, correlated with the active
// OpenTelemetry span (the otelhttp server span: the ECS "transaction").
func accessLog(logger *zap.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sc := trace.SpanContextFromContext(r.Context())
		reqLog := logger
		if sc.IsValid() {
			reqLog = logger.With(
				zap.String("trace.id", sc.TraceID().String()),
				zap.String("transaction.id", sc.SpanID().String()),
			)
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), ctxKey{}, reqLog)))

		fields := []zap.Field{
			zap.String("http.request.method", r.Method),
			zap.String("url.path", r.URL.Path),
			zap.Int("http.response.status_code", rec.status),
			zap.Int64("http.response.body.bytes", rec.bytes),
			zap.Duration("event.duration", time.Since(start)),
			zap.String("user_agent.original", r.UserAgent()),
		}
		if sc.IsValid() {
			fields = append(fields, zap.String("span.id", sc.SpanID().String()))
		}
		if rec.status >= 500 {
			reqLog.Error("handled request", fields...)
		} else {
			reqLog.Info("handled request", fields...)
		}
	})
}

// logFor is the request's logger with the current span's id, for handlers.
func logFor(ctx context.Context) *zap.Logger {
	l, ok := ctx.Value(ctxKey{}).(*zap.Logger)
	if !ok {
		l = zap.L()
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		l = l.With(zap.String("span.id", sc.SpanID().String()))
	}
	return l
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
