package agent

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// readAll reads everything after c, merging adjacent pieces of a stream.
func readAll(l *outputLog, c *logCursor) []logPiece {
	var out []logPiece
	for {
		pieces, _ := l.read(c, logReadMax)
		if len(pieces) == 0 {
			return out
		}
		for _, p := range pieces {
			if n := len(out); n > 0 && out[n-1].typ == p.typ {
				out[n-1].data = append(out[n-1].data, p.data...)
				continue
			}
			out = append(out, p)
		}
	}
}

func streamBytes(pieces []logPiece, typ byte) []byte {
	var b []byte
	for _, p := range pieces {
		if p.typ == typ {
			b = append(b, p.data...)
		}
	}
	return b
}

func newLog() *outputLog {
	l := &outputLog{}
	l.init()
	return l
}

func TestOutputLogKeepsArrivalOrder(t *testing.T) {
	l := newLog()
	l.append(0, []byte("a"))
	l.append(0, []byte("b"))
	l.append(1, []byte("E1"))
	l.append(0, []byte("c"))
	l.append(1, []byte("E2"))
	var c logCursor
	got := readAll(l, &c)
	want := []logPiece{{frameStdout, []byte("ab")}, {frameStderr, []byte("E1")}, {frameStdout, []byte("c")}, {frameStderr, []byte("E2")}}
	if len(got) != len(want) {
		t.Fatalf("got %d pieces %q, want %q", len(got), got, want)
	}
	for i := range want {
		if got[i].typ != want[i].typ || !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("piece %d: got %c %q, want %c %q", i, got[i].typ, got[i].data, want[i].typ, want[i].data)
		}
	}
}

func TestOutputLogFollowsNewOutput(t *testing.T) {
	l := newLog()
	l.append(0, []byte("one\n"))
	var c logCursor
	if got := streamBytes(readAll(l, &c), frameStdout); string(got) != "one\n" {
		t.Fatalf("first read %q", got)
	}
	_, changed := l.read(&c, logReadMax)
	select {
	case <-changed:
		t.Fatal("changed before any append")
	default:
	}
	// The last segment grows in place; the cursor must see only the new
	// bytes.
	l.append(0, []byte("two\n"))
	select {
	case <-changed:
	default:
		t.Fatal("append did not signal readers")
	}
	l.append(1, []byte("err\n"))
	got := readAll(l, &c)
	if len(got) != 2 || string(got[0].data) != "two\n" || got[1].typ != frameStderr || string(got[1].data) != "err\n" {
		t.Fatalf("second read %q", got)
	}
	if more := readAll(l, &c); len(more) != 0 {
		t.Fatalf("third read %q, want nothing", more)
	}
}

func TestOutputLogKeepsTheTailOfEachStream(t *testing.T) {
	l := newLog()
	var all []byte
	rng := rand.New(rand.NewPCG(1, 2))
	for len(all) < 3*logKeep+12345 {
		chunk := make([]byte, rng.IntN(3*chunkSize)+1)
		for i := range chunk {
			chunk[i] = byte('a' + rng.IntN(26))
		}
		all = append(all, chunk...)
		l.append(0, chunk)
		if rng.IntN(10) == 0 {
			l.append(1, []byte("e"))
		}
	}
	// One write larger than the ring.
	big := bytes.Repeat([]byte("Z"), logKeep+10)
	big[len(big)-1] = '!'
	all = append(all, big...)
	l.append(0, big)
	l.append(0, []byte("tail"))
	all = append(all, "tail"...)

	var c logCursor
	got := streamBytes(readAll(l, &c), frameStdout)
	if !bytes.Equal(got, all[len(all)-logKeep:]) {
		t.Fatalf("kept %d bytes, not the last %d written", len(got), logKeep)
	}
	out, _ := l.totals()
	if out != int64(len(all)) {
		t.Fatalf("stdout total %d, want %d", out, len(all))
	}
	if n := l.size(); n > 2*logKeep {
		t.Fatalf("log holds %d bytes", n)
	}
}

func TestOutputLogRingMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var r byteRing
	var all []byte
	for i := 0; i < 2000; i++ {
		n := rng.IntN(4 * chunkSize)
		if i%500 == 499 {
			n = logKeep + rng.IntN(100)
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		all = append(all, b...)
		r.write(b)
		keep := min(len(all), logKeep)
		if r.start() != int64(len(all)-keep) {
			t.Fatalf("write %d: start %d, want %d", i, r.start(), len(all)-keep)
		}
		// Any kept range reads back as written.
		from := r.start() + int64(rng.IntN(keep+1))
		m := int64(rng.IntN(int(r.total-from) + 1))
		if got := r.copy(from, m); !bytes.Equal(got, all[from:from+m]) {
			t.Fatalf("write %d: copy(%d, %d) differs", i, from, m)
		}
	}
	r.compact()
	if got := r.copy(r.start(), int64(len(r.buf))); !bytes.Equal(got, all[len(all)-logKeep:]) {
		t.Fatal("compacted ring differs")
	}
}

func TestOutputLogBoundsInterleaving(t *testing.T) {
	l := newLog()
	var out, errs strings.Builder
	for i := 0; i < 3*logSegments; i++ {
		o, e := string(rune('a'+i%26)), string(rune('A'+i%26))
		l.append(0, []byte(o))
		l.append(1, []byte(e))
		out.WriteString(o)
		errs.WriteString(e)
	}
	if len(l.segs) > logSegments {
		t.Fatalf("%d segments kept, bound %d", len(l.segs), logSegments)
	}
	var c logCursor
	got := readAll(l, &c)
	// Nothing is lost, only the oldest interleaving.
	if s := string(streamBytes(got, frameStdout)); s != out.String() {
		t.Fatalf("stdout differs: %d bytes, want %d", len(s), out.Len())
	}
	if s := string(streamBytes(got, frameStderr)); s != errs.String() {
		t.Fatalf("stderr differs: %d bytes, want %d", len(s), errs.Len())
	}
	// The recent output alternates exactly, one byte at a time.
	tail := got[len(got)-2*(logSegments/2-1):]
	for i, p := range tail {
		want := frameStdout
		if i%2 == 1 {
			want = frameStderr
		}
		if p.typ != want || len(p.data) != 1 {
			t.Fatalf("recent piece %d: %c %q", i, p.typ, p.data)
		}
	}
}

func TestOutputLogReadLimitAndLaggingReader(t *testing.T) {
	l := newLog()
	l.append(0, bytes.Repeat([]byte("x"), 100))
	var c logCursor
	pieces, _ := l.read(&c, 30)
	if len(pieces) != 1 || len(pieces[0].data) != 30 {
		t.Fatalf("limited read %v", pieces)
	}
	l.append(1, []byte("err"))
	got := readAll(l, &c)
	if len(got) != 2 || len(got[0].data) != 70 || string(got[1].data) != "err" {
		t.Fatalf("rest %q", got)
	}
	// A reader that falls behind by more than the ring skips what was
	// dropped.
	var slow logCursor
	l.read(&slow, 10)
	l.append(0, bytes.Repeat([]byte("y"), logKeep))
	got = readAll(l, &slow)
	if s := streamBytes(got, frameStdout); len(s) != logKeep || s[0] != 'y' {
		t.Fatalf("lagging reader got %d stdout bytes", len(s))
	}
}

func TestOutputLogDiscard(t *testing.T) {
	l := newLog()
	l.append(0, []byte("out"))
	l.append(1, []byte("err"))
	var c logCursor
	l.read(&c, 1)
	l.compact()
	l.discard()
	if got := readAll(l, &c); len(got) != 0 {
		t.Fatalf("discarded log read %q", got)
	}
	if o, e := l.totals(); o != 3 || e != 3 {
		t.Fatalf("totals %d, %d after discard", o, e)
	}
	l.append(0, []byte("new"))
	if got := readAll(l, &c); len(got) != 1 || string(got[0].data) != "new" {
		t.Fatalf("after discard %q", got)
	}
}

// TestOutputLogBeginsAtALine checks that a log that lost the start of a
// stream is read from the first line that starts in what is kept, not
// from the middle of a line.
func TestOutputLogBeginsAtALine(t *testing.T) {
	l := newLog()
	var all []byte
	for i := 0; len(all) < 2*logKeep; i++ {
		line := []byte(strings.Repeat("n", i%50) + "\n")
		all = append(all, line...)
		l.append(0, line)
	}
	var c logCursor
	got := streamBytes(readAll(l, &c), frameStdout)
	kept := all[len(all)-logKeep:]
	want := kept[bytes.IndexByte(kept, '\n')+1:]
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes from a log that lost its start, want the %d from its first whole line", len(got), len(want))
	}
	// A line too long to skip: what is kept, whole.
	long := newLog()
	long.append(0, []byte("start\n"))
	long.append(0, bytes.Repeat([]byte("x"), logKeep))
	long.append(0, []byte("\nend\n"))
	var lc logCursor
	if got := streamBytes(readAll(long, &lc), frameStdout); len(got) != logKeep || !bytes.HasSuffix(got, []byte("x\nend\n")) {
		t.Fatalf("a log whose kept part begins in a long line: %d bytes", len(got))
	}
}

// TestByteRingLineStart checks lineStart against the bytes written, also
// where the kept bytes wrap around the ring's end.
func TestByteRingLineStart(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var r byteRing
	var all []byte
	for i := 0; i < 300; i++ {
		b := make([]byte, rng.IntN(4*chunkSize))
		for j := range b {
			b[j] = 'a'
			if rng.IntN(5000) == 0 {
				b[j] = '\n'
			}
		}
		all = append(all, b...)
		r.write(b)
		from := r.start() + int64(rng.IntN(int(r.total-r.start())+1))
		end := from + int64(rng.IntN(int(r.total-from)+1))
		want := from
		if k := bytes.IndexByte(all[from:end], '\n'); k >= 0 {
			want = from + int64(k) + 1
		}
		if got := r.lineStart(from, end); got != want {
			t.Fatalf("write %d: lineStart(%d, %d) = %d, want %d", i, from, end, got, want)
		}
	}
}
