package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/cove-sandbox/cove"
)

// Duration is a time.Duration written as a string ("30s"). On input it
// also accepts a JSON number of seconds (30, 0.5) and null (zero).
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of seconds. Errors:
// a *json.UnmarshalTypeError (see refused).
func (d *Duration) UnmarshalJSON(b []byte) error {
	err := stringOrNumber(b, func(s string) error {
		v, err := ParseDuration(s)
		if err == nil {
			*d = Duration(v)
		}
		return err
	}, func(n string) error {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return err
		}
		v, err := secondsToDuration(f)
		if err == nil {
			*d = Duration(v)
		}
		return err
	})
	if err != nil {
		return refused(reflect.TypeFor[Duration](), b)
	}
	return nil
}

// stringOrNumber decodes a JSON value that may be a string or a bare
// number (null leaves the target as it is), handing its text to str or num.
func stringOrNumber(b []byte, str, num func(string) error) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return str(s)
	}
	return num(string(b))
}

// ParseDuration parses a duration string ("30s", "1m30s") or a bare number
// of seconds ("30"), as query parameters carry them.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return secondsToDuration(f)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not %s", cove.Excerpt(s, 64), durationRule)
	}
	return v, nil
}

func secondsToDuration(f float64) (time.Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
		return 0, fmt.Errorf("duration of %g seconds is out of range", f)
	}
	return time.Duration(f * float64(time.Second)), nil
}
