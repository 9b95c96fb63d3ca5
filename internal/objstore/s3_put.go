package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

// Put streams r to key: one PutObject when r ends within the first part,
// otherwise a multipart upload with Concurrency parts in flight. Every request
// carries the SHA-256 of its body (as checksum and as signed payload hash),
// so the service rejects damaged bytes; afterwards the checksum the service
// stored is compared with ours. See Store.Put.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return ObjectInfo{}, fmt.Errorf("put: %w", err)
	}
	r = ctxReader{ctx, r}
	// Most objects (files, LTX segments, the lease) are small: read them into
	// a small buffer and keep the part buffers for streams that need them.
	head := make([]byte, smallPut)
	n, err := io.ReadFull(r, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return s.putSingle(ctx, key, head[:n], opts)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("s3: put %s: read: %w", key, err)
	}
	first := s.getBuf()
	copy(*first, head)
	m, err := io.ReadFull(r, (*first)[n:])
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		defer s.putBuf(first)
		return s.putSingle(ctx, key, (*first)[:n+m], opts)
	}
	if err != nil {
		s.putBuf(first)
		return ObjectInfo{}, fmt.Errorf("s3: put %s: read: %w", key, err)
	}
	return s.putMultipart(ctx, key, first, r, opts)
}

// errStream marks a Put that failed on the caller's side (its reader, its
// size) rather than the service's.
var errStream = errors.New("read")

// smallPut is the size below which Put does not touch a part buffer.
const smallPut = 64 << 10

func (s *S3) getBuf() *[]byte  { return s.buffers.get() }
func (s *S3) putBuf(b *[]byte) { s.buffers.put(b) }

// putSingle uploads data with one PutObject.
func (s *S3) putSingle(ctx context.Context, key string, data []byte, opts PutOptions) (ObjectInfo, error) {
	sum := sha256.Sum256(data)
	in := &s3.PutObjectInput{
		Bucket:         &s.bucket,
		Key:            aws.String(s.fullKey(key)),
		ContentLength:  aws.Int64(int64(len(data))),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
	setConditions(opts, &in.IfNoneMatch, &in.IfMatch)
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	var (
		out      *s3.PutObjectOutput
		attempts int
	)
	err := s.retry.do(ctx, func(ctx context.Context) (err error) {
		attempts++
		in.Body = bytes.NewReader(data) // a fresh body for every attempt
		out, err = s.client.PutObject(ctx, in, withPayloadHash(sum[:]))
		return err
	})
	want := checksum{value: *in.ChecksumSHA256, size: int64(len(data))}
	if err != nil {
		return s.recoverLostReply(ctx, key, err, attempts, want, opts)
	}
	// The service checked the x-amz-checksum-sha256 we sent against the bytes
	// it received (a mismatch fails the request) and echoes what it stored:
	// when that echo matches, a HEAD would only ask the same question again.
	// That halves the requests of small objects (replication's LTX files).
	if aws.ToString(out.ChecksumSHA256) == want.value {
		return ObjectInfo{Key: key, Size: want.size, ModTime: time.Now(), ETag: unquote(aws.ToString(out.ETag))}, nil
	}
	return s.verify(ctx, key, unquote(aws.ToString(out.ETag)), want, opts)
}

// putMultipart uploads first, then the rest of r, as parts of one multipart
// upload. At most Concurrency+1 part buffers are in use: the parts in flight
// and the one being filled. Any failure aborts the upload.
func (s *S3) putMultipart(ctx context.Context, key string, first *[]byte, r io.Reader, opts PutOptions) (ObjectInfo, error) {
	// A stream of exactly one part is cheaper as a single PutObject.
	next := s.getBuf()
	n, rerr := io.ReadFull(r, *next)
	if n == 0 && rerr == io.EOF {
		s.putBuf(next)
		defer s.putBuf(first)
		return s.putSingle(ctx, key, *first, opts)
	}
	if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
		s.putBuf(first)
		s.putBuf(next)
		return ObjectInfo{}, fmt.Errorf("s3: put %s: read: %w", key, rerr)
	}

	create := &s3.CreateMultipartUploadInput{
		Bucket:            &s.bucket,
		Key:               aws.String(s.fullKey(key)),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	}
	if opts.ContentType != "" {
		create.ContentType = aws.String(opts.ContentType)
	}
	var up *s3.CreateMultipartUploadOutput
	err := s.retry.do(ctx, func(ctx context.Context) (err error) {
		up, err = s.client.CreateMultipartUpload(ctx, create)
		return err
	})
	if err != nil {
		s.putBuf(first)
		s.putBuf(next)
		return ObjectInfo{}, s.classify(ctx, "put", key, err)
	}
	uploadID := aws.ToString(up.UploadId)

	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu    sync.Mutex
		parts []types.CompletedPart
		sums  = map[int32][]byte{}
		size  int64
		wg    sync.WaitGroup
		sem   = make(chan struct{}, s.concurrency)
	)
	send := func(num int32, buf *[]byte, n int) {
		select {
		case sem <- struct{}{}:
		case <-pctx.Done():
			s.putBuf(buf)
			return
		}
		size += int64(n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer s.putBuf(buf)
			part, sum, err := s.uploadPart(pctx, key, uploadID, num, (*buf)[:n])
			if err != nil {
				cancel(err)
				return
			}
			mu.Lock()
			parts = append(parts, part)
			sums[num] = sum
			mu.Unlock()
		}()
	}

	send(1, first, len(*first))
	num := int32(2)
	for buf := next; ; {
		if n > 0 {
			send(num, buf, n)
			num++
		} else {
			s.putBuf(buf)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF || pctx.Err() != nil {
			break
		}
		if rerr != nil {
			cancel(fmt.Errorf("s3: put %s: %w: %w", key, errStream, rerr))
			break
		}
		if num > maxParts {
			cancel(fmt.Errorf("s3: put %s: %w: more than %d parts of %d bytes", key, errStream, maxParts, s.partSize))
			break
		}
		buf = s.getBuf()
		n, rerr = io.ReadFull(r, *buf)
	}
	wg.Wait()
	if err := context.Cause(pctx); err != nil {
		s.abort(ctx, key, uploadID)
		if errors.Is(err, errStream) {
			return ObjectInfo{}, err
		}
		return ObjectInfo{}, s.classify(ctx, "put", key, err)
	}

	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	// The service reports a multipart object's checksum as the checksum of
	// the parts' checksums, suffixed with the part count.
	h := sha256.New()
	for _, p := range parts {
		h.Write(sums[*p.PartNumber])
	}
	want := checksum{value: fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(h.Sum(nil)), len(parts)), size: size}

	complete := &s3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             aws.String(s.fullKey(key)),
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	setConditions(opts, &complete.IfNoneMatch, &complete.IfMatch)
	var (
		out      *s3.CompleteMultipartUploadOutput
		attempts int
	)
	err = s.retry.do(ctx, func(ctx context.Context) (err error) {
		attempts++
		out, err = s.client.CompleteMultipartUpload(ctx, complete)
		return err
	})
	if err != nil {
		s.abort(ctx, key, uploadID)
		return s.recoverLostReply(ctx, key, err, attempts, want, opts)
	}
	return s.verify(ctx, key, unquote(aws.ToString(out.ETag)), want, opts)
}

// uploadPart sends one part from its buffer, which retries can replay.
func (s *S3) uploadPart(ctx context.Context, key, uploadID string, num int32, data []byte) (types.CompletedPart, []byte, error) {
	sum := sha256.Sum256(data)
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	in := &s3.UploadPartInput{
		Bucket:         &s.bucket,
		Key:            aws.String(s.fullKey(key)),
		UploadId:       &uploadID,
		PartNumber:     aws.Int32(num),
		ContentLength:  aws.Int64(int64(len(data))),
		ChecksumSHA256: &b64,
	}
	var out *s3.UploadPartOutput
	err := s.retry.do(ctx, func(ctx context.Context) (err error) {
		in.Body = bytes.NewReader(data)
		out, err = s.client.UploadPart(ctx, in, withPayloadHash(sum[:]))
		return err
	})
	if err != nil {
		return types.CompletedPart{}, nil, fmt.Errorf("part %d: %w", num, err)
	}
	return types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag, ChecksumSHA256: &b64}, sum[:], nil
}

// abort discards an unfinished upload so no parts linger (and are billed).
// It runs even when ctx is cancelled, since that is one reason to abort.
func (s *S3) abort(ctx context.Context, key, uploadID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := s.retry.do(ctx, func(ctx context.Context) error {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: &s.bucket, Key: aws.String(s.fullKey(key)), UploadId: &uploadID,
		})
		return err
	})
	if err != nil && !isNotFound(err) {
		s.log.Error("abort multipart upload failed; parts remain until a lifecycle rule removes them",
			"key", key, "upload_id", uploadID, "err", s.describe(err))
	}
}

// checksum is what the service should report for our upload.
type checksum struct {
	value string // base64 SHA-256, "-N" suffixed for N parts
	size  int64
}

// recoverLostReply handles a failed final request that was sent more than
// once: when an earlier attempt succeeded but its reply was lost, the retry
// fails (412 for a conditional put, NoSuchUpload for a completed upload)
// although our bytes are in place. The stored checksum tells which it was.
// It also reports If-Match on a missing key, which S3 answers with 404, as
// the failed precondition it is.
func (s *S3) recoverLostReply(ctx context.Context, key string, err error, attempts int, want checksum, opts PutOptions) (ObjectInfo, error) {
	if attempts > 1 && (isPrecondition(err) || errorCode(err) == "NoSuchUpload") {
		if out, herr := s.head(ctx, key, true); herr == nil && aws.ToString(out.ChecksumSHA256) == want.value {
			s.log.Info("s3 put succeeded on an earlier attempt whose reply was lost", "key", key)
			return ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified), ETag: unquote(aws.ToString(out.ETag))}, nil
		}
	}
	if opts.IfMatch != "" && errorCode(err) == "NoSuchKey" {
		return ObjectInfo{}, &storeError{fmt.Sprintf("s3: put %s: %v: the key does not exist", key, ErrPrecondition), ErrPrecondition, err}
	}
	return ObjectInfo{}, s.classify(ctx, "put", key, err)
}

// verify compares the stored object with what we sent. A service that keeps
// no checksums is trusted with the signed payload hash it already checked.
func (s *S3) verify(ctx context.Context, key, etag string, want checksum, opts PutOptions) (ObjectInfo, error) {
	out, err := s.head(ctx, key, true)
	if err != nil {
		return ObjectInfo{}, s.classify(ctx, "verify", key, err)
	}
	info := ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified), ETag: unquote(aws.ToString(out.ETag))}
	if etag != "" && info.ETag != etag {
		// Another writer replaced the object since; ours was accepted.
		return ObjectInfo{Key: key, Size: want.size, ModTime: time.Now(), ETag: etag}, nil
	}
	got := aws.ToString(out.ChecksumSHA256)
	if got == "" && info.Size == want.size {
		s.log.Debug("s3 service reports no SHA-256 checksum; relying on the signed payload hash", "key", key)
		return info, nil
	}
	if got == want.value && info.Size == want.size {
		return info, nil
	}
	msg := fmt.Sprintf("s3: put %s: %v: stored %d bytes with SHA-256 %q, sent %d bytes with %q", key, ErrChecksum, info.Size, got, want.size, want.value)
	if opts.IfNoneMatch {
		// The key did not exist before this put: remove what we damaged.
		if derr := s.Delete(ctx, key); derr == nil {
			msg += "; the damaged object was deleted"
		}
	} else {
		msg += "; the stored object is damaged, put it again"
	}
	return ObjectInfo{}, &storeError{msg, ErrChecksum, errors.New(msg)}
}

// setConditions copies opts' preconditions to request fields.
func setConditions(opts PutOptions, ifNoneMatch, ifMatch **string) {
	if opts.IfNoneMatch {
		*ifNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		*ifMatch = aws.String(quote(opts.IfMatch))
	}
}

// withPayloadHash signs the request with the SHA-256 we already computed,
// instead of the SDK hashing the body a second time (or sending it unsigned).
func withPayloadHash(sum []byte) func(*s3.Options) {
	hexSum := hex.EncodeToString(sum)
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("vwstreamPayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, hexSum), in)
				}), "ComputePayloadHash", middleware.Before)
		})
	}
}
