//go:build !race

package filesync_test

const raceEnabled = false
