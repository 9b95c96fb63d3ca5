//go:build race

package dbrepl_test

// raceEnabled: the test binary runs under the race detector, which slows the
// in-process side (vwstream's replicator and restore) several times over.
const raceEnabled = true
