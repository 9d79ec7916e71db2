package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	steps    int // FROM + instructions, for "Step i/n"
}

// jsonForms are the instructions whose argument may be a JSON array; an
// argument that starts with "[" but is not valid JSON is refused (Docker
// would silently take it as shell form, which hides typos).
var jsonForms = map[string]bool{
	"cmd": true, "entrypoint": true, "run": true, "shell": true,
	"volume": true, "copy": true, "add": true,
}

func parseDockerfile(src []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil && strings.Contains(err.Error(), "no instructions") {
		return nil, fmt.Errorf("Dockerfile line 1: empty Dockerfile: it must start with FROM (after optional ARGs): %w", ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("Dockerfile: %v: %w", lineErr(err), ErrInvalid)
	}
	for _, n := range res.AST.Children {
		if v := strings.ToLower(n.Value); v != "arg" {
			if v != "from" {
				return nil, fmt.Errorf("Dockerfile line %d: %s before FROM: a Dockerfile must start with FROM (after optional ARGs): %w", n.StartLine, strings.ToUpper(n.Value), ErrInvalid)
			}
			break
		}
	}
	for _, n := range res.AST.Children {
		if err := checkJSON(n); err != nil {
			return nil, err
		}
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("Dockerfile: %v: %w", lineErr(err), ErrInvalid)
	}
	if len(stages) == 0 {
		line := 1
		if len(res.AST.Children) > 0 {
			line = res.AST.Children[0].StartLine
		}
		return nil, fmt.Errorf("Dockerfile line %d: no FROM instruction: a Dockerfile must start with FROM (after optional ARGs): %w", line, ErrInvalid)
	}
	df := &dockerfile{stages: stages, metaArgs: metaArgs, escape: res.EscapeToken}
	for _, s := range stages {
		df.steps += 1 + len(s.Commands)
	}
	return df, nil
}

// checkJSON refuses "CMD [..." whose JSON does not parse.
func checkJSON(n *parser.Node) error {
	name := strings.ToLower(n.Value)
	if name == "onbuild" && n.Next != nil && len(n.Next.Children) > 0 {
		return checkJSON(n.Next.Children[0])
	}
	if name == "healthcheck" {
		// HEALTHCHECK [opts] CMD <args>
		rest := afterWord(n.Original, "CMD")
		if rest != "" && strings.HasPrefix(rest, "[") && !n.Attributes["json"] {
			return badJSON(n)
		}
		return nil
	}
	if !jsonForms[name] || n.Attributes["json"] {
		return nil
	}
	rest := strings.TrimSpace(n.Original)
	rest = strings.TrimSpace(rest[min(len(n.Value), len(rest)):])
	for strings.HasPrefix(rest, "--") { // flags
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			return nil
		}
		rest = strings.TrimSpace(rest[i:])
	}
	if strings.HasPrefix(rest, "[") {
		return badJSON(n)
	}
	return nil
}

func afterWord(s, word string) string {
	fields := strings.Fields(s)
	for i, f := range fields {
		if strings.EqualFold(f, word) && i > 0 {
			idx := strings.Index(strings.ToUpper(s), " "+word)
			if idx >= 0 {
				return strings.TrimSpace(s[idx+len(word)+1:])
			}
		}
	}
	return ""
}

func badJSON(n *parser.Node) error {
	return fmt.Errorf("Dockerfile line %d: %s: bad JSON form: the argument starts with \"[\" but is not a JSON array of strings (use double quotes: [\"a\", \"b\"]): %w",
		n.StartLine, strings.ToUpper(n.Value), ErrInvalid)
}

// lineErr formats a BuildKit parse error with its line number.
func lineErr(err error) string {
	var le *parser.LocationError
	msg := err.Error()
	var uie *instructions.UnknownInstructionError
	if errors.As(err, &uie) {
		return fmt.Sprintf("line %d: unknown instruction: %s", uie.Line, strings.ToUpper(uie.Instruction))
	}
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		if !strings.Contains(msg, "line ") {
			return fmt.Sprintf("line %d: %s", le.Locations[0][0].Start.Line, msg)
		}
	}
	return msg
}
