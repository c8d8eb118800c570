package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
)

// InProcess runs a keyless command line in this process, with vars (then the
// process environment) as its environment: how the demo plays a person or a
// CI job.
func InProcess(ctx context.Context, vars map[string]string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	code := Run(ctx, args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: getenv})
	return out.String(), errOut.String(), code
}
