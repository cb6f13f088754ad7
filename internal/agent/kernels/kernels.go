// Package kernels holds the interpreter drivers of stateful code contexts:
// small programs, embedded in the agent, that the agent starts inside a
// sandbox as the unprivileged user and feeds cells to.
//
// The protocol between the agent and a driver:
//
//   - The driver reads requests from file descriptor 3 and writes messages
//     to file descriptor 4, one JSON object per line each way. Its stdin
//     carries the driver's own source (Source), then end of file: on the
//     command line, tens of kilobytes of it showed in every ps listing of
//     the sandbox. Its stdout and stderr (fds 1 and 2) are pipes the agent
//     forwards as output, so what subprocesses and native code write is
//     not lost. Output written through the language's own streams
//     (print, console.log) travels as stdout/stderr messages on fd 4, in
//     order with the other messages of the cell.
//   - When it is ready for cells the driver sends {"type":"ready"}.
//   - A request is {"type":"run","code":"...","filename":"<cell 1>"} with,
//     for code transpiled from TypeScript, "source_map": the source map
//     (JSON text, version 3) of the code, through which the driver maps
//     stack frames of filename back to the user's lines.
//   - While a cell runs the driver sends, in order:
//     {"type":"stdout","text":"..."}, {"type":"stderr","text":"..."},
//     {"type":"display","bundle":{"image/png":"<base64>","text/plain":"..."}},
//     {"type":"result","bundle":{"text/plain":"...","text/html":"..."}}
//     (the value of the cell's last expression, as a REPL shows it; none
//     when it is None or undefined), {"type":"exception","name":"...",
//     "message":"...","traceback":["..."],"line":N} (line: the line of
//     the cell that raised), and last {"type":"done","status":S} with S
//     "ok", "error" (the cell raised) or "interrupted". done may carry
//     "cpu_ns": the CPU time the cell took (the interpreter's threads and
//     the children it waited for); without it the agent reads the
//     process's CPU time from /proc, to 10 ms.
//   - Messages and output may also come between cells (a thread that
//     prints later): the agent keeps the first 64 KiB of such output for
//     the next cell and drops the rest, and drops displays and results.
//     It ignores lines that are not messages (user code can write to fd
//     4) and drops messages longer than about 8 MiB with a note on the
//     cell's stderr, so drivers split long text into several messages.
//   - SIGINT interrupts the running cell: it ends with an exception
//     (KeyboardInterrupt in Python) and status "interrupted", and the
//     context keeps its state. SIGINT between cells is ignored. A cell
//     the agent interrupts (timeout, output limit, the host gave up) that
//     has not sent done a second later is killed with its interpreter's
//     whole cgroup, and the agent starts a fresh interpreter.
//   - End of file on fd 3 ends the driver.
package kernels

import (
	_ "embed"
)

//go:embed python.py
var pythonDriver string

//go:embed node.js
var nodeDriver string

// Languages are the languages that have a driver. TypeScript runs on the
// javascript driver after the host transpiles it.
var Languages = []string{"python", "javascript"}

// driverLabel ends a driver's command line, for ps to tell what the
// interpreter is; the drivers take it out of the argv their cells see.
const driverLabel = "cove-context"

// Argv returns the command line that starts the driver of language, and
// false for a language without one. The interpreter reads the program to
// run from its standard input ("-"): send it Source(language).
func Argv(language string) ([]string, bool) {
	switch language {
	case "python":
		return []string{"/usr/bin/python3", "-u", "-X", "utf8", "-", driverLabel}, true
	case "javascript":
		return []string{"/usr/bin/node", "--no-warnings", "-", driverLabel}, true
	}
	return nil, false
}

// Source returns the driver of language, which its interpreter reads on
// its standard input, or "" for a language without one.
func Source(language string) string {
	switch language {
	case "python":
		return pythonDriver
	case "javascript":
		return nodeDriver
	}
	return ""
}
