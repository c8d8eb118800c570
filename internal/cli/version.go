package cli

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/keyless-cd/keyless/internal/version"
)

type versionFlags struct {
	output string
}

func newVersionCommand(streams IOStreams) *cobra.Command {
	f := &versionFlags{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the keyless version and the Kubernetes version it is tested against",
		Example: `  keyless version
  keyless version -o json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runVersion(streams, f)
		},
	}
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runVersion(streams IOStreams, f *versionFlags) error {
	info := map[string]string{
		"keyless":    version.Version(),
		"kubernetes": version.KubernetesVersion(),
		"go":         runtime.Version(),
		"platform":   runtime.GOOS + "/" + runtime.GOARCH,
	}
	switch f.output {
	case "json":
		enc := json.NewEncoder(streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	case "text", "":
		_, err := fmt.Fprintf(streams.Out, "keyless %s\nkubernetes %s (local control plane and client)\ngo %s %s\n",
			info["keyless"], info["kubernetes"], info["go"], info["platform"])
		return err
	default:
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
}
