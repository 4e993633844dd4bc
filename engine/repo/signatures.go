package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// Signatures (engine/sign) live beside what they sign:
//
//	images/<id>/meta.json.sig  SSHSIG of meta.json's exact bytes, namespace zocker-image
//	tags/<tag>.sig             a statement "tag -> ID at time", then its SSHSIG
//
// The stream is covered through the size and sha256 in meta.json. With a
// policy in force (Options.Policy) a pull takes the image ID from the signed
// tag statement, not from tags/<tag>, verifies the record of every image it
// is about to receive, and decodes each record from the verified bytes;
// only then does the first byte of a stream reach the local store.

func metaSigPath(id string) string { return metaPath(id) + ".sig" }
func tagSigPath(tag string) string { return tagPath(tag) + ".sig" }

// readSig reads a signature file; a missing one gives nil, nil.
func (r *Repository) readSig(name string) ([]byte, error) {
	b, err := r.readAll(name, sign.MaxSignatureFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", name, r.loc, err)
	}
	return b, nil
}

// ResolveSigned returns the image ID a tag points at. With a policy it is
// the ID of the signed tag statement, and the signer is returned; without
// one it is the tag file's ID and the signer is zero.
func (r *Repository) ResolveSigned(ctx context.Context, tag string) (string, sign.Signer, error) {
	if r.opts.Policy == nil {
		id, err := r.resolveUnsigned(ctx, tag)
		return id, sign.Signer{}, err
	}
	if err := image.ValidName("tag", tag); err != nil {
		return "", sign.Signer{}, err
	}
	if err := ctx.Err(); err != nil {
		return "", sign.Signer{}, err
	}
	file, err := r.readSig(tagSigPath(tag))
	if err != nil {
		return "", sign.Signer{}, err
	}
	if file == nil {
		// Tell a missing tag from an unsigned one.
		if _, err := r.resolveUnsigned(ctx, tag); err != nil {
			return "", sign.Signer{}, err
		}
	}
	t, signer, err := r.opts.Policy.VerifyTag(tag, file)
	if err != nil {
		return "", sign.Signer{}, fmt.Errorf("repository %s: %w", r.loc, err)
	}
	return t.ID, signer, nil
}

// verifiedMeta reads an image's record and its signature, verifies the
// signature over the record's exact bytes and decodes those bytes.
func (r *Repository) verifiedMeta(ctx context.Context, id string) (Meta, error) {
	b, err := r.metaBytes(ctx, id)
	if err != nil {
		return Meta{}, err
	}
	sig, err := r.readSig(metaSigPath(id))
	if err != nil {
		return Meta{}, err
	}
	if _, err := r.opts.Policy.Verify("image "+image.Short(id), sign.NamespaceImage, b, sig, sign.VerifyOptions{}); err != nil {
		return Meta{}, fmt.Errorf("repository %s: %w", r.loc, err)
	}
	return r.decodeMeta(id, b)
}

// metaBytes reads an image's record as stored.
func (r *Repository) metaBytes(ctx context.Context, id string) ([]byte, error) {
	if err := image.ValidID(id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := r.readAll(metaPath(id), 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s in repository %s: %w", id, r.loc, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read record of image %s in repository %s: %w", id, r.loc, err)
	}
	return b, nil
}

func (r *Repository) decodeMeta(id string, b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("decode record of image %s in repository %s: not a JSON record (%d bytes): %w", id, r.loc, len(b), ErrCorrupt)
	}
	if err := m.check(id); err != nil {
		return Meta{}, fmt.Errorf("repository %s: %w", r.loc, err)
	}
	return m, nil
}

// writeSig writes a signature file atomically.
func (r *Repository) writeSig(name string, sig []byte) error {
	return writeAtomic(r.f, name, func(w io.Writer) error {
		_, err := w.Write(sig)
		return err
	})
}

// signedInRepo reports whether an image present in the repository carries
// a signature: a signing push re-sends the images that do not, so that what
// it signs is what it sent, never a record someone else wrote.
func (r *Repository) signedInRepo(id string) bool {
	_, err := r.f.Stat(metaSigPath(id))
	return err == nil
}

// pushTagSignature writes tags/<tag>.sig for id, before the tag moves.
func (r *Repository) pushTagSignature(tag, id string) error {
	if r.opts.SignKey == nil {
		return nil
	}
	file, err := r.opts.SignKey.SignTag(sign.TagPayload{Tag: tag, ID: id, Time: r.opts.Now().UTC()})
	if err != nil {
		return err
	}
	if err := r.writeSig(tagSigPath(tag), file); err != nil {
		return fmt.Errorf("write tag signature: %w", err)
	}
	r.log.Info("signed tag", "tag", tag, "image", id, "signer", r.opts.SignKey.Fingerprint(), "action", "push")
	return nil
}

// ResolveSigned is ResolveWith that also returns the tag's signer when
// opts carries a policy: what plan shows beside a pull.
func ResolveSigned(ctx context.Context, repoURL, tag string, opts Options) (string, sign.Signer, error) {
	if err := image.ValidName("tag", tag); err != nil {
		return "", sign.Signer{}, err
	}
	r, err := Open(ctx, repoURL, opts)
	if err != nil {
		return "", sign.Signer{}, err
	}
	defer r.Close()
	return r.ResolveSigned(ctx, tag)
}
