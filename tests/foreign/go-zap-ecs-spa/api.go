package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
)

type item struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Price int    `json:"price_cents"`
	Stock int    `json:"stock"`
}

type orderRequest struct {
	ItemID   int    `json:"item_id"`
	Quantity int    `json:"quantity"`
	Email    string `json:"email"`
}

type order struct {
	ID       int64  `json:"id"`
	ItemID   int    `json:"item_id"`
	Quantity int    `json:"quantity"`
	Total    int    `json:"total_cents"`
	Status   string `json:"status"`
}

var tracer = otel.Tracer("example.com/storefront")

type api struct {
	log     *zap.Logger
	mu      sync.Mutex
	items   []item
	orderID atomic.Int64
}

func newAPI(log *zap.Logger) *api {
	a := &api{log: log, items: []item{
		{1, "Espresso beans 1 kg", 2490, 40},
		{2, "Pour-over kettle", 5900, 12},
		{3, "Ceramic dripper", 2200, 25},
	}}
	a.orderID.Store(1000)
	return a
}

// catalogue is a snapshot of the items.
func (a *api) catalogue() []item {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]item(nil), a.items...)
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": version})
}

func (a *api) listItems(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"items": a.catalogue()})
}

func (a *api) getItem(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "item not found"})
		return
	}
	for _, it := range a.catalogue() {
		if it.ID == id {
			writeJSON(w, http.StatusOK, it)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "item not found"})
}

func (a *api) createOrder(w http.ResponseWriter, r *http.Request) {
	var req orderRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		logFor(r.Context()).Warn("rejected order payload", zap.String("error.type", "invalid_json"))
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON body"})
		return
	}
	if req.Quantity <= 0 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "quantity must be positive"})
		return
	}

	ctx, span := tracer.Start(r.Context(), "reserve stock")
	span.SetAttributes(attribute.Int("storefront.item_id", req.ItemID), attribute.Int("storefront.quantity", req.Quantity))
	var found *item
	a.mu.Lock()
	for i := range a.items {
		if a.items[i].ID == req.ItemID && a.items[i].Stock >= req.Quantity {
			found = &a.items[i]
			found.Stock -= req.Quantity
			if found.Stock < 5 { // demo catalogue: restock
				found.Stock += 50
			}
			break
		}
	}
	var snapshot item
	if found != nil {
		snapshot = *found
	}
	a.mu.Unlock()
	if found == nil {
		span.End()
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "item unavailable"})
		return
	}
	o := order{ID: a.orderID.Add(1), ItemID: snapshot.ID, Quantity: req.Quantity, Total: snapshot.Price * req.Quantity, Status: "placed"}
	logFor(ctx).Info("order placed", zap.Int64("order.id", o.ID), zap.Int("order.item_id", o.ItemID), zap.Int("order.quantity", o.Quantity))
	span.End()
	writeJSON(w, http.StatusCreated, o)
}

func (a *api) notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such API route"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
