package controller

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

// ReasonShardRefused is the reason of an Application labelled for a shard that does
// not serve its namespace (the cluster admin decides which namespaces each
// shard serves, not whoever labels an Application).
const ReasonShardRefused = "ShardRefused"

// ShardNamespaces says which namespaces each shard serves: the cluster
// admin's decision, given to the unsharded controller
// (`--shard-namespaces KEY=NS[;NS…]`); each shard runs with those
// namespaces as its --namespaces.
type ShardNamespaces map[string][]string

// ParseShardNamespaces reads `KEY=NS[;NS…]` values (one per shard).
func ParseShardNamespaces(values []string) (ShardNamespaces, error) {
	out := ShardNamespaces{}
	for _, v := range values {
		key, list, ok := strings.Cut(v, "=")
		if !ok || list == "" || key == "" {
			return nil, fmt.Errorf("--shard-namespaces %q: want KEY=NS[;NS…]", v)
		}
		if err := ValidateShard(key); err != nil {
			return nil, fmt.Errorf("--shard-namespaces %q: %w", v, err)
		}
		for _, ns := range strings.Split(list, ";") {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return nil, fmt.Errorf("--shard-namespaces %q: namespace %q: %s", v, ns, strings.Join(errs, "; "))
			}
			out[key] = append(out[key], ns)
		}
	}
	return out, nil
}

// serving returns the shards that serve ns, sorted.
func (s ShardNamespaces) serving(ns string) []string {
	var out []string
	for shard, nss := range s {
		if slices.Contains(nss, ns) {
			out = append(out, shard)
		}
	}
	sort.Strings(out)
	return out
}

// applicationCache is the cache of Applications of a controller: those
// of its shard (shardSelector); for the unsharded controller given
// shards, per namespace also those labelled for a shard that does not
// serve the namespace — reported (ReasonShardRefused), never synced.
func applicationCache(shard string, namespaces []string, shards ShardNamespaces) cache.ByObject {
	by := cache.ByObject{Transform: dropManagedFields}
	if shard != "" || len(shards) == 0 {
		by.Label = shardSelector(shard)
		return by
	}
	by.Namespaces = map[string]cache.Config{}
	for _, ns := range namespaces {
		sel := labels.Everything()
		if served := shards.serving(ns); len(served) > 0 {
			req, err := labels.NewRequirement(kv1.ShardLabel, selection.NotIn, served)
			if err != nil {
				panic(err) // ParseShardNamespaces validated every key
			}
			sel = labels.NewSelector().Add(*req)
		}
		by.Namespaces[ns] = cache.Config{LabelSelector: sel}
	}
	return by
}

// shardLabelChanged passes an update that changed an Application's shard
// label: one relabelled within what this controller's cache holds (a shard
// that does not serve the namespace) is reported at once.
var shardLabelChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	return e.ObjectOld.GetLabels()[kv1.ShardLabel] != e.ObjectNew.GetLabels()[kv1.ShardLabel]
}}

// shardRefusal says why app, seen by this controller, is not for it ("":
// it is): labelled for a shard that does not serve its namespace.
func (r *ApplicationReconciler) shardRefusal(app *kv1.Application) string {
	shard, labelled := app.Labels[kv1.ShardLabel]
	if !labelled || shard == r.shard || r.shard != "" {
		return ""
	}
	served := r.shards.serving(app.Namespace)
	return fmt.Sprintf("labelled %s=%s, but shard %q does not serve namespace %s (shards serving it: %v; the cluster admin sets them with the controller's --shard-namespaces): remove the label, or ask the cluster admin",
		kv1.ShardLabel, shard, shard, app.Namespace, served)
}
