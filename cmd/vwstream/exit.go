package main

import (
	"errors"
	"fmt"

	"github.com/vwstream/vwstream/internal/config"
	"github.com/vwstream/vwstream/internal/seal"
)

// Exit codes of the contract.
const (
	exitOK      = 0
	exitFailure = 1 // failure at run time
	exitUsage   = 2 // bad usage or configuration
)

var (
	// errHelp ends a command after --help was printed.
	errHelp = errors.New("help requested")
	// errUnhealthy ends healthcheck with exit 1 and no further message.
	errUnhealthy = errors.New("unhealthy")
)

// usageError is a bad command line (not configuration).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCodeError forces an exit code, for healthcheck (Docker reserves exit 2).
type exitCodeError struct {
	err  error
	code int
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// exit prints err as one line on stderr and maps it to an exit code.
func (a *app) exit(err error) int {
	var (
		ce   *config.Error
		ue   *usageError
		code *exitCodeError
	)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errUnhealthy):
		return exitFailure
	case errors.As(err, &code):
		fmt.Fprintf(a.stderr, "vwstream %s: %s\n", a.cmd, oneLine(err.Error()))
		return code.code
	case errors.As(err, &ce), errors.As(err, &ue), errors.Is(err, seal.ErrSealedPrefix):
		// A sealed prefix without ENCRYPTION_PASSPHRASE or ENCRYPTION_KEY is a
		// missing variable, like the configuration errors.
		fmt.Fprintf(a.stderr, "vwstream: %s\n", oneLine(err.Error()))
		return exitUsage
	}
	fmt.Fprintf(a.stderr, "vwstream %s: %s\n", a.cmd, oneLine(err.Error()))
	return exitFailure
}
