// Package spelling tells a slip of the keyboard from another word, for the
// "did you mean" of cove's messages: a misspelt setting, language or
// option is named with what was likely meant.
package spelling

// Distance is the optimal string alignment distance of a and b: the
// insertions, deletions, substitutions and swaps of adjacent letters
// (runes) that turn one into the other. A swap counts as one edit because
// swapped letters ("pyhton") are the commonest slip.
func Distance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// d[i][j] is the distance of x[:i] and y[:j].
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
