package objstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 defaults.
const (
	DefaultPartSize    = 8 << 20 // bytes per multipart part and the single-PUT threshold
	DefaultConcurrency = 4       // parts in flight per Put
	MinPartSize        = 5 << 20 // S3's lower limit for every part but the last
	maxParts           = 10000   // S3's upper limit of parts per upload
	deleteBatch        = 1000    // S3's upper limit of keys per DeleteObjects
)

// S3Options configure NewS3. Only Bucket is required.
type S3Options struct {
	Endpoint        string // URL of an S3-compatible service; empty means AWS
	Region          string // "" or "auto" picks one from Provider and Endpoint
	Bucket          string
	Prefix          string // key prefix inside the bucket ("vaultwarden")
	AccessKeyID     string
	SecretAccessKey string
	ForcePathStyle  bool   // bucket in the URL path instead of the host name
	Provider        string // rclone-style S3_PROVIDER: AWS, Cloudflare, Minio, Backblaze, Wasabi, Other...
	CAPEM           []byte // extra root CAs, PEM (the contents of S3_CA_FILE or AWS_CA_BUNDLE)
	PartSize        int64  // DefaultPartSize when 0; at least MinPartSize
	Concurrency     int    // DefaultConcurrency when 0
	// CopyPartsAbove: a Copy of a larger source is a multipart upload of part
	// copies; 5 GiB (the largest source of one CopyObject on AWS) when 0.
	CopyPartsAbove int64
	Logger         *slog.Logger
	HTTPClient     *http.Client // replaces the client NewS3 builds (CAPEM is then ignored)
}

// S3 is a Store in an S3 bucket under a key prefix.
type S3 struct {
	client      *s3.Client
	bucket      string
	prefix      string // "" or ending in "/"
	endpoint    string // for messages: the URL requests go to
	partSize    int64
	concurrency int
	copyAbove   int64 // S3Options.CopyPartsAbove
	log         *slog.Logger
	retry       retrier
	buffers     *bufferPool

	bucketOK        atomic.Bool // the bucket was seen to exist
	noDeleteObjects atomic.Bool // the service lacks DeleteObjects
}

var _ Store = (*S3)(nil)

// awsRegionHost extracts the region from well-known endpoint host names
// (s3.eu-west-1.amazonaws.com, s3.eu-central-1.wasabisys.com,
// s3.us-west-004.backblazeb2.com).
var awsRegionHost = regexp.MustCompile(`(?:^|\.)s3[.-]([a-z0-9-]+)\.(?:amazonaws\.com|wasabisys\.com|backblazeb2\.com)$`)

// NewS3 builds a client for the bucket. It does not contact the service;
// the first operation reports an unreachable endpoint or bad credentials.
//
// Provider quirks handled (Provider is matched case-insensitively):
//   - Cloudflare: region "auto" unless one is given (R2 signs with it).
//   - AWS, Wasabi, Backblaze: the region is read from endpoint host names such
//     as s3.eu-west-1.amazonaws.com when Region is "" or "auto".
//   - Any provider with an Endpoint (Minio, Ceph, Backblaze, Other, ...) uses
//     path-style URLs, as rclone does, except AWS, Alibaba, TencentCOS, Qiniu,
//     Netease and HuaweiOBS, which want virtual hosts; ForcePathStyle forces it.
//   - Services that keep no checksums (HeadObject returns none) are trusted
//     with the signed SHA-256 payload hash they verified on upload.
//   - Services without DeleteObjects get one DeleteObject per key.
func NewS3(ctx context.Context, opts S3Options) (*S3, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3: no bucket given")
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize {
		return nil, fmt.Errorf("s3: part size %d is below the S3 minimum of %d bytes", opts.PartSize, MinPartSize)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var endpointHost string
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("s3: endpoint %q is not an http(s) URL", opts.Endpoint)
		}
		endpointHost = u.Hostname()
	}
	provider := strings.ToLower(opts.Provider)

	region := opts.Region
	if region == "" || region == "auto" {
		switch {
		case provider == "cloudflare":
			region = "auto" // R2 signs with "auto"
		case awsRegionHost.MatchString(endpointHost):
			region = awsRegionHost.FindStringSubmatch(endpointHost)[1]
		default:
			region = "us-east-1"
		}
	}

	// Services other than AWS (and a few that insist on virtual hosts) are
	// reached most reliably with path-style URLs: no wildcard DNS or
	// certificate for bucket.host is needed. This matches rclone's defaults.
	pathStyle := opts.ForcePathStyle
	if opts.Endpoint != "" {
		switch provider {
		case "aws", "alibaba", "tencentcos", "qiniu", "netease", "huaweiobs":
		default:
			pathStyle = true
		}
	}

	httpClient := opts.HTTPClient
	if httpClient == nil {
		var err error
		if httpClient, err = newHTTPClient(opts.CAPEM, opts.Concurrency); err != nil {
			return nil, err
		}
	}

	var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
	if opts.AccessKeyID != "" || opts.SecretAccessKey != "" {
		creds = credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, "")
	}
	// Options are given explicitly instead of through config.LoadDefaultConfig,
	// whose shared-config loading reads AWS_* variables and fails outright when
	// AWS_CA_BUNDLE names a file it cannot use.
	s3opts := s3.Options{
		Region:       region,
		Credentials:  creds,
		HTTPClient:   httpClient,
		UsePathStyle: pathStyle,
		// Retries are ours (retry.go), from buffers we can replay; the SDK's
		// retryer would multiply the attempts.
		Retryer: aws.NopRetryer{},
		// We compute and send checksums ourselves; the SDK adds one only where
		// the API demands it (DeleteObjects).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		AppID:                      "vwstream",
	}
	if opts.Endpoint != "" {
		s3opts.BaseEndpoint = aws.String(opts.Endpoint)
	}
	s := &S3{
		client:      s3.New(s3opts),
		bucket:      opts.Bucket,
		prefix:      normPrefix(opts.Prefix),
		endpoint:    opts.Endpoint,
		partSize:    opts.PartSize,
		concurrency: opts.Concurrency,
		copyAbove:   opts.CopyPartsAbove,
		log:         opts.Logger.With("store", "s3", "bucket", opts.Bucket),
	}
	if s.copyAbove <= 0 {
		s.copyAbove = maxCopyObject
	}
	if s.endpoint == "" {
		s.endpoint = "https://s3." + region + ".amazonaws.com"
	}
	s.retry = retrier{
		attempts:  DefaultRetryAttempts,
		base:      DefaultRetryBase,
		cap:       DefaultRetryCap,
		transient: isTransient,
		onRetry: func(attempt int, wait time.Duration, err error) {
			s.log.Warn("s3 request failed, retrying", "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", s.describe(err))
		},
	}
	s.buffers = newBufferPool(int(s.partSize), s.concurrency+1)
	_ = ctx
	return s, nil
}

// newHTTPClient builds the transport: the system roots plus caFile's, short
// dial and TLS timeouts so a dead endpoint fails fast, and enough idle
// connections for the parts in flight.
func newHTTPClient(caPEM []byte, concurrency int) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	// A server that accepts the connection and then says nothing (frozen,
	// or a partition dropping packets) would otherwise hold a request until
	// TCP gives up, minutes later; this makes it a retried, reported error.
	tr.ResponseHeaderTimeout = 30 * time.Second
	tr.MaxIdleConnsPerHost = 2 * concurrency
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("s3: the CA bundle holds no PEM certificate")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

func normPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// String names the bucket, prefix and endpoint, never a credential.
func (s *S3) String() string {
	return fmt.Sprintf("s3://%s/%s (%s)", s.bucket, strings.TrimSuffix(s.prefix, "/"), s.endpoint)
}

// Client exposes the SDK client for the few callers that need raw access
// (the Litestream replica client is configured from the same options).
func (s *S3) Client() *s3.Client { return s.client }

func (s *S3) fullKey(key string) string { return s.prefix + key }

// Get opens key at offset with a Range request; see Store.Get.
func (s *S3) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, offset)
	}
	if length == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, fmt.Errorf("get: %w", err)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.fullKey(key))}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	var out *s3.GetObjectOutput
	err := s.retry.do(ctx, func(ctx context.Context) (err error) {
		out, err = s.client.GetObject(ctx, in)
		return err
	})
	if err != nil {
		if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			// The object exists but ends before offset: nothing to read.
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, s.classify(ctx, "get", key, err)
	}
	return out.Body, nil
}

// Stat describes key with a HEAD request; see Store.Stat.
func (s *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat: %w", err)
	}
	out, err := s.head(ctx, key, false)
	if err != nil {
		return ObjectInfo{}, s.classify(ctx, "stat", key, err)
	}
	return ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified), ETag: unquote(aws.ToString(out.ETag))}, nil
}

func (s *S3) head(ctx context.Context, key string, checksums bool) (*s3.HeadObjectOutput, error) {
	in := &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.fullKey(key))}
	if checksums {
		in.ChecksumMode = types.ChecksumModeEnabled
	}
	var out *s3.HeadObjectOutput
	err := s.retry.do(ctx, func(ctx context.Context) (err error) {
		out, err = s.client.HeadObject(ctx, in)
		return err
	})
	return out, err
}

// List yields objects under prefix page by page (ListObjectsV2); see Store.List.
func (s *S3) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := checkPrefix(prefix); err != nil {
			yield(ObjectInfo{}, fmt.Errorf("list: %w", err))
			return
		}
		in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix + prefix)}
		for {
			var page *s3.ListObjectsV2Output
			err := s.retry.do(ctx, func(ctx context.Context) (err error) {
				page, err = s.client.ListObjectsV2(ctx, in)
				return err
			})
			if err != nil {
				yield(ObjectInfo{}, s.classify(ctx, "list", prefix, err))
				return
			}
			for _, o := range page.Contents {
				info := ObjectInfo{
					Key:     strings.TrimPrefix(aws.ToString(o.Key), s.prefix),
					Size:    aws.ToInt64(o.Size),
					ModTime: aws.ToTime(o.LastModified),
					ETag:    unquote(aws.ToString(o.ETag)),
				}
				if !yield(info, nil) {
					return
				}
			}
			if !aws.ToBool(page.IsTruncated) {
				return
			}
			switch {
			case page.NextContinuationToken != nil:
				in.ContinuationToken = page.NextContinuationToken
			case len(page.Contents) > 0:
				// A service that truncates without a token: go on after the
				// last key rather than end a listing that is not complete.
				in.ContinuationToken, in.StartAfter = nil, page.Contents[len(page.Contents)-1].Key
			default:
				yield(ObjectInfo{}, fmt.Errorf("s3: list %s: the service says the listing is truncated but gives no way to continue", prefix))
				return
			}
		}
	}
}

// Delete removes keys with DeleteObjects in batches, or one by one where the
// service does not implement it; see Store.Delete.
func (s *S3) Delete(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := CheckKey(key); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), deleteBatch)
		batch := keys[:n]
		keys = keys[n:]
		if !s.noDeleteObjects.Load() {
			err := s.deleteBatch(ctx, batch)
			if err == nil {
				continue
			}
			if !isNotImplemented(err) {
				return err
			}
			s.log.Info("s3 service lacks DeleteObjects, deleting one by one")
			s.noDeleteObjects.Store(true)
		}
		for _, key := range batch {
			err := s.retry.do(ctx, func(ctx context.Context) error {
				_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.fullKey(key))})
				return err
			})
			if err != nil && !isNotFound(err) {
				return s.classify(ctx, "delete", key, err)
			}
		}
	}
	return nil
}

func (s *S3) deleteBatch(ctx context.Context, keys []string) error {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(s.fullKey(k))}
	}
	in := &s3.DeleteObjectsInput{Bucket: &s.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}}
	var out *s3.DeleteObjectsOutput
	err := s.retry.do(ctx, func(ctx context.Context) (err error) {
		out, err = s.client.DeleteObjects(ctx, in)
		return err
	})
	if err != nil {
		if isNotImplemented(err) {
			return err
		}
		return s.classify(ctx, "delete", keys[0], err)
	}
	var errs []error
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		errs = append(errs, fmt.Errorf("s3: delete %s: %s: %s", strings.TrimPrefix(aws.ToString(e.Key), s.prefix), aws.ToString(e.Code), aws.ToString(e.Message)))
	}
	return errors.Join(errs...)
}

// escapePath percent-encodes everything but unreserved characters and "/",
// as CopySource requires.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }

func quote(etag string) string {
	if strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, `W/`) {
		return etag
	}
	return `"` + etag + `"`
}
