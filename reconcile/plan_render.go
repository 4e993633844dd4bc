package reconcile

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Sign is the one-character mark RenderText puts before an action, in the
// manner of `terraform plan`: + create, ~ replace/update/build/pull,
// - prune/destroy, > start, . stop, < rollback.
func (op Op) Sign() string {
	switch op {
	case OpCreate, OpCreateVolume, OpImport:
		return "+"
	case OpReplace, OpUpdateVolume, OpBuild, OpPull, OpConfirm:
		return "~"
	case OpRollback:
		return "<"
	case OpPrune, OpDestroyVolume:
		return "-"
	case OpStart:
		return ">"
	case OpStop:
		return "."
	}
	return "?"
}

// Verb names an operation without its object kind, which is printed or
// labelled separately: "create-volume" is "create" (volume data). It is both
// RenderText's word and the action label of the metrics (ARCHITECTURE
// section 8).
func (op Op) Verb() string {
	switch op {
	case OpCreateVolume:
		return "create"
	case OpUpdateVolume:
		return "update"
	case OpDestroyVolume:
		return "destroy"
	}
	return string(op)
}

// Summary counts a plan's actions by effect.
type Summary struct {
	Create  int `json:"create"`  // create, create-volume, import
	Replace int `json:"replace"` // replace, rollback
	Update  int `json:"update"`  // update-volume, build, pull, confirm
	Start   int `json:"start"`
	Stop    int `json:"stop"`
	Prune   int `json:"prune"` // prune, destroy-volume
	Blocked int `json:"blocked"`
	// Waiting counts the blocked entries that wait for another object of
	// the same plan (an image being made, a dependency starting): they go
	// ahead by themselves (F35).
	Waiting int `json:"waiting"`
}

// Summarize counts p's actions by effect.
func (p Plan) Summarize() Summary {
	var s Summary
	for _, a := range p.Actions {
		switch a.Op {
		case OpCreate, OpCreateVolume, OpImport:
			s.Create++
		case OpReplace, OpRollback:
			s.Replace++
		case OpUpdateVolume, OpBuild, OpPull, OpConfirm:
			s.Update++
		case OpStart:
			s.Start++
		case OpStop:
			s.Stop++
		case OpPrune, OpDestroyVolume:
			s.Prune++
		}
	}
	s.Blocked = len(p.Blocked)
	for _, b := range p.Blocked {
		if b.Waiting() {
			s.Waiting++
		}
	}
	return s
}

// Line is the action as plan prints it ("~ replace container web: spec.command
// changed"); apply prints the same line with the time it took.
func (a Action) Line() string {
	return fmt.Sprintf("%s %s %s %s: %s", a.Op.Sign(), a.Op.Verb(), strings.ToLower(a.Kind), a.Name, a.Reason)
}

// RenderText writes p for people: one line per action with its sign and
// reason ("~ replace container web: spec.command changed"), one "!" line per
// blocked change, then a summary line.
func RenderText(w io.Writer, p Plan) error {
	var b strings.Builder
	for _, a := range p.Actions {
		b.WriteString(a.Line() + "\n")
	}
	// A guard holds every prune with one message: one line for all of
	// them (F23), not one per object.
	guarded := map[string][]string{}
	var order []string
	for _, bl := range p.Blocked {
		if bl.Reason == BlockedEmptyManifests || bl.Reason == BlockedMaxPrune {
			k := bl.Reason + "\x00" + bl.Message
			if guarded[k] == nil {
				order = append(order, k)
			}
			guarded[k] = append(guarded[k], strings.ToLower(bl.Kind)+" "+bl.Name)
			continue
		}
		op := "hold"
		if bl.Op != "" {
			op = bl.Op.Verb()
		}
		if bl.Waiting() {
			// Not a problem: it goes ahead once what it waits for is made.
			fmt.Fprintf(&b, "! %s %s %s: %s\n", op, strings.ToLower(bl.Kind), bl.Name, bl.Message)
			continue
		}
		fmt.Fprintf(&b, "! %s %s %s: %s (%s)\n", op, strings.ToLower(bl.Kind), bl.Name, bl.Message, bl.Reason)
	}
	for _, k := range order {
		reason, msg, _ := strings.Cut(k, "\x00")
		fmt.Fprintf(&b, "! prune %s: %s (%s)\n", strings.Join(guarded[k], ", "), msg, reason)
	}
	if p.InSync {
		b.WriteString("No changes: in sync.\n")
	} else {
		s := p.Summarize()
		fmt.Fprintf(&b, "Plan: %d to create, %d to replace, %d to update, %d to start, %d to stop, %d to prune, %d blocked",
			s.Create, s.Replace, s.Update, s.Start, s.Stop, s.Prune, s.Blocked-s.Waiting)
		if s.Waiting > 0 {
			fmt.Fprintf(&b, ", %d waiting", s.Waiting)
		}
		b.WriteString(".\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// planJSON is the `plan -o json` document; its field names are stable.
type planJSON struct {
	Revision string    `json:"revision,omitempty"`
	InSync   bool      `json:"inSync"`
	Summary  Summary   `json:"summary"`
	Actions  []Action  `json:"actions"`
	Blocked  []Blocked `json:"blocked"`
}

// RenderJSON writes p as one indented JSON document: revision, inSync,
// summary, actions (kind, name, op, reason, dependsOn, imageID, specHash,
// inputs, manifest) and blocked (kind, name, op, reason, message). Lists are
// [] rather than null when empty.
func RenderJSON(w io.Writer, p Plan) error {
	doc := planJSON{Revision: p.Revision, InSync: p.InSync, Summary: p.Summarize(), Actions: p.Actions, Blocked: p.Blocked}
	if doc.Actions == nil {
		doc.Actions = []Action{}
	}
	if doc.Blocked == nil {
		doc.Blocked = []Blocked{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write plan as json: %w", err)
	}
	return nil
}
