package wire

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/cove-sandbox/cove"
)

// The rules of the types that decode their JSON themselves: what a value
// of the type is, and how to write one. The errors of their decoders and
// ParseDuration say them, so each is written once.
const (
	durationRule = `a duration: use a number of seconds or a string such as "90s" or "1h"`
	modeRule     = `a file mode: use octal permission bits in a string, such as "0644" or "0755"`
	contentRule  = `a file's content: give the text as a string, or {"content": "<base64>", "encoding": "base64"}`
)

var rules = map[reflect.Type]string{
	reflect.TypeFor[Duration]():    durationRule,
	reflect.TypeFor[Mode]():        modeRule,
	reflect.TypeFor[FileContent](): contentRule,
}

// Rule returns what a value of t is and how to write one ("a duration:
// use ...") when t is a wire type that decodes its JSON itself, for the
// message of a *json.UnmarshalTypeError whose Type is t; ok is false for
// other types.
func Rule(t reflect.Type) (rule string, ok bool) {
	rule, ok = rules[t]
	return rule, ok
}

// refused returns the error of a decoder of the wire type t that refuses
// the JSON value b. It is a *json.UnmarshalTypeError with the value,
// shortened, as its Value and t as its Type: encoding/json fills in the
// path of the field of such an error alone (Field), and passes others on
// without saying where they happened. Rule(t) says what t takes.
func refused(t reflect.Type, b []byte) error {
	var c bytes.Buffer
	if json.Compact(&c, b) != nil {
		c.Reset()
		c.Write(bytes.TrimSpace(b))
	}
	return &json.UnmarshalTypeError{Value: cove.Excerpt(c.String(), 64), Type: t}
}
