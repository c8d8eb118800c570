package cli

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"

	"github.com/go-logr/logr"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/egress"
	"github.com/keyless-cd/keyless/internal/engine"
	"github.com/keyless-cd/keyless/internal/ledgersink"
	"github.com/keyless-cd/keyless/internal/oidc"
	"github.com/keyless-cd/keyless/internal/renderproc"
	"github.com/keyless-cd/keyless/internal/webhook"
)

// defaultMemoryLimit is the controller's soft Go heap limit unless GOMEMLIMIT is set.
const defaultMemoryLimit = 64 << 20

type controllerFlags struct {
	kubeconfig              string
	namespaces              []string
	metricsAddr             string
	probeAddr               string
	pprofAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	controllerNamespace     string
	shard                   string
	concurrency             int
	defaultInterval         time.Duration
	webhookAddr             string
	webhookSecretFile       string
	webhookGitHubFile       string
	webhookGitLabFile       string
	webhookTLSCert          string
	webhookTLSKey           string
	cacheDir                string
	cacheGCInterval         time.Duration
	renderLimits            renderLimitFlags
	renderSpare             bool
	allowInsecureHTTP       bool
	gitTimeout              time.Duration
	hookTimeout             time.Duration
	syncTimeout             time.Duration
	maxWaves                int
	perNamespace            int
	shardNamespaces         []string
	egressDenyCIDRs         []string
	egressAllowCIDRs        []string
	logLevel                string
	healthCheckExprs        string
	ledgerFile              string
	ledgerKeyFile           string
	ledgerSink              string
	ledgerSinkStore         sinkFlags
	trustPolicy             string
	trustedRoot             string
}

func newControllerCommand(streams IOStreams) *cobra.Command {
	f := &controllerFlags{}
	cmd := &cobra.Command{
		Use:   "controller --namespaces NS[,NS…]",
		Short: "Run the GitOps controller: sync Applications from Git into their own namespaces",
		Long: `Run the in-cluster controller. It watches Applications in --namespaces only
(nothing else is watched or cached), and for each one: checks the target revision
with an ls-remote every spec.interval (a webhook triggers at once), fetches only when
the commit moved, renders the path, and applies it into the Application's own
namespace impersonating spec.serviceAccountName (default keyless-deployer). Edits
and deletions of managed objects are seen through watches and reverted at once
when syncPolicy.automated.selfHeal is on.

Every sync is recorded in status.history, as a Kubernetes Event, and as one JSON
line on stdout ({"audit":"keyless.dev/sync","app":…,"revision":…,"author":…}).
Logs go to stderr. It needs no ClusterRole: see config/install.`,
		Example: `  keyless controller --namespaces shop,blog --webhook-bind-address :9292 \
      --webhook-secret-file /etc/keyless/webhook/secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runController(cmd, streams, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for the controller's own identity (default: in-cluster ServiceAccount, else $KUBECONFIG)")
	fl.StringSliceVar(&f.namespaces, "namespaces", nil, "namespaces to manage (required; comma-separated)")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", `Prometheus metrics address ("0" disables)`)
	fl.StringVar(&f.logLevel, "log-level", "info", "log verbosity: debug, info or error (as Flux's controllers)")
	fl.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", `/healthz and /readyz address ("0" disables)`)
	fl.StringVar(&f.pprofAddr, "pprof-bind-address", "", `Go /debug/pprof address for diagnosing the controller, e.g. 127.0.0.1:6060 (default off; a heap profile holds decrypted Secrets: loopback only)`)
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "run one active replica (a Lease in the controller's namespace)")
	fl.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader Lease (default $POD_NAMESPACE, else the first of --namespaces)")
	fl.StringVar(&f.controllerNamespace, "controller-namespace", "", "the controller's own namespace, where approvals of out-of-namespace objects are recorded (default $POD_NAMESPACE; never one of --namespaces)")
	fl.StringVar(&f.shard, "shard", "", "own only the Applications labelled "+kv1.ShardLabel+"=SHARD (default: those without the label); one Lease per shard")
	fl.StringArrayVar(&f.shardNamespaces, "shard-namespaces", nil, "for the unsharded controller: the namespaces shard KEY serves, as KEY=NS[;NS…] (repeat per shard; run that shard with the same --namespaces); an Application labelled for a shard that does not serve its namespace is then reported (Stalled, ShardRefused) instead of left alone")
	fl.IntVar(&f.concurrency, "concurrency", 4, "Applications reconciled at once")
	fl.IntVar(&f.perNamespace, "max-concurrent-per-namespace", 0, "workers one namespace's Applications may hold while another namespace's wait (default half of --concurrency, at least 1; a namespace alone uses them all)")
	fl.DurationVar(&f.defaultInterval, "default-interval", 3*time.Minute, "check interval for Applications without spec.interval")
	fl.StringVar(&f.webhookAddr, "webhook-bind-address", "", "address for POST /hooks/github and /hooks/gitlab (empty disables)")
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding one secret for both /hooks/github (HMAC key) and /hooks/gitlab (token); prefer the two flags below")
	fl.StringVar(&f.webhookGitHubFile, "webhook-github-secret-file", "", "file holding the HMAC key of /hooks/github")
	fl.StringVar(&f.webhookGitLabFile, "webhook-gitlab-token-file", "", "file holding the token of /hooks/gitlab")
	fl.StringVar(&f.webhookTLSCert, "webhook-tls-cert-file", "", "serve the webhook listener over HTTPS with this certificate (PEM)")
	fl.StringVar(&f.webhookTLSKey, "webhook-tls-key-file", "", "private key (PEM) of --webhook-tls-cert-file")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "Git cache folder (default a temporary directory)")
	fl.DurationVar(&f.cacheGCInterval, "cache-gc-interval", 10*time.Minute, "how often the cache of repositories no Application reads any more is deleted")
	f.renderLimits.addFlags(fl)
	fl.BoolVar(&f.renderSpare, "render-spare", true, "keep one render process started and initialised between renders, under the same limits, so a push's render does not wait for a process to start (false: start one per render)")
	fl.DurationVar(&f.gitTimeout, "git-timeout", 60*time.Second, "deadline of each ls-remote and fetch (a Git server that never answers holds a worker no longer)")
	fl.DurationVar(&f.hookTimeout, "hook-timeout", engine.DefaultStepTimeout, "how long each wave's objects and hooks (a migration Job…) may take to become ready before a sync stops; a sync holds one of --concurrency workers while it waits")
	fl.DurationVar(&f.syncTimeout, "sync-timeout", controller.DefaultSyncTimeout, "how long one sync's apply (every wave, hook and the prune) may take before it stops and is retried with backoff; at least --hook-timeout")
	fl.IntVar(&f.maxWaves, "max-waves", controller.DefaultMaxWaves, "a render with more waves than this (phases × sync waves, SyncFail hooks included) is refused before anything is written")
	fl.StringVar(&f.healthCheckExprs, "health-check-exprs", "", "YAML file of controller-wide CEL health entries in Flux's healthCheckExprs format (a list of apiVersion, kind, current, inProgress, failed): over the built-in library, under each Application's spec.healthCheckExprs (docs/health.md)")
	fl.StringVar(&f.ledgerFile, "ledger-file", "", "append a signed, hash-chained record of every sync to this file (keep it on a volume no namespace admin reaches; verify with keyless evidence verify)")
	fl.StringVar(&f.ledgerKeyFile, "ledger-key-file", "", "the ed25519 private key (PKCS#8 PEM, e.g. openssl genpkey -algorithm ed25519) that signs --ledger-file's records")
	fl.StringVar(&f.ledgerSink, "ledger-sink", "", "s3://bucket/prefix: also copy every ledger record, one object each and never overwritten, to this S3 object store for long retention (keyless evidence verify s3://… reads it back)")
	f.ledgerSinkStore.addFlags(fl, "ledger-sink-")
	fl.BoolVar(&f.allowInsecureHTTP, "allow-insecure-http", false, "let Git credentials travel over plain http:// (loopback tests and demos only; never in production)")
	fl.StringVar(&f.trustPolicy, "trust-policy", "", "the FederationPolicy (keyless oidc's policy file): the OCI artifacts deployed into a namespace it names must be signed by one of its pipelines for that namespace (docs/oidc.md)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "Sigstore trusted root (trusted_root.json: Sigstore's public one, or your private Fulcio's, timestamp authority's and Rekor's) that keyless artifact signatures are checked against")
	fl.StringSliceVar(&f.egressDenyCIDRs, "egress-deny-cidrs", nil, "CIDRs the controller never sends commit statuses or notifications to, besides the built-in refusals: set the cluster's pod and service ranges (e.g. 10.244.0.0/16,10.96.0.0/12) and the nodes' range")
	fl.StringSliceVar(&f.egressAllowCIDRs, "egress-allow-cidrs", nil, "CIDRs let through although --egress-deny-cidrs or a default refusal (100.64.0.0/10, fc00::/7, 64:ff9b:1::/48) covers them, e.g. a forge inside the cluster; never opens loopback, link-local or cloud metadata addresses")
	return cmd
}

func runController(cmd *cobra.Command, streams IOStreams, f *controllerFlags) error {
	if len(f.namespaces) == 0 {
		return fmt.Errorf("--namespaces is required: keyless manages only the namespaces it is given")
	}
	shards, err := controller.ParseShardNamespaces(f.shardNamespaces)
	if err != nil {
		return err
	}
	denyCIDRs, err := egress.ParseCIDRs("--egress-deny-cidrs", f.egressDenyCIDRs)
	if err != nil {
		return err
	}
	allowCIDRs, err := egress.ParseCIDRs("--egress-allow-cidrs", f.egressAllowCIDRs)
	if err != nil {
		return err
	}
	healthExprs, err := readHealthCheckExprs(f.healthCheckExprs)
	if err != nil {
		return err
	}
	ledgerKey, err := readLedgerKey(f.ledgerFile, f.ledgerKeyFile)
	if err != nil {
		return err
	}
	if err := checkSink(f.ledgerSink, f.ledgerFile); err != nil {
		return err
	}
	trustPolicy, trustedRoot, err := readTrust(f.trustPolicy, f.trustedRoot)
	if err != nil {
		return err
	}
	cfg, err := controllerConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	secrets := map[string][]byte{}
	for flag, file := range map[string]string{"--webhook-secret-file": f.webhookSecretFile, "--webhook-github-secret-file": f.webhookGitHubFile, "--webhook-gitlab-token-file": f.webhookGitLabFile} {
		if file == "" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("reading %s: %w", flag, err)
		}
		b = bytes.TrimSpace(b)
		if err := webhook.CheckSecret(b); err != nil {
			return fmt.Errorf("%s %s: %w", flag, file, err)
		}
		secrets[flag] = b
	}
	if f.webhookAddr != "" && len(secrets) == 0 {
		_, _ = fmt.Fprintln(streams.ErrOut, "note: no controller-wide webhook secret; only /hooks/<forge>/<namespace> paths (each namespace's keyless-webhook Secret) are served")
	}
	leNS := f.leaderElectionNamespace
	if leNS == "" {
		leNS = os.Getenv("POD_NAMESPACE")
	}
	ctrlNS := f.controllerNamespace
	if ctrlNS == "" {
		ctrlNS = os.Getenv("POD_NAMESPACE")
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft heap limit keeps the resident set small at 100+ Applications;
		// set GOMEMLIMIT to override.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	level, err := parseLogLevel(f.logLevel)
	if err != nil {
		return err
	}
	logger := logr.FromSlogHandler(slog.NewJSONHandler(streams.ErrOut, &slog.HandlerOptions{Level: level}))
	return controller.Run(cmd.Context(), cfg, controller.Options{
		Namespaces: f.namespaces, MetricsBindAddress: f.metricsAddr, HealthProbeBindAddress: f.probeAddr, PprofBindAddress: f.pprofAddr,
		LeaderElect: f.leaderElect, LeaderElectionNamespace: leNS, ControllerNamespace: ctrlNS, HealthCheckExprs: healthExprs, LedgerFile: f.ledgerFile, LedgerKey: ledgerKey, LedgerSink: f.sink(), Shard: f.shard, Concurrency: f.concurrency,
		DefaultInterval: f.defaultInterval, WebhookBindAddress: f.webhookAddr, WebhookSecret: secrets["--webhook-secret-file"],
		WebhookGitHubSecret: secrets["--webhook-github-secret-file"], WebhookGitLabToken: secrets["--webhook-gitlab-token-file"],
		WebhookTLSCertFile: f.webhookTLSCert, WebhookTLSKeyFile: f.webhookTLSKey,
		CacheDir: f.cacheDir, CacheGCInterval: f.cacheGCInterval, AuditOut: streams.Out, Logger: logger,
		Render: f.renderOptions(), AllowInsecureHTTP: f.allowInsecureHTTP, TrustPolicy: trustPolicy, TrustedRoot: trustedRoot,
		GitTimeout: f.gitTimeout, HookTimeout: f.hookTimeout, SyncTimeout: f.syncTimeout, MaxWaves: f.maxWaves, MaxConcurrentPerNamespace: f.perNamespace, ShardNamespaces: shards, EgressDenyCIDRs: denyCIDRs, EgressAllowCIDRs: allowCIDRs,
	})
}

// controllerConfig is --kubeconfig, else in-cluster, else the default loading rules.
func controllerConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	kf := kubeFlagsFor(kubeconfig)
	return kf.restConfig()
}

// parseLogLevel maps --log-level to slog's levels. debug also shows logr's
// V(1)… lines (slog levels below Info).
func parseLogLevel(v string) (slog.Level, error) {
	switch v {
	case "debug":
		return slog.LevelDebug - 4, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: want debug, info or error", v)
}

// readTrust reads --trust-policy and --trusted-root; a policy naming
// pipelines needs a trusted root.
func readTrust(policyFile, rootFile string) (*oidc.FederationPolicy, *root.TrustedRoot, error) {
	var p *oidc.FederationPolicy
	var tr *root.TrustedRoot
	var err error
	if policyFile != "" {
		if p, err = oidc.LoadPolicy(policyFile); err != nil {
			return nil, nil, fmt.Errorf("--trust-policy: %w", err)
		}
	}
	if rootFile != "" {
		if tr, err = root.NewTrustedRootFromPath(rootFile); err != nil {
			return nil, nil, fmt.Errorf("--trusted-root %s: %w", rootFile, err)
		}
	}
	if p != nil && tr == nil {
		return nil, nil, errors.New("--trust-policy needs --trusted-root: the Sigstore trusted root its pipelines' certificates are checked against")
	}
	return p, tr, nil
}

// renderOptions are the render children's limits, with --render-spare.
func (f *controllerFlags) renderOptions() renderproc.Options {
	o := f.renderLimits.options()
	o.Spare = f.renderSpare
	return o
}

// sink is the ledger's object store (nil: none).
func (f *controllerFlags) sink() *ledgersink.Options {
	if f.ledgerSink == "" {
		return nil
	}
	return f.ledgerSinkStore.options(f.ledgerSink, f.allowInsecureHTTP)
}
