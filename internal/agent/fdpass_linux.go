package agent

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxPassedFDs bounds the descriptors one boot message may carry.
const maxPassedFDs = 16

// sendFrame writes one frame holding v to the agent's socket, together
// with descriptors (SCM_RIGHTS).
func sendFrame(conn *os.File, v binaryMessage, files []*os.File) error {
	payload := marshalBinary(v)
	msg := make([]byte, 5+len(payload))
	msg[0] = frameRequest
	binary.BigEndian.PutUint32(msg[1:5], uint32(len(payload)))
	copy(msg[5:], payload)
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		var n int
		n, serr = unix.SendmsgN(int(fd), msg, unix.UnixRights(fds...), nil, 0)
		if serr == unix.EAGAIN {
			return false
		}
		if serr == nil && n < len(msg) {
			_, serr = conn.Write(msg[n:])
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}

// recvFrame reads one frame sent by sendFrame from the raw connection
// descriptor into v, and returns the descriptors that came with it. It
// reads exactly one frame: the next one may already be waiting.
func recvFrame(fd int, v binaryMessage) ([]*os.File, error) {
	var hdr [5]byte
	oob := make([]byte, unix.CmsgSpace(maxPassedFDs*4))
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	for got := 0; got < len(hdr); {
		n, oobn, _, _, err := unix.Recvmsg(fd, hdr[got:], oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("receiving boot message: %w", err))
		}
		if n == 0 {
			return fail(fmt.Errorf("receiving boot message: %w", io.ErrUnexpectedEOF))
		}
		got += n
		passed, err := passedFiles(oob[:oobn])
		if err != nil {
			return fail(fmt.Errorf("parsing passed descriptors: %w", err))
		}
		files = append(files, passed...)
	}
	if hdr[0] != frameRequest {
		return fail(fmt.Errorf("malformed boot message"))
	}
	want := int(binary.BigEndian.Uint32(hdr[1:5]))
	if want > 1<<20 {
		return fail(fmt.Errorf("boot message of %d bytes is too large", want))
	}
	payload := make([]byte, want)
	for got := 0; got < want; {
		n, err := unix.Read(fd, payload[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return fail(fmt.Errorf("reading boot message: %v", io.ErrUnexpectedEOF))
		}
		got += n
	}
	if err := unmarshalBinary(payload, v); err != nil {
		return fail(fmt.Errorf("decoding boot message: %w", err))
	}
	return files, nil
}

// passedFiles returns the descriptors in a message's control data
// (SCM_RIGHTS) as files; on error it closes what it had taken.
func passedFiles(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, err
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "passed"))
		}
	}
	return files, nil
}
