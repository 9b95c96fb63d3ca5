//go:build race

package filesync_test

const raceEnabled = true
