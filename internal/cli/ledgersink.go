package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/keyless-cd/keyless/internal/ledgersink"
)

// sinkFlags name an S3 object store holding a copy of the ledger: where
// the controller ships it (keyless controller --ledger-sink) and where
// keyless evidence reads it from (an s3:// LEDGER).
type sinkFlags struct {
	endpoint, region string
}

// addFlags adds the store's flags with prefix ("ledger-sink-" for the
// controller, "" for evidence).
func (f *sinkFlags) addFlags(fl *pflag.FlagSet, prefix string) {
	fl.StringVar(&f.endpoint, prefix+"endpoint", "", "the S3 API's URL for an s3:// ledger (default AWS's for the region; MinIO, Ceph, versitygw, GCS's interoperability endpoint…); credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a web identity token or the shared AWS config")
	fl.StringVar(&f.region, prefix+"region", "", "the bucket's region for an s3:// ledger (default us-east-1)")
}

// options are the store's ledgersink.Options for url.
func (f *sinkFlags) options(url string, allowInsecureHTTP bool) *ledgersink.Options {
	return &ledgersink.Options{URL: url, Endpoint: f.endpoint, Region: f.region, AllowInsecureHTTP: allowInsecureHTTP}
}

// openLedger opens a ledger to read: a file, or an s3:// copy read back
// in order.
func openLedger(ctx context.Context, path string, f sinkFlags, allowInsecureHTTP bool) (io.ReadCloser, error) {
	if !strings.HasPrefix(path, ledgersink.Scheme) {
		if f.endpoint != "" || f.region != "" {
			return nil, errors.New("--endpoint and --region read an s3:// ledger, not a file")
		}
		return os.Open(path)
	}
	store, err := ledgersink.New(ctx, *f.options(path, allowInsecureHTTP))
	if err != nil {
		return nil, err
	}
	r, w := io.Pipe()
	go func() { w.CloseWithError(store.Records(ctx, w)) }()
	return r, nil
}

// checkSink refuses a sink without the ledger it copies.
func checkSink(sink, ledgerFile string) error {
	if sink != "" && ledgerFile == "" {
		return fmt.Errorf("--ledger-sink %s copies the ledger: it needs --ledger-file and --ledger-key-file", sink)
	}
	return nil
}
