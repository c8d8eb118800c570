package argocd

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keyless-cd/keyless/internal/celhealth"
)

// recognise converts an Argo CD Lua health check to CEL expressions only
// when it is one of two shapes whose meaning is certain, written with a
// small subset of Lua (anything else is refused, with the reason):
//
//   - a loop over obj.status.conditions whose if-blocks compare the
//     condition's type and status with literals, set hs.status to a literal
//     and return hs;
//   - if-blocks comparing obj.status.phase with literals the same way;
//
// with `~= nil` guards on obj.status, obj.status.conditions and
// obj.status.phase, hs.message set to anything simple, and Progressing as
// the status returned when nothing matched (CEL health's own default).
// Healthy becomes current, Degraded failed; Progressing needs no
// expression. Because Lua returns on the first condition of the list that
// matches while CEL asks each expression in turn, rules with different
// outcomes must exclude each other (the same condition type with different
// statuses, or different phases): conditions are unique by type.
func recognise(lua string) (celhealth.Expressions, string, error) {
	toks, err := lex(lua)
	if err != nil {
		return celhealth.Expressions{}, "", err
	}
	p := &luaParser{toks: toks}
	returned, _, err := p.block(map[string]string{}, 0, "")
	if err != nil {
		return celhealth.Expressions{}, "", err
	}
	if p.pos != len(p.toks) {
		return celhealth.Expressions{}, "", fmt.Errorf("%w: %q where the script should end", ErrNotRecognised, p.toks[p.pos].text)
	}
	if !returned {
		return celhealth.Expressions{}, "", fmt.Errorf("%w: the script does not end with return", ErrNotRecognised)
	}
	return rulesToCEL(p.rules)
}

type luaToken struct {
	str  bool // a string literal (text without its quotes)
	text string
}

// lex splits the subset recognise reads: names, plain string literals,
// == ~= = . , ( ) { } ; and -- line comments.
func lex(src string) ([]luaToken, error) {
	var out []luaToken
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case strings.IndexByte(" \t\n\r;", c) >= 0:
			i++
		case strings.HasPrefix(src[i:], "--["):
			return nil, fmt.Errorf("%w: a long comment", ErrNotRecognised)
		case strings.HasPrefix(src[i:], "--"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			// No escapes, no quotes of either kind, no line breaks.
			j := strings.IndexAny(src[i+1:], "\"'\\\n")
			if j < 0 || src[i+1+j] != c {
				return nil, fmt.Errorf("%w: a string with escapes or quotes", ErrNotRecognised)
			}
			out = append(out, luaToken{str: true, text: src[i+1 : i+1+j]})
			i += j + 2
		case isNameByte(c, true):
			j := i
			for j < len(src) && isNameByte(src[j], false) {
				j++
			}
			out = append(out, luaToken{text: src[i:j]})
			i = j
		case strings.HasPrefix(src[i:], "==") || strings.HasPrefix(src[i:], "~="):
			out = append(out, luaToken{text: src[i : i+2]})
			i += 2
		case strings.IndexByte("=.,(){}", c) >= 0:
			out = append(out, luaToken{text: string(c)})
			i++
		default:
			return nil, fmt.Errorf("%w: %q", ErrNotRecognised, string(c))
		}
	}
	return out, nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// luaRule is one `return hs`: the literals the path to it compared
// (type and status of the loop's condition, or phase), and hs.status.
type luaRule struct {
	atoms  map[string]string
	nilled bool // under an `== nil` test
	status string
}

type luaParser struct {
	toks    []luaToken
	pos     int
	hs      string // the table returned
	loopVar string
	inLoop  bool
	rules   []luaRule
}

const maxLuaDepth = 8

// peek is the next token unless it is a string literal.
func (p *luaParser) peek() string {
	if p.pos < len(p.toks) && !p.toks[p.pos].str {
		return p.toks[p.pos].text
	}
	return ""
}

func (p *luaParser) expect(words ...string) error {
	for _, w := range words {
		if p.peek() != w {
			return p.unexpected("expected " + w)
		}
		p.pos++
	}
	return nil
}

func (p *luaParser) unexpected(what string) error {
	if p.pos >= len(p.toks) {
		return fmt.Errorf("%w: %s at the end", ErrNotRecognised, what)
	}
	return fmt.Errorf("%w: %s, found %q", ErrNotRecognised, what, p.toks[p.pos].text)
}

func (p *luaParser) name() (string, error) {
	if p.pos < len(p.toks) && !p.toks[p.pos].str && isName(p.toks[p.pos].text) {
		p.pos++
		return p.toks[p.pos-1].text, nil
	}
	return "", p.unexpected("expected a name")
}

var luaKeywords = map[string]bool{"and": true, "or": true, "not": true, "if": true, "then": true, "else": true, "elseif": true, "end": true,
	"for": true, "in": true, "do": true, "while": true, "repeat": true, "until": true, "return": true, "local": true, "function": true, "nil": true, "true": true, "false": true}

func isName(s string) bool {
	return s != "" && !luaKeywords[s] && isNameByte(s[0], true)
}

// path reads NAME(.NAME)*.
func (p *luaParser) path() (string, error) {
	first, err := p.name()
	if err != nil {
		return "", err
	}
	parts := []string{first}
	for p.peek() == "." {
		p.pos++
		n, err := p.name()
		if err != nil {
			return "", err
		}
		parts = append(parts, n)
	}
	return strings.Join(parts, "."), nil
}

// block runs statements until `end` or the end of the script: returned
// says it ended with `return hs`; status is hs.status after it.
func (p *luaParser) block(atoms map[string]string, depth int, status string) (returned bool, _ string, _ error) {
	if depth > maxLuaDepth {
		return false, "", fmt.Errorf("%w: nested deeper than %d", ErrNotRecognised, maxLuaDepth)
	}
	for p.pos < len(p.toks) && p.peek() != "end" {
		if returned {
			return false, "", p.unexpected("statements after return")
		}
		var err error
		switch p.peek() {
		case "if":
			err = p.ifStatement(atoms, depth, status)
		case "for":
			err = p.forStatement(atoms, depth, status)
		case "return":
			p.pos++
			if p.hs == "" {
				return false, "", fmt.Errorf("%w: return before the result table", ErrNotRecognised)
			}
			if err = p.expect(p.hs); err == nil {
				p.rules = append(p.rules, luaRule{atoms: copyAtoms(atoms), nilled: atoms["nil"] != "", status: status})
				returned = true
			}
		default:
			status, err = p.assignment(status)
		}
		if err != nil {
			return false, "", err
		}
	}
	return returned, status, nil
}

func copyAtoms(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// assignment reads `[local] hs = {}`, `hs.status = "…"` or
// `hs.message = <string or field>`.
func (p *luaParser) assignment(status string) (string, error) {
	if p.peek() == "local" {
		p.pos++
	}
	target, err := p.path()
	if err != nil {
		return "", err
	}
	if err := p.expect("="); err != nil {
		return "", err
	}
	switch {
	case p.hs == "" && !strings.Contains(target, ".") && len(p.rules) == 0 && !p.inLoop:
		p.hs = target
		return status, p.expect("{", "}")
	case target == p.hs+".status":
		if p.pos < len(p.toks) && p.toks[p.pos].str {
			p.pos++
			return p.toks[p.pos-1].text, nil
		}
		return "", p.unexpected("hs.status set to something other than a literal")
	case target == p.hs+".message":
		if p.pos < len(p.toks) && p.toks[p.pos].str {
			p.pos++
			return status, nil
		}
		_, err := p.path()
		return status, err
	}
	return "", fmt.Errorf("%w: an assignment to %s", ErrNotRecognised, target)
}

// ifStatement reads `if cond then block end` (no else, no elseif).
func (p *luaParser) ifStatement(atoms map[string]string, depth int, status string) error {
	p.pos++
	inner := copyAtoms(atoms)
	for {
		if err := p.atom(inner); err != nil {
			return err
		}
		if p.peek() != "and" {
			break
		}
		p.pos++
	}
	if err := p.expect("then"); err != nil {
		return err
	}
	returned, after, err := p.block(inner, depth+1, status)
	if err != nil {
		return err
	}
	if !returned && after != status {
		return fmt.Errorf("%w: an if-block sets hs.status without returning", ErrNotRecognised)
	}
	return p.expect("end")
}

// atom reads `path == "lit"`, `path == nil` or `path ~= nil` on the fields
// recognise knows.
func (p *luaParser) atom(atoms map[string]string) error {
	path, err := p.path()
	if err != nil {
		return err
	}
	op := p.peek()
	if op != "==" && op != "~=" {
		return p.unexpected("expected == or ~=")
	}
	p.pos++
	guards := []string{"obj.status", "obj.status.conditions", "obj.status.phase"}
	if p.peek() == "nil" {
		p.pos++
		if !slices.Contains(guards, path) {
			return fmt.Errorf("%w: a nil test of %s", ErrNotRecognised, path)
		}
		if op == "==" {
			atoms["nil"] = path
		}
		return nil
	}
	if op != "==" || p.pos >= len(p.toks) || !p.toks[p.pos].str {
		return p.unexpected("expected a comparison with a string")
	}
	lit := p.toks[p.pos].text
	p.pos++
	var field string
	switch {
	case p.inLoop && path == p.loopVar+".type":
		field = "type"
	case p.inLoop && path == p.loopVar+".status":
		field = "status"
	case path == "obj.status.phase":
		field = "phase"
	default:
		return fmt.Errorf("%w: a comparison of %s", ErrNotRecognised, path)
	}
	if prev, ok := atoms[field]; ok && prev != lit {
		return fmt.Errorf("%w: %s compared with both %q and %q", ErrNotRecognised, path, prev, lit)
	}
	atoms[field] = lit
	return nil
}

// forStatement reads `for i, c in ipairs(obj.status.conditions) do … end`.
func (p *luaParser) forStatement(atoms map[string]string, depth int, status string) error {
	if p.inLoop {
		return fmt.Errorf("%w: nested loops", ErrNotRecognised)
	}
	p.pos++
	if _, err := p.name(); err != nil {
		return err
	}
	if err := p.expect(","); err != nil {
		return err
	}
	v, err := p.name()
	if err != nil {
		return err
	}
	if err := p.expect("in", "ipairs", "("); err != nil {
		return err
	}
	if path, err := p.path(); err != nil || path != "obj.status.conditions" {
		return fmt.Errorf("%w: a loop over something other than obj.status.conditions", ErrNotRecognised)
	}
	if err := p.expect(")", "do"); err != nil {
		return err
	}
	p.inLoop, p.loopVar = true, v
	returned, after, err := p.block(copyAtoms(atoms), depth+1, status)
	p.inLoop, p.loopVar = false, ""
	if err != nil {
		return err
	}
	if returned || after != status {
		return fmt.Errorf("%w: a loop that returns or sets hs.status whatever the condition", ErrNotRecognised)
	}
	return p.expect("end")
}

// rulesToCEL checks the rules' meaning is certain and writes it as CEL.
func rulesToCEL(rules []luaRule) (celhealth.Expressions, string, error) {
	last := rules[len(rules)-1]
	if len(last.atoms) != 0 || last.status != "Progressing" {
		return celhealth.Expressions{}, "", fmt.Errorf("%w: the status returned when nothing matched is %q, not Progressing", ErrNotRecognised, last.status)
	}
	rules = rules[:len(rules)-1]
	var kept []luaRule
	for _, r := range rules {
		if _, ok := argoToStatus[r.status]; !ok {
			return celhealth.Expressions{}, "", fmt.Errorf("%w: status %q (keyless carries Healthy, Degraded and Progressing)", ErrNotRecognised, r.status)
		}
		if r.nilled {
			if r.status != "Progressing" {
				return celhealth.Expressions{}, "", fmt.Errorf("%w: %s when a field is nil", ErrNotRecognised, r.status)
			}
			continue
		}
		_, typ := r.atoms["type"]
		_, st := r.atoms["status"]
		_, phase := r.atoms["phase"]
		if byPhase, byCondition := phase && !typ && !st, typ && st && !phase; !byPhase && !byCondition {
			return celhealth.Expressions{}, "", fmt.Errorf("%w: a %s decided by something other than one condition's type and status, or the phase", ErrNotRecognised, r.status)
		}
		for k, v := range r.atoms {
			if k != "nil" && strings.IndexFunc(v, func(r rune) bool { return r < ' ' || r == '\'' || r == '\\' || r == 0x7f }) >= 0 {
				return celhealth.Expressions{}, "", fmt.Errorf("%w: a literal with a quote or a control character", ErrNotRecognised)
			}
		}
		kept = append(kept, r)
	}
	for i, a := range kept {
		for _, b := range kept[i+1:] {
			if a.status != b.status && !exclusive(a, b) {
				return celhealth.Expressions{}, "", fmt.Errorf("%w: %s and %s can both hold (Lua decides by the order of the conditions, CEL cannot)", ErrNotRecognised, describeRule(a), describeRule(b))
			}
		}
	}
	var out celhealth.Expressions
	var how []string
	for _, r := range kept {
		var expr string
		if ph, ok := r.atoms["phase"]; ok {
			expr = fmt.Sprintf("status.?phase.orValue('') == '%s'", ph)
		} else {
			expr = fmt.Sprintf("status.?conditions.orValue([]).exists(c, c.type == '%s' && c.status == '%s')", r.atoms["type"], r.atoms["status"])
		}
		how = append(how, describeRule(r))
		switch r.status {
		case "Healthy":
			out.Current = orJoin(out.Current, expr)
		case "Degraded":
			out.Failed = orJoin(out.Failed, expr)
		}
	}
	if out.Current == "" {
		return celhealth.Expressions{}, "", fmt.Errorf("%w: nothing is Healthy", ErrNotRecognised)
	}
	how = append(how, "otherwise Progressing")
	return out, strings.Join(how, ", "), nil
}

func exclusive(a, b luaRule) bool {
	if pa, ok := a.atoms["phase"]; ok {
		pb, ok := b.atoms["phase"]
		return ok && pa != pb
	}
	ta, tb := a.atoms["type"], b.atoms["type"]
	_, bIsCond := b.atoms["type"]
	return bIsCond && ta == tb && a.atoms["status"] != b.atoms["status"]
}

func describeRule(r luaRule) string {
	if ph, ok := r.atoms["phase"]; ok {
		return fmt.Sprintf("phase %s: %s", ph, r.status)
	}
	return fmt.Sprintf("%s=%s: %s", r.atoms["type"], r.atoms["status"], r.status)
}

func orJoin(a, b string) string {
	if a == "" {
		return b
	}
	return a + " || " + b
}
