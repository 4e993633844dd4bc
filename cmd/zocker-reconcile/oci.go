package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/oci"
	img "github.com/zocker-reconcile/zocker-reconcile/image"
)

// OCI transports on the command line (ARCHITECTURE section 11).
const (
	dockerTransport  = "docker://"
	archiveTransport = "oci-archive:"
)

// isOCI says whether an import or push argument names an OCI transport.
func isOCI(arg string) bool {
	return strings.HasPrefix(arg, dockerTransport) || strings.HasPrefix(arg, archiveTransport)
}

// ociFlags are the flags of import and push for OCI transports.
type ociFlags struct {
	platform, name string
	insecure       bool
}

func (f *ociFlags) add(cmd *cobra.Command, withName bool) {
	cmd.Flags().StringVar(&f.platform, "platform", "", "OS/ARCH[/VARIANT] of the OCI image (default: the host's, "+oci.DefaultPlatform()+")")
	cmd.Flags().BoolVar(&f.insecure, "insecure", false, "talk plain HTTP to the registry (one on loopback)")
	if withName {
		cmd.Flags().StringVar(&f.name, "name", "", "oci-archive: the image of the index to import, by its org.opencontainers.image.ref.name")
	}
}

// importOCI pulls docker://REF or oci-archive:PATH into the store and tags it.
func importOCI(ctx context.Context, g *globals, tag, arg, sum string, f ociFlags) (string, error) {
	src := oci.Source{Platform: f.platform, Insecure: f.insecure, SHA256: strings.ToLower(sum), Name: f.name}
	if ref, ok := strings.CutPrefix(arg, dockerTransport); ok {
		if src.SHA256 != "" || src.Name != "" {
			return "", fmt.Errorf("import %s: --sha256 and --name are for oci-archive:; name the digest in the reference (REPO@sha256:...)", arg)
		}
		if _, err := oci.ParseRef(ref, f.insecure); err != nil {
			return "", err
		}
		src.Ref = ref
	} else {
		src.Archive = strings.TrimPrefix(arg, archiveTransport)
		if src.Archive == "" {
			return "", fmt.Errorf("import %s: give the archive's path: oci-archive:PATH", arg)
		}
	}
	if _, err := oci.ParsePlatform(f.platform); err != nil {
		return "", err
	}
	s, err := openStore(ctx, g)
	if err != nil {
		return "", err
	}
	log, err := g.logger()
	if err != nil {
		return "", err
	}
	res, err := (&oci.Puller{Store: s, Log: log}).Pull(ctx, src)
	if err != nil {
		return "", err
	}
	if err := s.Tag(ctx, tag, res.ID); err != nil {
		return "", err
	}
	fmt.Fprintf(g.stderr, "%s: %d layer(s), %d fetched (%s), manifest %s\n", src, res.Layers, res.Fetched, imageSize(res.Bytes), res.Manifest)
	return res.ID, nil
}

// pushOCI sends the local image TAG (or ID) to docker://REF.
func pushOCI(ctx context.Context, g *globals, image, arg string, f ociFlags) error {
	ref, ok := strings.CutPrefix(arg, dockerTransport)
	if !ok {
		return fmt.Errorf("push %s: want docker://REGISTRY/REPO:TAG (or --repository for a zocker repository)", arg)
	}
	if _, err := oci.ParseRef(ref, f.insecure); err != nil {
		return err
	}
	if _, err := oci.ParsePlatform(f.platform); err != nil {
		return err
	}
	s, err := openStore(ctx, g)
	if err != nil {
		return err
	}
	id, err := s.Resolve(ctx, image)
	if err != nil {
		return err
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	res, err := (&oci.Pusher{Store: s, Log: log}).Push(ctx, id, ref, f.platform, f.insecure)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s -> %s: %d layer(s), %d sent (%s), %d already there, manifest %s\n",
		image, arg, res.Layers, res.Sent, imageSize(res.Bytes), res.Layers-res.Sent, res.Manifest)
	return nil
}

// imageSize is image.Size for the transfer summaries (a parameter there is
// named image).
func imageSize(n int64) string { return img.Size(n) }
