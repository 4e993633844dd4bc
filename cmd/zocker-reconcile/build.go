package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/build"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

func init() { register(newBuildCmd) }

func newBuildCmd(g *globals) *cobra.Command {
	var tag, file string
	var buildArgs []string
	var noCache bool
	cmd := &cobra.Command{
		Use:   "build -t TAG [-f FILE] [--build-arg K=V]... [--no-cache] PATH",
		Short: "Build an image from a Zockerfile and tag it",
		Long: `build runs the Zockerfile in the build context PATH step by step, each step
on a ZFS clone of the previous one, RUN steps in a build jail. A step whose
inputs (parent image, instruction, the ARG values it sees, the files COPY
reads) were built before is reused: building again with nothing changed runs
no step. COPY reads only from PATH; .zockerignore in PATH leaves files out.
TAG moves to the new image only when every step succeeded.`,
		Example: `  zocker-reconcile build -t hello examples/demo/hello
  zocker-reconcile build -t apache -f Zockerfile.prod --build-arg VERSION=2.4 ./apache`,
		Args: needs(1, "the build context PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := image.ValidName("tag", tag); err != nil {
				return err
			}
			bargs, err := parseBuildArgs(buildArgs)
			if err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			driver, err := supervisor.NewDriver(g.stateDir, supervisor.DriverOptions{}, log)
			if err != nil {
				return fmt.Errorf("build: %w", err)
			}
			s, err := openStore(cmd.Context(), g)
			if err != nil {
				return err
			}
			_, err = build.Build(cmd.Context(), build.Options{
				ContextDir: args[0], File: file, Tag: tag, Args: bargs, NoCache: noCache,
				Output: g.stdout, Store: s, Driver: driver, Log: log,
			})
			return err
		},
	}
	cmd.Flags().StringVarP(&tag, "tag", "t", "", "the tag to point at the built image (required)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "the Zockerfile, relative to PATH unless absolute (default PATH/Zockerfile)")
	cmd.Flags().StringArrayVar(&buildArgs, "build-arg", nil, "an ARG value, K=V (K alone takes $K from the environment); repeatable")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "run every step even when its image exists")
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}

// parseBuildArgs turns --build-arg K=V flags into a map; a bare K takes its
// value from the environment, as docker build does.
func parseBuildArgs(list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range list {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: want NAME=VALUE", a)
		}
		if !ok {
			env, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = env
		}
		m[k] = v
	}
	return m, nil
}
