package spelling

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"python", "python", 0},
		{"pyhton", "python", 1}, // a swap is one edit
		{"memroy", "memory", 1},
		{"pyton", "python", 1},
		{"pythonn", "python", 1},
		{"ts", "js", 1},
		{"go", "js", 2},
		{"héllo", "hello", 1}, // letters, not bytes
		{"", "abc", 3},
		{"ca", "abc", 3}, // optimal string alignment: no edit of a swapped pair
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Distance(tc.b, tc.a); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetric)", tc.b, tc.a, got, tc.want)
		}
	}
}
