package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// mount is one line of a mountinfo file, reduced to what cgroup detection
// needs.
type mount struct {
	point     string   // mount point, unescaped
	fstype    string   // "cgroup", "cgroup2", ...
	options   []string // per-mount options ("rw", "nosuid", ...)
	superOpts []string // per-superblock options (for v1: the controllers)
}

// readOnly reports whether the mount is mounted read-only.
func (m mount) readOnly() bool {
	for _, o := range m.options {
		if o == "ro" {
			return true
		}
	}
	return false
}

// hasSuperOpt reports whether the superblock options contain opt.
func (m mount) hasSuperOpt(opt string) bool {
	for _, o := range m.superOpts {
		if o == opt {
			return true
		}
	}
	return false
}

// parseMountInfo parses the format of /proc/<pid>/mountinfo (see proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountInfo(r io.Reader) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		fields := strings.Fields(text)
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 6 || sep < 0 || sep+3 >= len(fields) {
			return nil, fmt.Errorf("line %d: malformed mountinfo entry %q", line, text)
		}
		mounts = append(mounts, mount{
			point:     unescapeMountField(fields[4]),
			fstype:    fields[sep+1],
			options:   strings.Split(fields[5], ","),
			superOpts: strings.Split(fields[sep+3], ","),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return mounts, nil
}

// unescapeMountField undoes the octal escapes (\040 for a space, ...) the
// kernel uses for blanks and backslashes in mountinfo paths.
func unescapeMountField(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
