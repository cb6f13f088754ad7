package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
)

// The examples talk to a cove server at COVE_URL with the key in
// COVE_API_KEY, as `cove serve` prints them.

func ExampleNew() {
	c, err := client.New(os.Getenv("COVE_URL"), os.Getenv("COVE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	sb, err := c.CreateSandbox(ctx, cove.SandboxSpec{
		Language: "python",
		Limits:   cove.Limits{MemoryBytes: 256 << 20},
		Labels:   map[string]string{"project": "demo"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.DeleteSandbox(ctx, sb.ID)
	fmt.Println("created", sb.ID, sb.State)
}

// Run code in a new sandbox that is destroyed afterwards, and print its
// output.
func ExampleClient_Run() {
	c, err := client.New(os.Getenv("COVE_URL"), os.Getenv("COVE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	st, err := c.Run(context.Background(), cove.RunRequest{
		CodeRequest: cove.CodeRequest{Language: "python", Code: "print(sum(range(10)))"},
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := cove.Collect(st)
	if err != nil {
		log.Fatal(err)
	}
	// A failing program is a result, not an error.
	fmt.Print(res.Stdout)
	fmt.Println("verdict:", res.Verdict, "exit code:", res.ExitCode)
}

// Stream a command's output as it is written.
func ExampleClient_Exec() {
	c, err := client.New(os.Getenv("COVE_URL"), os.Getenv("COVE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	sb, err := c.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.DeleteSandbox(ctx, sb.ID)

	st, err := c.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "for i in 1 2 3; do echo $i; sleep 1; done"})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		switch ev.Type {
		case cove.EventStdout:
			os.Stdout.Write(ev.Data)
		case cove.EventStderr:
			os.Stderr.Write(ev.Data)
		case cove.EventExit:
			fmt.Println("done:", ev.Result.Verdict, ev.Result.WallMS, "ms")
		}
	}
}

// Stop a running program from elsewhere (here, after two seconds) and
// still read its result: what it used until it was killed.
func ExampleClient_StopExecution() {
	c, err := client.New(os.Getenv("COVE_URL"), os.Getenv("COVE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	st, err := c.Run(ctx, cove.RunRequest{
		CodeRequest: cove.CodeRequest{Language: "python", Code: "while True: pass"},
	})
	if err != nil {
		log.Fatal(err)
	}
	id := cove.ExecutionID(st)
	time.AfterFunc(2*time.Second, func() {
		if err := c.StopExecution(ctx, id); err != nil {
			log.Print(err)
		}
	})
	res, err := cove.Collect(st)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Verdict, res.Message, res.CPUMS, "ms of CPU")
}

// Start a background process and wait for it to end.
func ExampleClient_WaitProcess() {
	c, err := client.New(os.Getenv("COVE_URL"), os.Getenv("COVE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	sb, err := c.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.DeleteSandbox(ctx, sb.ID)
	p, err := c.StartProcess(ctx, sb.ID, cove.ProcessRequest{Shell: "sleep 3; echo built > out.txt", Name: "build"})
	if err != nil {
		log.Fatal(err)
	}
	done, err := c.WaitProcess(ctx, sb.ID, p.PID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.Name, done.State, done.Result.Verdict)
}

// Upload a file, run a program on it, and download what it wrote.
func ExampleClient_WriteFile() {
	c, err := client.New(os.Getenv("COVE_URL"), os.Getenv("COVE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	sb, err := c.CreateSandbox(ctx, cove.SandboxSpec{Language: "python"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.DeleteSandbox(ctx, sb.ID)

	// WriteFile streams any reader, an *os.File as well.
	if _, err := c.WriteFile(ctx, sb.ID, "data/in.txt", strings.NewReader("b\na\nc\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	st, err := c.RunCode(ctx, sb.ID, cove.CodeRequest{Code: "lines = sorted(open('data/in.txt'))\nopen('data/out.txt', 'w').writelines(lines)"})
	if err != nil {
		log.Fatal(err)
	}
	res, err := cove.Collect(st)
	if err != nil {
		log.Fatal(err)
	}
	// A failing program is a result, not an error: it wrote no file.
	if res.Verdict != cove.VerdictOK {
		log.Fatalf("the program failed (%s, exit code %d): %s", res.Verdict, res.ExitCode, res.Stderr)
	}
	rc, info, err := c.ReadFile(ctx, sb.ID, "data/out.txt")
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	fmt.Println(info.Name, info.Size, "bytes:")
	io.Copy(os.Stdout, rc)
}

// Run ten sandboxes in parallel: the client is safe for concurrent use.
func Example_parallel() {
	c, err := client.New(os.Getenv("COVE_URL"), os.Getenv("COVE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	outputs := make([]string, 10)
	var wg sync.WaitGroup
	for i := range outputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{
				Language: "python",
				Code:     fmt.Sprintf("print(%d ** 2)", i),
			}})
			if err != nil {
				outputs[i] = "error: " + err.Error()
				return
			}
			res, err := cove.Collect(st)
			if err != nil {
				outputs[i] = "error: " + err.Error()
				return
			}
			outputs[i] = strings.TrimSpace(res.Stdout)
		}()
	}
	wg.Wait()
	fmt.Println(strings.Join(outputs, " "))
}

// Errors carry the API's codes.
func Example_errors() {
	c, err := client.New(os.Getenv("COVE_URL"), os.Getenv("COVE_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.GetSandbox(context.Background(), "no-such-sandbox")
	switch {
	case errors.Is(err, &cove.Error{Code: cove.CodeNotFound}):
		fmt.Println("no such sandbox")
	case errors.Is(err, &cove.Error{Code: cove.CodeUnauthorized}):
		fmt.Println("check COVE_API_KEY")
	case err != nil:
		log.Fatal(err)
	}
}
