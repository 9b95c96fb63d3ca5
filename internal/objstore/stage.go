package objstore

import "context"

// A CopyStager is a Store that can start a server-side copy which no reader
// sees until it is committed, so that the copy runs while the caller still
// checks the source (a snapshot's -latest copy during its read-back).
type CopyStager interface {
	StageCopy(ctx context.Context, src, dst string) StagedCopy
}

// A StagedCopy is a copy under way. Commit waits for it and makes dst
// visible, or fails and leaves dst as it was; Abort drops it. Call one of
// them; Abort after Commit does nothing. Cancelling the context given to
// StageCopy stops the copy too.
type StagedCopy interface {
	Commit(ctx context.Context) (ObjectInfo, error)
	Abort()
}

// StageCopy stages a copy of src to dst on s when s can, and otherwise
// returns one whose Commit is s.Copy: either way nothing reaches dst before
// Commit.
func StageCopy(ctx context.Context, s Store, src, dst string) StagedCopy {
	if st, ok := s.(CopyStager); ok {
		return st.StageCopy(ctx, src, dst)
	}
	return copyAtCommit{s: s, src: src, dst: dst}
}

// copyAtCommit is the staged copy of a store that cannot stage.
type copyAtCommit struct {
	s        Store
	src, dst string
}

func (c copyAtCommit) Commit(ctx context.Context) (ObjectInfo, error) {
	return c.s.Copy(ctx, c.src, c.dst)
}
func (copyAtCommit) Abort() {}
