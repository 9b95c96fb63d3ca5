//go:build !race

package coldstart_test

const raceEnabled = false
