package objstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// storeError is an error with a one-line message for humans, a kind
// (ErrNotFound, ErrPermanent, ...) for errors.Is and the SDK's error for
// errors.As. Its message never contains a credential.
type storeError struct {
	msg   string
	kind  error
	cause error
}

func (e *storeError) Error() string   { return e.msg }
func (e *storeError) Unwrap() []error { return []error{e.kind, e.cause} }

// classify turns an SDK error from operation op on key into a storeError.
func (s *S3) classify(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	var se *storeError
	if errors.As(err, &se) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("s3: %s %s: %w", op, key, ctxErr)
	}
	var kind error
	switch code := errorCode(err); {
	case code == "NoSuchBucket":
		kind = ErrPermanent
	case isNotFound(err):
		// HeadObject answers 404 without a code, for a missing bucket too:
		// ask about the bucket once so that is not reported as a missing key.
		if code == "NotFound" || code == "" {
			if berr := s.checkBucket(ctx); berr != nil {
				return berr
			}
		}
		return &storeError{fmt.Sprintf("s3: %s %s: %v", op, key, ErrNotFound), ErrNotFound, err}
	case isPrecondition(err):
		return &storeError{fmt.Sprintf("s3: %s %s: %v", op, key, ErrPrecondition), ErrPrecondition, err}
	case code == "BadDigest" || code == "InvalidDigest" || code == "XAmzContentSHA256Mismatch":
		return &storeError{fmt.Sprintf("s3: %s %s: %v: the service received different bytes than were sent (%s)", op, key, ErrChecksum, code), ErrChecksum, err}
	case isPermanent(err):
		kind = ErrPermanent
	}
	msg := s.describe(err)
	if kind == nil {
		msg = fmt.Sprintf("%s (%s %s)", msg, op, key)
	}
	return &storeError{msg, kind, err}
}

// checkBucket reports a missing or forbidden bucket, remembering success.
func (s *S3) checkBucket(ctx context.Context) error {
	if s.bucketOK.Load() {
		return nil
	}
	err := s.retry.do(ctx, func(ctx context.Context) error {
		_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
		return err
	})
	if err == nil {
		s.bucketOK.Store(true)
		return nil
	}
	if isNotFound(err) {
		return &storeError{fmt.Sprintf("s3: bucket %q does not exist at %s", s.bucket, s.endpoint), ErrPermanent, err}
	}
	if isPermanent(err) {
		return &storeError{s.describe(err), ErrPermanent, err}
	}
	return nil // unknown: let the caller report its own error
}

// describe writes one readable line about err.
func (s *S3) describe(err error) string {
	var (
		dnsErr  *net.DNSError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		certErr *tls.CertificateVerificationError
	)
	switch code := errorCode(err); {
	case code == "NoSuchBucket":
		return fmt.Sprintf("s3: bucket %q does not exist at %s", s.bucket, s.endpoint)
	case code == "InvalidAccessKeyId":
		return fmt.Sprintf("s3: access key rejected by %s (check S3_ACCESS_KEY_ID)", s.endpoint)
	case code == "SignatureDoesNotMatch":
		return fmt.Sprintf("s3: request signature rejected by %s (check S3_SECRET_ACCESS_KEY and S3_REGION)", s.endpoint)
	case code == "AccessDenied" || httpStatus(err) == http.StatusForbidden:
		return fmt.Sprintf("s3: access denied to bucket %q at %s (check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY)", s.bucket, s.endpoint)
	case code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || code == "IllegalLocationConstraintException":
		return fmt.Sprintf("s3: bucket %q at %s: %s (check S3_REGION and S3_ENDPOINT)", s.bucket, s.endpoint, code)
	case errors.As(err, &unkAuth), errors.As(err, &hostErr), errors.As(err, &certErr):
		return fmt.Sprintf("s3: TLS certificate of %s not trusted: %v (set S3_CA_FILE or AWS_CA_BUNDLE for a private CA)", s.endpoint, rootCause(err))
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("s3: cannot reach %s: no such host %s", s.endpoint, dnsErr.Name)
	case isNetError(err):
		return fmt.Sprintf("s3: cannot reach %s: %v", s.endpoint, rootCause(err))
	case code != "":
		var ae smithy.APIError
		errors.As(err, &ae)
		if st := httpStatus(err); st != 0 {
			return fmt.Sprintf("s3: %s: %s: %s (HTTP %d)", s.endpoint, code, ae.ErrorMessage(), st)
		}
		return fmt.Sprintf("s3: %s: %s: %s", s.endpoint, code, ae.ErrorMessage())
	case httpStatus(err) != 0:
		return fmt.Sprintf("s3: %s: HTTP %d", s.endpoint, httpStatus(err))
	}
	return fmt.Sprintf("s3: %s: %v", s.endpoint, rootCause(err))
}

// rootCause is the innermost error, which for network failures is the short
// system message ("connection refused") instead of the SDK's long chain.
func rootCause(err error) error {
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if errs := u.Unwrap(); len(errs) > 0 {
				next = errs[len(errs)-1]
			}
		}
		if next == nil {
			return err
		}
		if _, ok := err.(x509.UnknownAuthorityError); ok {
			return err
		}
		err = next
	}
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchUpload":
		return true
	case "NoSuchBucket":
		return false
	}
	return httpStatus(err) == http.StatusNotFound
}

func isPrecondition(err error) bool {
	switch errorCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return httpStatus(err) == http.StatusPreconditionFailed
}

func isNotImplemented(err error) bool {
	switch errorCode(err) {
	case "NotImplemented", "MethodNotAllowed":
		return true
	}
	st := httpStatus(err)
	return st == http.StatusNotImplemented || st == http.StatusMethodNotAllowed
}

// isPermanent reports errors that repeating the request cannot fix.
func isPermanent(err error) bool {
	var (
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		certErr *tls.CertificateVerificationError
	)
	switch errorCode(err) {
	case "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException",
		"InvalidBucketName", "AccountProblem", "AllAccessDisabled":
		return true
	}
	if httpStatus(err) == http.StatusForbidden {
		return true
	}
	return errors.As(err, &unkAuth) || errors.As(err, &hostErr) || errors.As(err, &certErr)
}

// isTransient reports errors worth retrying: network failures, 5xx answers
// and throttling.
func isTransient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isPermanent(err) {
		return false
	}
	switch errorCode(err) {
	case "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
		"InternalError", "ServiceUnavailable", "OperationAborted":
		return true
	}
	if st := httpStatus(err); st >= 500 || st == http.StatusTooManyRequests {
		return true
	}
	return isNetError(err)
}

func isNetError(err error) bool {
	var (
		ne      net.Error
		respErr *awshttp.ResponseError
	)
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0 {
		return false
	}
	var rerr *aws.RequestCanceledError
	if errors.As(err, &rerr) {
		return false
	}
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE)
}
