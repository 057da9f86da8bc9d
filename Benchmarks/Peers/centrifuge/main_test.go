package main

import "testing"

// TestMaySubscribe checks Centrifugo's rule for user-limited channels: after the last `#`,
// the comma-separated users that may read the channel.
func TestMaySubscribe(t *testing.T) {
	for _, c := range []struct {
		user, channel string
		allowed       bool
	}{
		{"r1", "bench", true},
		{"c-9f", "bench", true},
		{"r1", "#r1", true},
		{"r1", "#r10", false},
		{"r10", "#r1", false},
		{"r2", "#r1", false},
		{"", "#r1", false},
		{"b", "dialog#a,b", true},
		{"c", "dialog#a,b", false},
		{"a", "x#b#a", true},
		{"b", "x#b#a", false},
	} {
		if got := maySubscribe(c.user, c.channel); got != c.allowed {
			t.Errorf("maySubscribe(%q, %q) = %v, want %v", c.user, c.channel, got, c.allowed)
		}
	}
}
