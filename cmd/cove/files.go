package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func newFilesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "files",
		Short: "List, read and change files in a sandbox",
		Long: `List, read and change files in a sandbox's workspace. Paths are relative to
/workspace, or absolute under it. To copy files in and out, use cove cp.`,
	}
	cmd.AddCommand(newFilesListCmd(e), newFilesCatCmd(e), newFilesRemoveCmd(e), newFilesMkdirCmd(e),
		newFilesMoveCmd(e), newFilesChmodCmd(e), newFilesFindCmd(e))
	return commandGroup(cmd)
}

func newFilesListCmd(e *env) *cobra.Command {
	var recursive, asJSON bool
	cmd := &cobra.Command{
		Use:     "ls [flags] ID [PATH]",
		Aliases: []string{"list"},
		Short:   "List a directory",
		Args:    rangeArgs(1, 2, "files ls [flags] ID [PATH]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 2 {
				dir = args[1]
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			files, err := svc.ListFiles(cmd.Context(), args[0], dir, recursive)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, wire.FileList{Entries: wire.FileInfosFrom(files)})
			}
			last := "NAME"
			if recursive {
				last = "PATH"
			}
			t := newTable(e.stdout, "MODE", "SIZE", "MODIFIED", last)
			for _, f := range files {
				name := f.Name
				if recursive {
					name = f.Path
				}
				if f.Symlink != "" {
					name += " -> " + f.Symlink
				}
				t.row(lsMode(f), strconv.FormatInt(f.Size, 10), timestamp(f.ModTime), name)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "list the whole tree")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the files as JSON")
	return cmd
}

// lsMode is a file's type and permission bits as ls -l writes them:
// "drwxr-xr-x", "lrwxrwxrwx", "-rw-r--r--". Go's FileMode.String would
// write a link as "Lrwxrwxrwx". The API tells directories and links from
// other files, and nothing more.
func lsMode(fi *cove.FileInfo) string {
	kind := "-"
	switch {
	case fi.IsDir:
		kind = "d"
	case fi.Symlink != "":
		kind = "l"
	}
	// FileMode.String of bare permission bits is "-" and nine letters.
	return kind + (fs.FileMode(fi.Mode) & fs.ModePerm).String()[1:]
}

func newFilesCatCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "cat ID PATH",
		Short: "Print a file",
		Args:  exactArgs(2, "files cat ID PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			rc, _, err := svc.ReadFile(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(e.stdout, rc)
			return err
		},
	}
}

func newFilesRemoveCmd(e *env) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "rm [flags] ID PATH...",
		Short: "Remove files, or directories with -r",
		Args:  minArgs(2, "files rm [flags] ID PATH..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			// As rm(1): each path is removed or said why not, and the
			// exit status is the first failure's. A sandbox that is not
			// there (or stopped) fails every path alike, in the same
			// words: those are said once.
			exit := 0
			said := map[string]bool{}
			for _, p := range args[1:] {
				err := e.explain(svc.DeleteFile(cmd.Context(), args[0], p, recursive))
				if err == nil {
					continue
				}
				if errors.Is(err, context.Canceled) {
					return err
				}
				if msg := cove.ErrorMessage(err); !said[msg] {
					said[msg] = true
					fmt.Fprintf(e.stderr, "cove: %s\n", msg)
				}
				if exit == 0 {
					exit = cove.Codes[cove.ErrorCode(err)].ExitCode
				}
			}
			if exit != 0 {
				return &exitError{code: exit}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "remove directories and their contents")
	return cmd
}

// fileCmd builds a files command that changes one file and prints
// nothing, or the file's new description with --json.
func fileCmd(e *env, use, short string, nargs int, call func(cmd *cobra.Command, svc cove.Service, args []string) (*cove.FileInfo, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(nargs, "files "+use),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			fi, err := call(cmd, svc, args)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, wire.FileInfoFrom(fi))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the file's description as JSON")
	return cmd
}

func newFilesMkdirCmd(e *env) *cobra.Command {
	return fileCmd(e, "mkdir ID PATH", "Create a directory and its parents", 2,
		func(cmd *cobra.Command, svc cove.Service, args []string) (*cove.FileInfo, error) {
			return svc.MakeDir(cmd.Context(), args[0], args[1])
		})
}

func newFilesMoveCmd(e *env) *cobra.Command {
	cmd := fileCmd(e, "mv ID FROM TO", "Rename or move a file or directory", 3,
		func(cmd *cobra.Command, svc cove.Service, args []string) (*cove.FileInfo, error) {
			id, from, to := args[0], args[1], args[2]
			// As mv(1): into TO when it is a directory (or ends in /),
			// under FROM's name. A file already at the target is not
			// replaced.
			if strings.HasSuffix(to, "/") {
				to = path.Join(to, path.Base(from))
			} else if fi, err := svc.StatFile(cmd.Context(), id, to); err == nil && fi.IsDir && fi.Symlink == "" {
				to = path.Join(to, path.Base(from))
			}
			return svc.MoveFile(cmd.Context(), id, from, to)
		})
	cmd.Long = `Rename or move a file or directory. When TO is a directory (or ends in /),
FROM moves into it under its own name. Nothing already at the target is
replaced: remove it first.`
	return cmd
}

func newFilesChmodCmd(e *env) *cobra.Command {
	return fileCmd(e, "chmod ID MODE PATH", "Set a file's permission bits (octal, e.g. 755)", 3,
		func(cmd *cobra.Command, svc cove.Service, args []string) (*cove.FileInfo, error) {
			mode, err := strconv.ParseUint(args[1], 8, 32)
			if err != nil {
				return nil, cove.Errorf(cove.CodeInvalid, "mode %q: use octal permission bits such as 644 or 755", args[1])
			}
			return svc.ChmodFile(cmd.Context(), args[0], args[2], uint32(mode))
		})
}

func newFilesFindCmd(e *env) *cobra.Command {
	var (
		req    cove.SearchRequest
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "find [flags] ID [PATH]",
		Short: "Find files by name glob and lines by content",
		Example: `  cove files find 3f9a1c2b7d4e --name '*.py'
  cove files find 3f9a1c2b7d4e src --content TODO`,
		Args: rangeArgs(1, 2, "files find [flags] ID [PATH]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				req.Path = args[1]
			}
			svc, err := e.remoteService(cmd.Context())
			if err != nil {
				return err
			}
			res, err := svc.SearchFiles(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, res)
			}
			for _, m := range res.Matches {
				if m.Line > 0 {
					fmt.Fprintf(e.stdout, "%s:%d:%s\n", cell(m.Path), m.Line, printableLine(m.Text))
				} else {
					fmt.Fprintln(e.stdout, cell(m.Path))
				}
			}
			if res.Truncated {
				fmt.Fprintln(e.stderr, "cove: more matches than shown: raise --max or narrow the search")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Name, "name", "", "glob matched against file names (e.g. '*.py')")
	fl.StringVar(&req.Content, "content", "", "text to look for in files")
	fl.IntVar(&req.MaxResults, "max", 0, "at most this many matches (default and maximum 1000)")
	fl.BoolVar(&asJSON, "json", false, "print the matches as JSON")
	return cmd
}
