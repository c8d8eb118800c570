package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Inventory is the set of objects applied last time, sorted by identity.
type Inventory struct {
	Entries []ObjectRef `json:"entries"`
}

// NewInventory returns the sorted, de-duplicated inventory of refs.
func NewInventory(refs []ObjectRef) *Inventory {
	seen := map[string]bool{}
	inv := &Inventory{}
	for _, r := range refs {
		if id := r.ID().String(); !seen[id] {
			seen[id] = true
			inv.Entries = append(inv.Entries, r)
		}
	}
	sort.Slice(inv.Entries, func(i, j int) bool { return inv.Entries[i].ID().String() < inv.Entries[j].ID().String() })
	return inv
}

// Equal reports whether both inventories hold the same objects and versions.
func (inv *Inventory) Equal(other *Inventory) bool {
	if len(inv.Entries) != len(other.Entries) {
		return false
	}
	for i := range inv.Entries {
		if inv.Entries[i] != other.Entries[i] {
			return false
		}
	}
	return true
}

// Minus returns the entries of inv whose identity (version ignored) is not in other.
func (inv *Inventory) Minus(other *Inventory) []ObjectRef {
	keep := map[string]bool{}
	for _, r := range other.Entries {
		keep[r.ID().String()] = true
	}
	var out []ObjectRef
	for _, r := range inv.Entries {
		if !keep[r.ID().String()] {
			out = append(out, r)
		}
	}
	return out
}

// InventoryStore loads and saves an inventory. The CLI keeps it in a
// ConfigMap (ConfigMapStore); the controller keeps it in Application status.
type InventoryStore interface {
	// Load returns the stored inventory, empty when there is none.
	Load(ctx context.Context) (*Inventory, error)
	// Save stores inv; it must make no write when inv is already stored.
	Save(ctx context.Context, inv *Inventory) error
}

// InventoryConfigMapPrefix prefixes the name of the ConfigMap holding an inventory.
const InventoryConfigMapPrefix = "keyless-inventory-"

const inventoryKey = "inventory.json"

// ConfigMapStore keeps an inventory in the ConfigMap keyless-inventory-<Name>
// in Namespace.
type ConfigMapStore struct {
	Client    client.Client
	Namespace string
	Name      string
}

// ValidateInventoryName checks that name can name an inventory (a DNS label,
// since it is also a label value).
func ValidateInventoryName(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("inventory name %q is invalid: %s", name, errs[0])
	}
	if len(InventoryConfigMapPrefix)+len(name) > validation.DNS1123SubdomainMaxLength {
		return fmt.Errorf("inventory name %q is too long", name)
	}
	return nil
}

func (s *ConfigMapStore) key() client.ObjectKey {
	return client.ObjectKey{Namespace: s.Namespace, Name: InventoryConfigMapPrefix + s.Name}
}

// Load implements InventoryStore.
func (s *ConfigMapStore) Load(ctx context.Context) (*Inventory, error) {
	cm := &corev1.ConfigMap{}
	if err := s.Client.Get(ctx, s.key(), cm); err != nil {
		if apierrors.IsNotFound(err) {
			return &Inventory{}, nil
		}
		return nil, fmt.Errorf("reading inventory ConfigMap %s: %w", s.key(), err)
	}
	inv := &Inventory{}
	if err := json.Unmarshal([]byte(cm.Data[inventoryKey]), inv); err != nil {
		return nil, fmt.Errorf("inventory ConfigMap %s: key %s: %w", s.key(), inventoryKey, err)
	}
	return NewInventory(inv.Entries), nil
}

// Save implements InventoryStore.
func (s *ConfigMapStore) Save(ctx context.Context, inv *Inventory) error {
	data, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encoding inventory: %w", err)
	}
	cm := &corev1.ConfigMap{}
	err = s.Client.Get(ctx, s.key(), cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Name: s.key().Name, Namespace: s.Namespace,
				Labels: map[string]string{ManagedByLabel: ManagedByValue, InventoryLabel: s.Name},
			},
			Data: map[string]string{inventoryKey: string(data)},
		}
		if err := s.Client.Create(ctx, cm); err != nil {
			return fmt.Errorf("creating inventory ConfigMap %s: %w", s.key(), err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading inventory ConfigMap %s: %w", s.key(), err)
	}
	if cm.Data[inventoryKey] == string(data) {
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[inventoryKey] = string(data)
	if err := s.Client.Update(ctx, cm); err != nil {
		return fmt.Errorf("updating inventory ConfigMap %s: %w", s.key(), err)
	}
	return nil
}
