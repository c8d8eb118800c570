package controller

import (
	"context"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/engine"
)

// statusInventory keeps an Application's inventory in its status; the status
// is written (once, and only when changed) at the end of the reconcile.
type statusInventory struct {
	app *kv1.Application
}

func (s statusInventory) Load(context.Context) (*engine.Inventory, error) {
	return engine.NewInventory(inventoryRefs(s.app)), nil
}

func (s statusInventory) Save(_ context.Context, inv *engine.Inventory) error {
	entries := make([]kv1.InventoryEntry, 0, len(inv.Entries))
	for _, r := range inv.Entries {
		entries = append(entries, kv1.InventoryEntry{Group: r.Group, Version: r.Version, Kind: r.Kind, Name: r.Name})
	}
	s.app.Status.Inventory = entries
	return nil
}

// inventoryRefs returns the refs of the app's inventory (status.inventory).
func inventoryRefs(app *kv1.Application) []engine.ObjectRef {
	refs := make([]engine.ObjectRef, 0, len(app.Status.Inventory))
	for _, e := range app.Status.Inventory {
		refs = append(refs, engine.ObjectRef{Group: e.Group, Version: e.Version, Kind: e.Kind, Namespace: app.Namespace, Name: e.Name})
	}
	return refs
}
