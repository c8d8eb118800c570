package clustertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyless-cd/keyless/internal/localcluster"
)

// RunMain starts a cluster shared by a test package (with API audit logging,
// see AuditLog), runs the tests and stops it. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.RunMain(m, &cluster)) }
func RunMain(m *testing.M, out **Cluster) int {
	dir, err := os.MkdirTemp("", "keyless-test-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	c, err := StartAudited(dir, localcluster.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest: starting local cluster:", err)
		return 1
	}
	defer c.Stop()
	*out = c
	return m.Run()
}

// Cluster is a local cluster with an API audit log.
type Cluster struct {
	*localcluster.Cluster
	// AuditLogPath is the apiserver's JSON audit log (every request, Metadata level).
	AuditLogPath string
}

// StartAudited starts a cluster in dir whose apiserver logs every request.
func StartAudited(dir string, opts localcluster.Options) (*Cluster, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		return nil, err
	}
	c := &Cluster{AuditLogPath: filepath.Join(dir, "audit.log")}
	if opts.Assets == "" {
		opts.Assets = Assets()
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(dir, "state")
	}
	opts.APIServerArgs = append(opts.APIServerArgs, "--audit-policy-file="+policy, "--audit-log-path="+c.AuditLogPath)
	lc, err := localcluster.Start(context.Background(), opts) //nolint:forbidigo // started from TestMain, before any test context exists
	if err != nil {
		return nil, err
	}
	c.Cluster = lc
	return c, nil
}
