package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cove-sandbox/cove"
)

func newShellCmd(e *env) *cobra.Command {
	var (
		cwd  string
		envs []string
	)
	cmd := &cobra.Command{
		Use:   "shell [flags] ID [-- CMD...]",
		Short: "Open an interactive terminal in a sandbox",
		Long: `Open an interactive terminal in a sandbox, like docker exec -it: a login
shell by default, or the command after --.

When standard input is a terminal it is put in raw mode and window size
changes follow; otherwise the input is typed into the terminal as it comes,
and its end reaches the program as ^D. The exit status is the program's own.`,
		Example: `  cove shell 3f9a1c2b7d4e
  cove shell 3f9a1c2b7d4e -- python3
  echo 'ls; exit 3' | cove shell 3f9a1c2b7d4e`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, argv, err := idAndCommand(cmd, args)
			if err != nil {
				return err
			}
			req := cove.PTYRequest{Cmd: argv, Cwd: cwd}
			if req.Env, err = pairs("--env", envs); err != nil {
				return err
			}
			in, tty := terminalFd(e.stdin)
			if tty {
				if cols, rows, err := term.GetSize(in); err == nil {
					req.Cols, req.Rows = cols, rows
				}
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			p, err := svc.OpenPTY(cmd.Context(), id, req)
			if err != nil {
				return err
			}
			defer p.Close()
			restore := func() {}
			if tty {
				old, err := term.MakeRaw(in)
				if err != nil {
					return cove.Errorf(cove.CodeUnavailable, "putting the terminal in raw mode: %v", err)
				}
				restore = func() { term.Restore(in, old) }
				defer restore()
				stop := followWindowSize(in, func(cols, rows int) { p.Resize(cols, rows) })
				defer stop()
			}
			exited := make(chan struct{})
			go func() {
				io.Copy(p, e.stdin)
				if !tty {
					endOfInput(p, exited)
				}
			}()
			if _, err := io.Copy(e.stdout, p); err != nil {
				p.Close() // nothing can show the program's output any more
			}
			close(exited)
			res, err := p.Wait()
			restore()
			if err != nil {
				return err
			}
			if res.Message != "" {
				fmt.Fprintf(e.stderr, "cove: %s\n", res.Message)
			}
			return exitFor(res)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&cwd, "cwd", "w", "", "working directory (default /workspace)")
	fl.StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	return takesCommandAfterID(cmd)
}

// terminalFd returns the descriptor of r and whether it is a terminal.
func terminalFd(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// stdinTerminal reports whether cove's standard input is a terminal.
func (e *env) stdinTerminal() bool {
	_, tty := terminalFd(e.stdin)
	return tty
}

// endOfInput tells the terminal that piped input has ended, as ^D typed
// at the start of a line does. A ^D that reaches the terminal before the
// program reads it in raw mode (a shell starting its line editor) is
// lost in the switch of modes, so it is repeated until the program
// exits: every read after the end of the input sees the end.
func endOfInput(p cove.PTY, exited <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := p.Write([]byte{4}); err != nil {
			return
		}
		select {
		case <-exited:
			return
		case <-tick.C:
		}
	}
}

// followWindowSize calls resize with the new size whenever the local
// terminal fd is resized, until the returned function is called.
func followWindowSize(fd int, resize func(cols, rows int)) (stop func()) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-winch:
				if cols, rows, err := term.GetSize(fd); err == nil {
					resize(cols, rows)
				}
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		close(done)
	}
}
