package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"

	"github.com/keyless-cd/keyless/internal/render"
)

// Capabilities are what Helm's .Capabilities says of a cluster: its version
// and the API versions it serves ("group/version" and
// "group/version/Kind", as Argo CD passes them to helm template).
type Capabilities struct {
	KubeVersion string
	APIVersions []string
	// generation counts the changes the controller discovered (0: not
	// discovered).
	generation uint64
}

// ApplyTo fills the Helm capabilities of opts: a version the Application
// names (spec.source.helm.kubeVersion) wins, API versions are the union of
// the Application's and the cluster's.
func (c Capabilities) ApplyTo(opts *render.Options) {
	if opts.Helm.KubeVersion == "" {
		opts.Helm.KubeVersion = c.KubeVersion
	}
	if len(c.APIVersions) == 0 {
		return
	}
	all := slices.Concat(opts.Helm.APIVersions, c.APIVersions)
	slices.Sort(all)
	opts.Helm.APIVersions = slices.Compact(all)
}

// capabilitiesCache discovers the cluster's capabilities at most once per
// TTL; a failed discovery keeps the last good answer, and fails only when
// there is none (a chart rendered without the cluster's API versions could
// drop objects, and the sync prune them).
type capabilitiesCache struct {
	discovery discovery.DiscoveryInterface
	ttl       time.Duration

	mu      sync.Mutex
	caps    Capabilities
	fetched time.Time

	// seen is the generation each Application's last Helm render used.
	seen map[types.NamespacedName]uint64
}

func newCapabilitiesCache(d discovery.DiscoveryInterface, ttl time.Duration) *capabilitiesCache {
	return &capabilitiesCache{discovery: d, ttl: ttl, seen: map[types.NamespacedName]uint64{}}
}

// get returns the cluster's capabilities, discovering them when the last
// answer is older than the TTL.
func (c *capabilitiesCache) get(ctx context.Context) (Capabilities, error) {
	if c == nil || c.discovery == nil {
		return Capabilities{}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetched.IsZero() && time.Since(c.fetched) < c.ttl {
		return c.caps, nil
	}
	caps, err := discoverCapabilities(ctx, c.discovery)
	if err != nil {
		if !c.fetched.IsZero() {
			// The last good answer stands in (an unavailable aggregated
			// API, a slow server): retried at the next render.
			return c.caps, nil
		}
		return c.caps, err
	}
	caps.generation = c.caps.generation
	if caps.KubeVersion != c.caps.KubeVersion || !slices.Equal(caps.APIVersions, c.caps.APIVersions) {
		caps.generation++
	}
	c.caps, c.fetched = caps, time.Now()
	return caps, nil
}

// rendered records that app's last render was a Helm chart's with caps
// (helm: false forgets it: other renders do not read capabilities).
func (c *capabilitiesCache) rendered(app types.NamespacedName, caps Capabilities, helm bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if helm {
		c.seen[app] = caps.generation
	} else {
		delete(c.seen, app)
	}
}

// forget drops app (deleted).
func (c *capabilitiesCache) forget(app types.NamespacedName) { c.rendered(app, Capabilities{}, false) }

// changedFor reports whether the cluster's capabilities changed since app's
// last Helm render, so that a pass with no new commit renders it again (a
// CRD installed since may add objects). Only Applications whose last render
// was a chart ask discovery.
func (c *capabilitiesCache) changedFor(ctx context.Context, app types.NamespacedName) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	gen, ok := c.seen[app]
	c.mu.Unlock()
	if !ok {
		return false
	}
	caps, err := c.get(ctx)
	return err == nil && caps.generation != gen
}

// discoverCapabilities asks the API server for its version and resources.
// A group whose discovery failed (an unavailable aggregated API) is left
// out, as kubectl and Helm do.
func discoverCapabilities(ctx context.Context, d discovery.DiscoveryInterface) (Capabilities, error) {
	if err := ctx.Err(); err != nil {
		return Capabilities{}, err
	}
	v, err := d.ServerVersion()
	if err != nil {
		return Capabilities{}, fmt.Errorf("discovering the cluster's version: %w", err)
	}
	_, lists, err := d.ServerGroupsAndResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return Capabilities{}, fmt.Errorf("discovering the cluster's API versions: %w", err)
	}
	var versions []string
	for _, l := range lists {
		versions = append(versions, l.GroupVersion)
		for _, r := range l.APIResources {
			versions = append(versions, l.GroupVersion+"/"+r.Kind)
		}
	}
	slices.Sort(versions)
	return Capabilities{KubeVersion: v.GitVersion, APIVersions: slices.Compact(versions)}, nil
}
