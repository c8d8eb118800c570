// Package ledgersink keeps a copy of the controller's ledger in an S3
// object store for long retention: one object per record, named by its
// sequence number (PREFIX/00000000000000000042.json), written once — never
// overwritten — so the store holds what the file held when it was shipped,
// whatever happens to the file or the cluster afterwards. Shipper follows
// the ledger file and ships what the store lacks; Store.Records reads the
// copy back in order for keyless evidence verify and export. Pair it with
// the bucket's own retention (S3 Object Lock in compliance mode, or your
// store's WORM setting) so that not even the store's admin can delete a
// record unseen.
package ledgersink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/keyless-cd/keyless/internal/ledger"
)

// Scheme is the sink URLs' scheme: s3://bucket/prefix.
const Scheme = "s3://"

// ErrConflict is a record already in the store with other content than
// the file's: the store's copy or the file was altered, or two controllers
// write one ledger.
var ErrConflict = errors.New("the store holds another record under this sequence number")

// Options configure New.
type Options struct {
	// URL is s3://bucket[/prefix].
	URL string
	// Endpoint is the S3 API's base URL (default: AWS's for Region). It
	// must be https:// unless AllowInsecureHTTP.
	Endpoint string
	// Region is the bucket's region. Default us-east-1.
	Region string
	// AccessKey and SecretKey, when set, are the credentials; otherwise the
	// AWS SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a
	// web identity token as on EKS, the shared config files).
	AccessKey, SecretKey string
	// AllowInsecureHTTP lets Endpoint be http:// (loopback tests).
	AllowInsecureHTTP bool
}

// Store is a ledger's copy in one bucket and prefix.
type Store struct {
	client *s3.Client
	bucket string
	prefix string
	where  string
}

// ParseURL splits s3://bucket/prefix; the prefix ends in "/" when set.
func ParseURL(raw string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(raw, Scheme)
	if !ok {
		return "", "", fmt.Errorf("ledger sink %q: want %sbucket/prefix", raw, Scheme)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" || strings.ContainsAny(bucket, "?#\\") {
		return "", "", fmt.Errorf("ledger sink %q: no bucket", raw)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	for _, seg := range strings.Split(strings.TrimSuffix(prefix, "/"), "/") {
		if seg == "." || seg == ".." {
			return "", "", fmt.Errorf("ledger sink %q: %q in the prefix", raw, seg)
		}
	}
	return bucket, prefix, nil
}

// New connects to the store (nothing is sent yet).
func New(ctx context.Context, opts Options) (*Store, error) {
	bucket, prefix, err := ParseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		switch {
		case err != nil:
			return nil, fmt.Errorf("ledger sink endpoint: %w", err)
		case u.Scheme != "https" && (u.Scheme != "http" || !opts.AllowInsecureHTTP):
			return nil, fmt.Errorf("ledger sink endpoint %q: want https://", opts.Endpoint)
		}
	}
	region := opts.Region
	if region == "" {
		region = "us-east-1"
	}
	loads := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if opts.AccessKey != "" {
		loads = append(loads, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("ledger sink: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// The bytes as stored, even when they no longer match the checksum
		// stored with them: the ledger's own hashes and signatures decide,
		// and name the record (an edit on the store's disk, say).
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
			o.UsePathStyle = true // most stores other than AWS name buckets in the path
		}
	})
	return &Store{client: client, bucket: bucket, prefix: prefix, where: Scheme + bucket + "/" + prefix}, nil
}

// String is the store's s3:// URL.
func (s *Store) String() string { return s.where }

// Key is the object name of record seq.
func (s *Store) Key(seq int64) string { return s.prefix + fmt.Sprintf("%020d", seq) + ".json" }

// Put writes record seq (its ledger line, without the newline) unless the
// store has it: an existing object with the same content is success, with
// other content ErrConflict.
func (s *Store) Put(ctx context.Context, seq int64, line []byte) error {
	key := s.Key(seq)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(line),
		ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*")})
	if err == nil {
		return nil
	}
	if !isStatus(err, "PreconditionFailed", "ConditionalRequestConflict") {
		return fmt.Errorf("writing %s%s: %w", s.where, key[len(s.prefix):], err)
	}
	have, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	if !bytes.Equal(have, line) {
		return fmt.Errorf("record %d at %s: %w", seq, s.where, ErrConflict)
	}
	return nil
}

// has reports whether record seq is in the store.
func (s *Store) has(ctx context.Context, seq int64) (bool, error) {
	key := s.Key(seq)
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	switch {
	case err == nil:
		return true, nil
	case isStatus(err, "NotFound", "NoSuchKey"):
		return false, nil
	}
	return false, fmt.Errorf("reading %s: %w", s.where, err)
}

// Next is the first sequence number the store lacks after its last record
// (1 for an empty store), found with O(log n) HEAD requests.
func (s *Store) Next(ctx context.Context) (int64, error) {
	hi := int64(1)
	for {
		ok, err := s.has(ctx, hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		hi *= 2
	}
	lo := hi / 2 // has(lo) or lo == 0
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		ok, err := s.has(ctx, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + 1, nil
}

// Records writes the store's records to w in order, one line each, as the
// ledger file holds them: what ledger.Verify reads. Objects under the
// prefix that are not records are named in an error (a store is not
// silently partial).
func (s *Store) Records(ctx context.Context, w io.Writer) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &s.prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing %s: %w", s.where, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			name := strings.TrimSuffix(strings.TrimPrefix(key, s.prefix), ".json")
			if _, err := strconv.ParseUint(name, 10, 63); err != nil || len(name) != 20 {
				return fmt.Errorf("%s holds %s, which is not a ledger record", s.where, key)
			}
			if aws.ToInt64(o.Size) > ledger.MaxLine {
				return fmt.Errorf("%s%s: larger than a record (%d bytes)", s.where, name, ledger.MaxLine)
			}
			data, err := s.get(ctx, key)
			if err != nil {
				return err
			}
			if _, err := w.Write(append(data, '\n')); err != nil {
				return err
			}
		}
	}
	return nil
}

// get reads one object, bounded by ledger.MaxLine.
func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("reading %s%s: %w", s.where, strings.TrimPrefix(key, s.prefix), err)
	}
	defer func() { _ = out.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(out.Body, ledger.MaxLine+1))
	if err != nil {
		return nil, err
	}
	if len(data) > ledger.MaxLine {
		return nil, fmt.Errorf("%s%s: larger than a record (%d bytes)", s.where, key, ledger.MaxLine)
	}
	return data, nil
}

// isStatus reports an API error with one of codes.
func isStatus(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}
