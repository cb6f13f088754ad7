package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The messages every fresh agent handles once (the two boot messages, the
// boot reply, an execution and its result) travel in a compact binary form
// instead of JSON: in a process that has just started, encoding/json's
// first use of a type costs a hundred microseconds or more of reflection,
// more than the work those messages ask for. The form is a sequence of
// fields in declaration order: integers as varints, booleans as one byte,
// strings and byte slices with their length first, slices with their count
// first. Host and agent are always the same build, so there is no
// versioning; TestCodecRoundTrip fails when a field is added to one of
// these types without being encoded.

// binaryMessage is a message with a binary form.
type binaryMessage interface {
	encode(e *encoder)
	decode(d *decoder)
}

// marshalBinary returns the binary form of m.
func marshalBinary(m binaryMessage) []byte {
	var e encoder
	m.encode(&e)
	return e.b
}

// unmarshalBinary decodes b into m; b must hold exactly one message.
func unmarshalBinary(b []byte, m binaryMessage) error {
	d := decoder{b: b}
	m.decode(&d)
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes left after the message", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("malformed %T: %w", m, d.err)
	}
	return nil
}

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) bytes(v []byte) {
	e.uint(uint64(len(v)))
	e.b = append(e.b, v...)
}

func (e *encoder) string(v string) {
	e.uint(uint64(len(v)))
	e.b = append(e.b, v...)
}

func (e *encoder) strings(v []string) {
	e.uint(uint64(len(v)))
	for _, s := range v {
		e.string(s)
	}
}

var errShort = errors.New("message ends early")

// decoder reads fields until the first error, after which every read
// returns a zero value and the error stays.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 { return varint(d, binary.Uvarint) }

func (d *decoder) int() int64 { return varint(d, binary.Varint) }

// varint reads one varint with read (binary.Uvarint or binary.Varint).
func varint[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// intValue reads an int, which must fit 32 bits.
func (d *decoder) intValue() int {
	v := d.int()
	if v > 1<<31-1 || v < -1<<31 {
		d.fail(fmt.Errorf("integer %d out of range", v))
		return 0
	}
	return int(v)
}

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 {
		d.err = errShort
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.fail(fmt.Errorf("invalid boolean %d", v))
	}
	return v == 1
}

// count reads a length or count of items that take at least one byte
// each, so that a corrupt count cannot make the reader allocate more
// than the message holds.
func (d *decoder) count() int {
	n := d.uint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errShort
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) strings() []string {
	n := d.count()
	if d.err != nil || n == 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.string()
	}
	return v
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (c *BootConfig) encode(e *encoder) {
	e.string(c.RootDir)
	e.string(c.Hostname)
	e.int(int64(c.UID))
	e.int(int64(c.GID))
	e.int(c.TmpBytes)
	e.uint(c.NoFile)
	e.uint(c.FSize)
	e.int(int64(c.CgroupVersion))
	e.bool(c.Landlock)
	e.bytes(c.Seccomp)
	e.strings(c.ReadOnlyBinds)
}

func (c *BootConfig) decode(d *decoder) {
	c.RootDir = d.string()
	c.Hostname = d.string()
	c.UID = d.intValue()
	c.GID = d.intValue()
	c.TmpBytes = d.int()
	c.NoFile = d.uint()
	c.FSize = d.uint()
	c.CgroupVersion = d.intValue()
	c.Landlock = d.bool()
	c.Seccomp = d.bytes()
	c.ReadOnlyBinds = d.strings()
}

func (r *BootResources) encode(e *encoder) { e.int(int64(r.CgroupFiles)) }
func (r *BootResources) decode(d *decoder) { r.CgroupFiles = d.intValue() }

func (r *BootReply) encode(e *encoder) {
	e.bool(r.OK)
	e.string(r.Layer)
	e.string(r.Error)
	e.int(int64(r.Landlock))
	e.int(r.StartMicros)
	e.uint(uint64(len(r.Steps)))
	for _, s := range r.Steps {
		e.string(s.Name)
		e.int(s.Micros)
	}
}

func (r *BootReply) decode(d *decoder) {
	r.OK = d.bool()
	r.Layer = d.string()
	r.Error = d.string()
	r.Landlock = d.intValue()
	r.StartMicros = d.int()
	if n := d.count(); n > 0 {
		r.Steps = make([]Step, n)
		for i := range r.Steps {
			r.Steps[i] = Step{Name: d.string(), Micros: d.int()}
		}
	}
}

func (s *ExecSpec) encode(e *encoder) {
	e.strings(s.Argv)
	e.strings(s.Env)
	e.string(s.Dir)
	e.bool(s.Stdin)
	e.int(s.TimeoutMS)
	e.int(s.OutputLimit)
	e.uint(uint64(len(s.Files)))
	for _, f := range s.Files {
		e.string(f.Path)
		e.bytes(f.Data)
		e.uint(uint64(f.Mode))
	}
}

func (s *ExecSpec) decode(d *decoder) {
	s.Argv = d.strings()
	s.Env = d.strings()
	s.Dir = d.string()
	s.Stdin = d.bool()
	s.TimeoutMS = d.int()
	s.OutputLimit = d.int()
	if n := d.count(); n > 0 {
		s.Files = make([]File, n)
		for i := range s.Files {
			f := &s.Files[i]
			f.Path = d.string()
			f.Data = d.bytes()
			if m := d.uint(); m > 1<<32-1 {
				d.fail(fmt.Errorf("file mode %#o out of range", m))
			} else {
				f.Mode = uint32(m)
			}
		}
	}
}

func (r *ExecResult) encode(e *encoder) {
	e.int(int64(r.ExitCode))
	e.int(int64(r.Signal))
	e.bool(r.TimedOut)
	e.bool(r.OutputLimited)
	e.bool(r.OOMKilled)
	e.bool(r.Canceled)
	e.string(r.StartError)
	e.int(r.StdoutBytes)
	e.int(r.StderrBytes)
	e.bool(r.StdoutTruncated)
	e.bool(r.StderrTruncated)
	e.int(r.WallNS)
	e.int(r.CPUNS)
	e.int(r.PeakMemory)
	e.string(r.StartCode)
}

func (r *ExecResult) decode(d *decoder) {
	r.ExitCode = d.intValue()
	r.Signal = d.intValue()
	r.TimedOut = d.bool()
	r.OutputLimited = d.bool()
	r.OOMKilled = d.bool()
	r.Canceled = d.bool()
	r.StartError = d.string()
	r.StdoutBytes = d.int()
	r.StderrBytes = d.int()
	r.StdoutTruncated = d.bool()
	r.StderrTruncated = d.bool()
	r.WallNS = d.int()
	r.CPUNS = d.int()
	r.PeakMemory = d.int()
	r.StartCode = d.string()
}
