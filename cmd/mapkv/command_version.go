package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/mapkv/mapkv/page"
)

func init() { register(newVersionCmd) }

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; otherwise the module version recorded
// in the binary is used ("(devel)" for a build from a checkout).
var version = ""

// versionInfo is the output of "mapkv version --json".
type versionInfo struct {
	Version       string `json:"version"`
	Revision      string `json:"revision,omitempty"`
	FormatVersion uint32 `json:"format_version"`
	Go            string `json:"go"`
	Platform      string `json:"platform"`
}

func buildVersion() versionInfo {
	v := versionInfo{
		Version:       version,
		FormatVersion: page.Version,
		Go:            runtime.Version(),
		Platform:      runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v.Revision = s.Value[:12]
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

// versionString is the one line "mapkv version" and "mapkv --version" print.
func versionString() string {
	v := buildVersion()
	s := "mapkv " + v.Version
	if v.Revision != "" {
		s += " (" + v.Revision + ")"
	}
	return fmt.Sprintf("%s, file format %d, %s %s", s, v.FormatVersion, v.Go, v.Platform)
}

func newVersionCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of mapkv and of its file format",
		Args:  usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), buildVersion())
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
