//go:build !race

package convsvc_test

const raceEnabled = false
