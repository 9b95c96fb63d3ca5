//go:build race

package coldstart_test

// raceEnabled: this test process (the latency proxy) runs under the race
// detector, which multiplies its CPU on a machine the sides share.
const raceEnabled = true
