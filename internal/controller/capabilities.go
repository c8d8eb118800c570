package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/discovery"

	"github.com/keyless-cd/keyless/internal/render"
)

// capabilitiesTTL is how long the cluster's version and API versions are
// reused before discovery is asked again: a CRD installed by an approval
// shows in a chart's .Capabilities.APIVersions within it.
const capabilitiesTTL = time.Minute

// Capabilities are what Helm's .Capabilities says of a cluster: its version
// and the API versions it serves ("group/version" and
// "group/version/Kind", as Argo CD passes them to helm template).
type Capabilities struct {
	KubeVersion string
	APIVersions []string
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
// TTL; a failed discovery keeps the last good answer (or none: the render
// then uses the Kubernetes version keyless is built against).
type capabilitiesCache struct {
	discovery discovery.DiscoveryInterface
	ttl       time.Duration
	now       func() time.Time

	mu      sync.Mutex
	caps    Capabilities
	fetched time.Time
}

func newCapabilitiesCache(d discovery.DiscoveryInterface) *capabilitiesCache {
	return &capabilitiesCache{discovery: d, ttl: capabilitiesTTL, now: time.Now}
}

// get returns the cluster's capabilities, discovering them when the last
// answer is older than the TTL.
func (c *capabilitiesCache) get(ctx context.Context) (Capabilities, error) {
	if c == nil || c.discovery == nil {
		return Capabilities{}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetched.IsZero() && c.now().Sub(c.fetched) < c.ttl {
		return c.caps, nil
	}
	caps, err := discoverCapabilities(ctx, c.discovery)
	if err != nil {
		return c.caps, err
	}
	c.caps, c.fetched = caps, c.now()
	return caps, nil
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
