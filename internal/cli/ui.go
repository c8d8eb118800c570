package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/approver"
	"github.com/keyless-cd/keyless/internal/controller"
	"github.com/keyless-cd/keyless/internal/ui"
)

type uiFlags struct {
	kubeFlags
	namespaces    []string
	allNamespaces bool
	addr          string
	allowedHosts  []string
	open          bool
	// controllerNamespace holds the pending out-of-namespace objects and
	// the approval records (the Approve button).
	controllerNamespace string
	// healthCheckExprs is the controller's --health-check-exprs file, so
	// the object tree judges custom resources as the controller does.
	healthCheckExprs string
}

func newUICommand(streams IOStreams) *cobra.Command {
	f := &uiFlags{}
	cmd := &cobra.Command{
		Use:   "ui [-n NAMESPACE | -A]",
		Short: "Serve a read-only dashboard of your Applications, as you, on loopback",
		Long: `Serve a dashboard on http://127.0.0.1:8390: the Applications you may list (sync,
health, revision, author, last sync), and for each its conditions, the object tree
with each object's status as the controller judges it (the Application's
spec.healthCheckExprs over --health-check-exprs over the built-in CEL library, then
kstatus: a custom resource shows Current, InProgress or Failed with its message), the diff while OutOfSync (Secret values masked), the
history with its audit records, and its Events. Pages update live; "stale" shows
when the watch behind them dropped.

Every read is made with your kubeconfig's identity (your OIDC login, say), so
Kubernetes RBAC decides what you see; nothing is written to disk and no credential
is sent to the browser. There are two writes, each shown only when the API server
says you may do it (SelfSubjectAccessReview): Sync now, when you may patch the
Application, does what ` + "`keyless sync`" + ` does; Approve, on an Application awaiting the
approval of its out-of-namespace objects (spec.syncPolicy.outOfNamespace: approve),
when you may patch the Application, write each pending object, delete each removed
one and write the approval record in --controller-namespace, and did not write the
revision yourself (four eyes), does what ` + "`keyless approve --yes`" + ` does, as you.

It listens on loopback only by default. With --addr on another interface anyone who
reaches the port reads, and may sync and approve, as you: keyless warns, and you should not.
To share it, let each viewer run their own.

Against DNS rebinding (a web page you open pointing its own name at this machine to
read the dashboard as you), it answers only to the Host names a browser cannot be
tricked into: the address it listens on, localhost on loopback, and this machine's
own IP addresses when bound to every address (0.0.0.0, ::). Any other name is
refused (421) unless allowed with --allowed-host NAME[:PORT] (repeatable; without a
port, the one listened on).`,
		Example: `  keyless ui -n myapp
  keyless ui -n team-a -n team-b --open
  keyless ui -A --addr 127.0.0.1:9000
  # reached through a name of your own (not recommended: see the warning)
  keyless ui -n myapp --addr 0.0.0.0:8390 --allowed-host dashboard.internal.example`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUI(cmd, streams, f)
		},
	}
	f.addKubeconfigFlags(cmd.Flags())
	cmd.Flags().StringSliceVarP(&f.namespaces, "namespace", "n", nil, "namespaces to show, repeatable or comma-separated (default the context's namespace)")
	cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "show every namespace (you must be allowed to list Applications cluster-wide)")
	cmd.Flags().StringVar(&f.addr, "addr", ui.DefaultAddr, "address to listen on (host:port); keep it on loopback")
	cmd.Flags().StringArrayVar(&f.allowedHosts, "allowed-host", nil, "a further Host NAME[:PORT] to answer to (repeatable; default port: the one listened on); other names are refused against DNS rebinding")
	cmd.Flags().BoolVar(&f.open, "open", false, "open the dashboard in the default browser")
	cmd.Flags().StringVar(&f.controllerNamespace, "controller-namespace", approver.DefaultControllerNamespace, "the controller's namespace, which holds the pending out-of-namespace objects and the approval records (the Approve button)")
	cmd.Flags().StringVar(&f.healthCheckExprs, "health-check-exprs", "", "the controller's --health-check-exprs file (CEL health entries over the built-in library, docs/health.md), so the object tree judges custom resources as the controller does")
	return cmd
}

func runUI(cmd *cobra.Command, streams IOStreams, f *uiFlags) error {
	cfg, err := f.restConfig()
	if err != nil {
		return err
	}
	if !f.allNamespaces && len(f.namespaces) == 0 {
		ns, err := f.targetNamespace()
		if err != nil {
			return fmt.Errorf("%w (or -A for all namespaces)", err)
		}
		f.namespaces = []string{ns}
	}
	exprs, err := readHealthCheckExprs(f.healthCheckExprs)
	if err != nil {
		return err
	}
	health, err := controller.DefaultHealth(exprs)
	if err != nil {
		return err
	}
	srv, err := ui.New(ui.Options{Config: cfg, Namespaces: f.namespaces, AllNamespaces: f.allNamespaces, Health: health,
		AllowedHosts: f.allowedHosts, ControllerNamespace: f.controllerNamespace, Logger: slog.New(slog.NewTextHandler(streams.ErrOut, nil))})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (choose another with --addr)", f.addr, err)
	}
	addr := l.Addr().String()
	if !ui.IsLoopback(addr) {
		_, _ = fmt.Fprintf(streams.ErrOut, `
WARNING: keyless ui listens on %s, which is not loopback.
WARNING: anyone who can reach this port reads your Applications, Events and diffs
WARNING: with YOUR Kubernetes identity, and may press Sync and Approve as you. Use --addr 127.0.0.1:PORT.
WARNING: Against DNS rebinding (a web page you open pointing its name at this machine
WARNING: to read the dashboard as you) only this machine's IP addresses are accepted
WARNING: as the Host; open it by a name with --allowed-host NAME[:PORT].

`, addr)
	}
	url := "http://" + addr + "/"
	_, _ = fmt.Fprintf(streams.ErrOut, "keyless ui: serving %s (namespaces: %s); Ctrl-C to stop\n", url, namespacesText(f))
	if f.open {
		openBrowser(streams, url)
	}
	return srv.Serve(cmd.Context(), l)
}

func namespacesText(f *uiFlags) string {
	if f.allNamespaces {
		return "all"
	}
	return fmt.Sprint(f.namespaces)
}

// openBrowser starts the platform's URL opener and does not wait for it.
func openBrowser(streams IOStreams, url string) {
	name, args := "xdg-open", []string{url}
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", url}
	}
	c := exec.Command(name, args...) //nolint:gosec // a fixed opener with our own loopback URL
	if err := c.Start(); err != nil {
		_, _ = fmt.Fprintf(streams.ErrOut, "could not open a browser (%v): open %s yourself\n", err, url)
		return
	}
	go func() { _ = c.Wait() }()
}
