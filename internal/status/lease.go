package status

import (
	"errors"

	"github.com/vwstream/vwstream/internal/lease"
)

// LeaseOf describes this node's lease, for a source:
// b.AddSource(func(s *status.Status) { s.Lease = status.LeaseOf(l) }).
func LeaseOf(l *lease.Lease) *Lease {
	info := l.Info()
	out := &Lease{Holder: info.Holder.String(), ExpiresAt: info.ExpiresAt, Ours: l.Held()}
	if err := l.Err(); err != nil && !errors.Is(err, lease.ErrReleased) {
		out.Error = err.Error()
	} else if l.Suspended() {
		out.Error = lease.ErrSuspended.Error()
	}
	return out
}

// LeaseFromInfo describes somebody else's lease as read with lease.Peek (a
// secondary showing its primary); nil info means no lease exists.
func LeaseFromInfo(info *lease.Info) *Lease {
	if info == nil {
		return &Lease{}
	}
	return &Lease{Holder: info.Holder.String(), ExpiresAt: info.ExpiresAt}
}
