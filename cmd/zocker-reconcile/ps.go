package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// psRow is one container as ps shows it (and as ps -o json prints it).
type psRow struct {
	Name     string    `json:"name"`
	Image    string    `json:"image"`
	Created  time.Time `json:"created"`
	State    string    `json:"state"`
	IP       string    `json:"ip,omitempty"`
	Restarts int       `json:"restarts"`
	Health   string    `json:"health,omitempty"`
	Used     uint64    `json:"usedBytes"`
	Command  []string  `json:"command,omitempty"`
	Managed  bool      `json:"managed"`
	// Origin is the manifest file that declares the container, or "cli"
	// for one made by run or create.
	Origin string `json:"origin,omitempty"`
	// ExitCode is the last exit of a command that ended (state exited).
	ExitCode *int   `json:"exitCode,omitempty"`
	PID      int    `json:"pid,omitempty"`
	Message  string `json:"message,omitempty"`
	// up is supervisor.Status.Up: what ps lists without -a.
	up bool
}

// containerRows joins the clones under the root with their supervisors.
func containerRows(st *zfs.State, sups []supervisor.Status, stateDir string) []psRow {
	bySup := map[string]supervisor.Status{}
	for _, s := range sups {
		bySup[s.Name] = s
	}
	tags := map[string][]string{}
	for tag, id := range st.Tags {
		tags[id] = append(tags[id], tag)
	}
	var rows []psRow
	for _, c := range st.Containers {
		r := psRow{Name: c.ContainerName, Image: image.Short(c.ImageID), Created: c.Created, State: "created",
			IP: c.Props[engine.PropIP], Used: c.Used, Managed: c.Props[zfs.PropManaged] == "true"}
		r.Origin = c.Manifest
		if engine.IsAdHoc(c) {
			r.Origin = zfs.OriginCLI
		}
		if t := tags[c.ImageID]; len(t) > 0 {
			slices.Sort(t)
			r.Image = t[0]
		}
		if s, ok := bySup[c.ContainerName]; ok {
			r.State, r.Restarts, r.Health, r.PID, r.Message = string(s.State), s.Restarts, s.Health.Status, s.PID, s.Message
			r.up = s.Up()
			switch {
			case s.State == supervisor.StateExited && !s.LastExitAt.IsZero():
				// Zocker's "down": the command ended (its supervisor may be
				// gone with it, as for the containers of run).
				code := s.LastExitCode
				r.State, r.ExitCode = fmt.Sprintf("exited (%d)", code), &code
			case !s.Alive && s.State != supervisor.StateStopped:
				r.State = "dead (" + string(s.State) + ")"
			}
			if r.Health == supervisor.HealthNone {
				r.Health = ""
			}
		}
		if cfg, err := supervisor.ReadConfig(stateDir, c.ContainerName); err == nil {
			r.Command = cfg.Process.Argv
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b psRow) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

// previousRows lists the previous clones kept by health-gated updates
// (spec.update): state "previous", the clone's ID as the message.
func previousRows(st *zfs.State) []psRow {
	var rows []psRow
	for _, c := range st.Previous {
		rows = append(rows, psRow{Name: c.ContainerName, Image: image.Short(c.ImageID), Created: c.Created,
			State: "previous", Used: c.Used, Managed: true, Message: "previous clone " + c.PreviousID})
	}
	return rows
}

// observeRoot reads the state under --root without changing anything.
func observeRoot(ctx context.Context, g *globals) (*zfs.State, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	if _, err := checkRoot(ctx, g); err != nil {
		return nil, err
	}
	store, err := zfs.Attach(g.root, &runner.Exec{Logger: log}, log)
	if err != nil {
		return nil, err
	}
	st, err := store.Observe(ctx)
	if errors.Is(err, zfs.ErrNotFound) {
		return &zfs.State{Tags: map[string]string{}}, nil // nothing made under this root yet
	}
	return st, err
}

func init() {
	register(func(g *globals) *cobra.Command {
		var all, quiet, previous bool
		var output *format
		cmd := &cobra.Command{
			Use:   "ps",
			Short: "List containers",
			Long: `ps lists the running containers under --root: name, image, creation time,
state, IP, restarts, health, space used, origin (the manifest file that
declares it, or cli for a container made by run or create) and command. -a
adds the ones that do not run: created, stopped, and exited with the
command's exit code (Zocker's "down"). --previous adds the previous clones that
health-gated updates keep (spec.update).`,
			Example: `  zocker-reconcile ps
  zocker-reconcile ps -a -o json
  zocker-reconcile ps -a --previous`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				st, err := observeRoot(cmd.Context(), g)
				if err != nil {
					return err
				}
				sups, err := supervisor.List(g.stateDir)
				if err != nil && !os.IsNotExist(err) {
					return err
				}
				var rows []psRow
				for _, r := range containerRows(st, sups, g.stateDir) {
					if all || r.up {
						rows = append(rows, r)
					}
				}
				if previous {
					rows = append(rows, previousRows(st)...)
				}
				switch {
				case quiet:
					for _, r := range rows {
						fmt.Fprintln(g.stdout, r.Name)
					}
					return nil
				case *output == formatJSON:
					return printJSON(g.stdout, rows)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, "NAME\tIMAGE\tCREATED\tSTATE\tIP\tRESTARTS\tHEALTH\tUSED\tORIGIN\tCOMMAND")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Name, r.Image, r.Created.Local().Format("2006-01-02 15:04"),
						r.State, dash(r.IP), r.Restarts, dash(r.Health), image.Size(r.Used), dash(r.Origin), truncateCmd(r.Command))
				}
				return tw.Flush()
			},
		}
		cmd.Flags().BoolVarP(&all, "all", "a", false, "also list containers that do not run")
		cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the names only")
		cmd.Flags().BoolVar(&previous, "previous", false, "also list the previous clones kept by updates")
		output = addOutput(cmd)
		return cmd
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncateCmd shortens a command for a table. The command may be a pulled
// image's CMD: control characters (terminal escapes) are shown escaped,
// never sent to root's terminal (review L10).
func truncateCmd(argv []string) string {
	s := printable(strings.Join(argv, " "))
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// printable escapes control characters (C0, DEL, C1) and invalid UTF-8.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
