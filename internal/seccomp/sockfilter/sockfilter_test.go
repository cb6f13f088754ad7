package sockfilter

import (
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	prog := []Instruction{
		{Code: 0x20, K: 4},
		{Code: 0x15, Jt: 1, Jf: 0, K: 0xc000003e},
		{Code: 0x06, K: 0x80000000},
		{Code: 0x06, K: 0x7fff0000},
	}
	b := Encode(prog)
	if len(b) != 8*len(prog) {
		t.Fatalf("encoded %d bytes, want %d", len(b), 8*len(prog))
	}
	// struct sock_filter, little-endian: code, jt, jf, k.
	if want := []byte{0x15, 0, 1, 0, 0x3e, 0, 0, 0xc0}; !slices.Equal(b[8:16], want) {
		t.Errorf("second instruction encoded as %x, want %x", b[8:16], want)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, prog) {
		t.Errorf("decoded %v, want %v", got, prog)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "no seccomp program"},
		{"partial instruction", make([]byte, 12), "not whole instructions"},
		{"too long", make([]byte, 8*4097), "longer than the kernel's 4096"},
	} {
		if _, err := Decode(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}
