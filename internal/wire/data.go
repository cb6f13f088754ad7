package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/cove-sandbox/cove"
)

// EncodingBase64 marks a string field that holds base64 rather than text.
const EncodingBase64 = "base64"

// EncodeData returns b as a JSON string field and its encoding: the text
// itself ("") when b is valid UTF-8, else base64.
func EncodeData(b []byte) (data, encoding string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), EncodingBase64
}

// DecodeData reverses EncodeData. Errors: an unknown encoding or bad
// base64.
func DecodeData(data, encoding string) ([]byte, error) {
	switch encoding {
	case "", "utf-8", "utf8", "text":
		return []byte(data), nil
	case EncodingBase64:
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("invalid base64 data: %v", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown encoding %q: use base64, or leave it out for UTF-8 text", cove.Excerpt(encoding, 64))
}

// FileContent is a file's contents: on the wire either a JSON string (the
// text itself) or an object {"content": "...", "encoding": "base64"}.
type FileContent []byte

type fileContentObject struct {
	Content  string `json:"content"`
	Encoding string `json:"encoding,omitempty"`
}

// MarshalJSON writes text as a string and other bytes as a base64 object.
func (f FileContent) MarshalJSON() ([]byte, error) {
	data, enc := EncodeData(f)
	if enc == "" {
		return json.Marshal(data)
	}
	return json.Marshal(fileContentObject{Content: data, Encoding: enc})
}

// UnmarshalJSON reads a string or a {content, encoding} object. Errors:
// a *json.UnmarshalTypeError (see refused).
func (f *FileContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = nil
		return nil
	}
	data, err := decodeFileContent(b)
	if err != nil {
		return refused(reflect.TypeFor[FileContent](), b)
	}
	*f = data
	return nil
}

func decodeFileContent(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		return []byte(s), err
	}
	var o fileContentObject
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	return DecodeData(o.Content, o.Encoding)
}
