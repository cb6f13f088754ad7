package main

import "testing"

func TestCellComplete(t *testing.T) {
	cases := []struct {
		language string
		lines    []string
		want     bool
	}{
		{"python", []string{"x = 1"}, true},
		{"python", []string{"x + 1  # a comment with ( in it"}, true},
		{"python", []string{"def f(x):"}, false},
		{"python", []string{"def f(x):", "    return x"}, false}, // a blank line ends the block
		{"python", []string{"@decorator"}, false},
		{"python", []string{"d = {", "  'a': 1,"}, false},
		{"python", []string{"d = {", "  'a': 1,", "}"}, true},
		{"python", []string{`s = """one`}, false},
		{"python", []string{`s = """one`, `two"""`}, true},
		{"python", []string{"x = 1 + \\"}, false},
		{"python", []string{`print("(")`}, true},
		{"python", []string{`print('it''s')`}, true},
		{"javascript", []string{"let x = 1"}, true},
		{"javascript", []string{"function f() {"}, false},
		{"javascript", []string{"function f() {", "  return 1", "}"}, true},
		{"javascript", []string{"const s = `a"}, false},
		{"javascript", []string{"const s = `a", "b`"}, true},
		{"javascript", []string{"/* open"}, false},
		{"javascript", []string{`console.log("{")  // }`}, true},
		{"typescript", []string{"interface P {", "  x: number", "}"}, true},
		{"typescript", []string{"const f = (a: number) =>", ""}, true},
	}
	for _, c := range cases {
		if got := cellComplete(c.language, c.lines); got != c.want {
			t.Errorf("%s %q: complete = %v, want %v", c.language, c.lines, got, c.want)
		}
	}
}
