package snapshot

// SetPageHook makes the database stream call f after each page it archives,
// until the test ends.
func SetPageHook(t interface{ Cleanup(func()) }, f func(pgno int64)) {
	pageHook = f
	t.Cleanup(func() { pageHook = nil })
}
