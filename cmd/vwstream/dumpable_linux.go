package main

import "syscall"

// prSetDumpable is prctl(2)'s PR_SET_DUMPABLE (linux/prctl.h).
const prSetDumpable = 4

// undumpable marks the process non-dumpable (prctl PR_SET_DUMPABLE 0): its
// /proc/<pid>/environ, mem, maps and fd entries then belong to root and open
// only with CAP_SYS_PTRACE, ptrace attach needs that capability too, and it
// leaves no core dump. The child (Vaultwarden) started under another user,
// or as root without CAP_SYS_PTRACE (Docker's default set), can no longer
// read vwstream's passphrase or S3 keys from /proc. A child running as root
// with CAP_SYS_PTRACE still can: root with that capability reads any process.
func undumpable() error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetDumpable, 0, 0, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
