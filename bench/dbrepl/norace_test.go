//go:build !race

package dbrepl_test

const raceEnabled = false
