package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// TestStatusSignatureReasons: a pull refused for its signature leaves the
// Image not Ready with the signature's reason, not a generic Failed; an
// unverified revision shows in the document and makes it not all Ready
// until cleared.
func TestStatusSignatureReasons(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)}
	b := NewStatusBook(clk.now)
	refused := fmt.Errorf("pull image base: %w", sign.Unsigned("tag base"))
	b.Failed(reconcile.Action{Kind: manifests.KindImage, Name: "base", Op: reconcile.OpPull}, refused, false)
	c := cond(t, b.Snapshot(), "Image/base", ConditionReady)
	if c.Status || c.Reason != sign.ReasonUnsigned || c.Message != "pull image base: tag base is unsigned" {
		t.Errorf("Ready %+v", c)
	}

	b2 := NewStatusBook(clk.now)
	if !b2.Snapshot().AllReady() {
		t.Fatal("empty book not ready")
	}
	b2.SetRevisionUnverified(&RevisionUnverified{Commit: "abc", Reason: sign.ReasonNotAllowed, Message: "m", Since: clk.t})
	st := b2.Snapshot()
	if st.RevisionUnverified == nil || st.RevisionUnverified.Commit != "abc" || st.AllReady() {
		t.Errorf("unverified: %+v", st.RevisionUnverified)
	}
	b2.SetRevisionUnverified(nil)
	if st := b2.Snapshot(); st.RevisionUnverified != nil || !st.AllReady() {
		t.Errorf("cleared: %+v", st.RevisionUnverified)
	}
}
