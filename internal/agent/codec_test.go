package agent

import (
	"fmt"
	"reflect"
	"testing"
)

// binaryMessages returns a fresh value of every message with a binary form.
func binaryMessages() []binaryMessage {
	return []binaryMessage{&BootConfig{}, &BootResources{}, &BootReply{}, &ExecSpec{}, &ExecResult{}}
}

// fill sets every field reachable from v to a non-zero value that differs
// from the other fields', so that a field the codec forgets, or mixes up
// with another, cannot come back equal.
func fill(v reflect.Value, n *int) error {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("value %d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n) * -7)
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n) * 1000003)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{byte(*n), 0, 255, byte(*n + 1)})
			return nil
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			if err := fill(s.Index(i), n); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if err := fill(v.Field(i), n); err != nil {
				return fmt.Errorf("%s: %w", v.Type().Field(i).Name, err)
			}
		}
	default:
		return fmt.Errorf("no test value for kind %s: teach the codec and this test the new field", v.Kind())
	}
	return nil
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range binaryMessages() {
		t.Run(reflect.TypeOf(m).Elem().Name(), func(t *testing.T) {
			n := 0
			if err := fill(reflect.ValueOf(m).Elem(), &n); err != nil {
				t.Fatal(err)
			}
			b := marshalBinary(m)
			got := reflect.New(reflect.TypeOf(m).Elem()).Interface().(binaryMessage)
			if err := unmarshalBinary(b, got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip changed the message:\n got %+v\nwant %+v", got, m)
			}
			// Every shorter prefix is refused, and so are trailing bytes.
			for i := range len(b) {
				fresh := reflect.New(reflect.TypeOf(m).Elem()).Interface().(binaryMessage)
				if err := unmarshalBinary(b[:i], fresh); err == nil {
					t.Fatalf("a prefix of %d of %d bytes decoded without error", i, len(b))
				}
			}
			if err := unmarshalBinary(append(b, 0), got); err == nil {
				t.Error("a trailing byte was accepted")
			}
		})
	}
}

func TestCodecRejects(t *testing.T) {
	var big encoder
	big.int(1 << 40)
	for _, c := range []struct {
		name string
		b    []byte
		into binaryMessage
	}{
		{"a boolean that is neither 0 nor 1", []byte{2}, &BootReply{}},
		{"a count larger than the message", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, &ExecSpec{}},
		{"an int beyond 32 bits", big.b, &BootResources{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := unmarshalBinary(c.b, c.into); err == nil {
				t.Fatalf("accepted, decoded %+v", c.into)
			}
		})
	}
}

// FuzzCodec decodes arbitrary bytes as every message: never a panic, and
// what decodes encodes back to the same bytes.
func FuzzCodec(f *testing.F) {
	for _, m := range binaryMessages() {
		n := 0
		if err := fill(reflect.ValueOf(m).Elem(), &n); err != nil {
			f.Fatal(err)
		}
		f.Add(marshalBinary(m))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range binaryMessages() {
			if unmarshalBinary(b, m) != nil {
				continue
			}
			if again := marshalBinary(m); string(again) != string(b) {
				// Varints have one canonical form each, so only a
				// non-canonical input may differ; it must decode alike.
				m2 := reflect.New(reflect.TypeOf(m).Elem()).Interface().(binaryMessage)
				if err := unmarshalBinary(again, m2); err != nil || !reflect.DeepEqual(m, m2) {
					t.Fatalf("%T: re-encoding changed the message", m)
				}
			}
		}
	})
}
