package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv/snapshot"
)

func init() { register(newSnapshotCmd) }

// snapshotPath is the URL path the snapshot server answers on.
const snapshotPath = "/snapshot"

func newSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Serve database snapshots over HTTP, or fetch one",
		Long: `A snapshot is the database file itself, as one read transaction sees it,
streamed kernel to kernel (sendfile). "mapkv snapshot serve" answers
GET ` + snapshotPath + ` with it; any HTTP client can fetch one:

    curl -o replica.db http://primary:7070` + snapshotPath + `

"mapkv snapshot fetch" does the same and more: it receives into a
temporary file, verifies it (meta checksums and a full check) and only
then renames it into place.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exitWith(exitUsage, errors.New("snapshot wants a subcommand: serve or fetch"))
		},
	}
	cmd.AddCommand(newSnapshotServeCmd(g), newSnapshotFetchCmd(g))
	return cmd
}

// readToken reads a bearer token from path: the file's content without
// surrounding white space, which must not be empty.
func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s: the file is empty", path)
	}
	return tok, nil
}

func newSnapshotServeCmd(g *globals) *cobra.Command {
	var addr, tokenFile string
	var maxConcurrent int
	cmd := &cobra.Command{
		Use:   "serve DB",
		Short: "Serve snapshots of DB over HTTP until interrupted",
		Long: `Serve answers GET ` + snapshotPath + ` with a consistent image of DB (and HEAD with
its size, txid and page size), until Ctrl-C. It listens on loopback
unless --addr says otherwise. With --token-file, every request must carry
"Authorization: Bearer <token>" with the file's content as token. At most
--max-concurrent snapshots stream at once; more get 503.

The database is opened read-only.`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			db, err := g.openDB(args[0], false)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx, stop := interruptible(cmd)
			defer stop()
			st := db.Stats()
			auth := ""
			if tok != "" {
				auth = ", bearer token required"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s (tx %d, %s) at http://%s%s%s; Ctrl-C stops\n",
				args[0], st.TxID, humanBytes(int64(st.PageCount)*int64(st.PageSize)), addr, snapshotPath, auth)
			if err := snapshot.Serve(ctx, db, addr, &snapshot.Options{Token: tok, MaxConcurrent: maxConcurrent}); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:7070", "address to listen on (host:port)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the bearer token clients must send")
	cmd.Flags().IntVar(&maxConcurrent, "max-concurrent", 0, "snapshots streaming at once, past which clients get 503 (0: the default, 4)")
	return cmd
}

func newSnapshotFetchCmd(g *globals) *cobra.Command {
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "fetch URL OUT",
		Short: "Fetch a snapshot into OUT, verified, atomically",
		Long: `Fetch downloads a snapshot from URL (a "mapkv snapshot serve" address;
` + snapshotPath + ` is added when URL has no path) into a temporary file beside
OUT, syncs it, verifies it (meta checksums, then a full check) and renames
it over OUT. A failed, interrupted or corrupt transfer leaves OUT as it
was and no temporary file behind.`,
		Args: usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			u, err := snapshotURL(args[0])
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			bar := g.newProgress(cmd, "fetch", true)
			var size int64
			start := time.Now()
			txid, err := snapshot.Fetch(ctx, u, args[1], &snapshot.FetchOptions{
				Token: tok,
				Progress: func(done, total int64) {
					size = done
					bar.set(done, total)
				},
			})
			bar.finish()
			if err != nil {
				if ctx.Err() != nil {
					return exitWith(exitInterrupted, fmt.Errorf("fetch %w; %s was not changed", errInterrupted, args[1]))
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fetched tx %d (%s) from %s into %s in %s, verified\n",
				txid, humanBytes(size), u, args[1], humanDuration(time.Since(start)))
			return nil
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the bearer token to send")
	return cmd
}

// snapshotURL checks a fetch URL and adds the snapshot path when it has
// none.
func snapshotURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("URL %q: want http://HOST:PORT[%s]", s, snapshotPath)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = snapshotPath
	}
	return u.String(), nil
}
