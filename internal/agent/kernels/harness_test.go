package kernels

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// driver is a driver run directly on the host, for tests of the protocol.
type driver struct {
	t    *testing.T
	cmd  *exec.Cmd
	req  *os.File
	msgs *bufio.Scanner
	// out collects what the driver wrote to fds 1 and 2.
	out chan string
}

// message is any message a driver sends.
type message struct {
	Type      string            `json:"type"`
	Text      string            `json:"text,omitempty"`
	Bundle    map[string]string `json:"bundle,omitempty"`
	Name      string            `json:"name,omitempty"`
	Message   string            `json:"message,omitempty"`
	Traceback []string          `json:"traceback,omitempty"`
	Line      int               `json:"line,omitempty"`
	Status    string            `json:"status,omitempty"`
}

// startDriver starts language's driver and waits for it to be ready.
func startDriver(t *testing.T, language string) *driver {
	t.Helper()
	argv, ok := Argv(language)
	if !ok {
		t.Fatalf("no driver for %q", language)
	}
	if _, err := os.Stat(argv[0]); err != nil {
		t.Skipf("%s is not installed: %v", argv[0], err)
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	msgR, msgW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8"}
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.Stdin = strings.NewReader(Source(language))
	cmd.ExtraFiles = []*os.File{reqR, msgW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reqR.Close()
	msgW.Close()
	outW.Close()
	d := &driver{t: t, cmd: cmd, req: reqW, msgs: bufio.NewScanner(msgR), out: make(chan string, 1)}
	d.msgs.Buffer(make([]byte, 64<<10), 64<<20)
	go func() {
		b, _ := readAll(outR)
		d.out <- string(b)
	}()
	t.Cleanup(func() {
		reqW.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	if m := d.next(); m.Type != "ready" {
		t.Fatalf("first message %+v, want ready", m)
	}
	return d
}

func readAll(f *os.File) ([]byte, error) {
	defer f.Close()
	var b []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			return b, nil
		}
	}
}

// next reads one message.
func (d *driver) next() message {
	d.t.Helper()
	if !d.msgs.Scan() {
		d.t.Fatalf("driver ended: %v", d.msgs.Err())
	}
	var m message
	if err := json.Unmarshal(d.msgs.Bytes(), &m); err != nil {
		d.t.Fatalf("malformed message %q: %v", d.msgs.Bytes(), err)
	}
	return m
}

// send sends one request.
func (d *driver) send(req map[string]any) {
	d.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.req.Write(append(b, '\n')); err != nil {
		d.t.Fatal(err)
	}
}

// run runs one cell and returns its messages, done last.
func (d *driver) run(code string) []message {
	d.t.Helper()
	d.send(map[string]any{"type": "run", "code": code, "filename": "<cell>"})
	return d.collect()
}

// collect reads messages up to and including done.
func (d *driver) collect() []message {
	d.t.Helper()
	var ms []message
	for {
		m := d.next()
		ms = append(ms, m)
		if m.Type == "done" {
			return ms
		}
	}
}

// interrupt sends SIGINT to the driver.
func (d *driver) interrupt() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		d.t.Fatal(err)
	}
}
