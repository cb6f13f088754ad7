// Package client is the Go SDK of cove: a *Client talks to a cove server
// (`cove serve`) over its REST API and implements cove.Service, the same
// interface as the in-process service, so code written against
// cove.Service runs unchanged against a local or a remote cove.
//
// Create a client with the server's URL and an API key:
//
//	c, err := client.New("http://127.0.0.1:7070", os.Getenv("COVE_API_KEY"))
//
// Every method takes a context first; cancelling it cancels the request,
// and for executions it kills the program in the sandbox.
//
// # Executions
//
// Exec, RunCode and Run return a cove.Stream of events read from the
// server as NDJSON while the program runs: output chunks as they are
// written, then one exit event with the result. Next returns io.EOF after
// the exit event (even if ctx is cancelled later) and ctx.Err() once ctx
// is cancelled before; Close aborts the request (and so the program).
// A stream that has ended (its last event, io.EOF or an error) releases
// its connection by itself, but a stream given up earlier holds it until
// Close: defer Close after every successful call that returns a stream.
// cove.Collect gathers a whole stream into one result, and closes it:
//
//	st, err := c.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "print(42)"}})
//	if err != nil { ... }
//	res, err := cove.Collect(st)
//	fmt.Print(res.Stdout)
//
// A failing program is a result, not an error: look at res.Verdict and
// res.ExitCode.
//
// # Errors
//
// Errors of the API come back as *cove.Error with the API's code and
// message, so they can be tested by code:
//
//	if errors.Is(err, &cove.Error{Code: cove.CodeNotFound}) { ... }
//
// A server that cannot be reached gives an unavailable error; a cancelled
// context gives the context's error. A quota_exceeded error that waiting
// clears (too many executions at once, an AI rate limit) says how long
// the server asked to wait:
//
//	if d, ok := client.RetryAfter(err); ok { time.Sleep(d); ... }
//
// # Files and terminals
//
// WriteFile streams a reader to the server and ReadFile and
// DownloadArchive stream the answer back, so large files never sit in
// memory. OpenPTY opens an interactive terminal over a WebSocket.
package client
