package artifact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors [Parse] wraps, for callers that test with [errors.Is]. The error
// text around them names the field, its path and the fix.
var (
	// ErrFormatVersion means format_version is missing or not
	// [FormatVersion].
	ErrFormatVersion = errors.New("unsupported format version")
	// ErrPasswordField means the file has a field named "password".
	ErrPasswordField = errors.New("password field not allowed")
	// ErrUnknownField means the file has a field the format does not define.
	ErrUnknownField = errors.New("unknown field")
)

// Load reads the router file at path, parses it and validates it. Errors
// name the path. Load does not apply defaults; call
// [Topology.WithDefaults] on the result.
func Load(path string) (Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Topology{}, fmt.Errorf("load router topology: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return Topology{}, fmt.Errorf("load router topology %s: %w", path, err)
	}
	if err := t.Validate(); err != nil {
		return Topology{}, fmt.Errorf("load router topology %s: %w", path, err)
	}
	return t, nil
}

// Parse decodes one router file. It is strict: the input must be UTF-8
// holding exactly one JSON object with format_version [FormatVersion]; a
// field the format does not define, a field given twice, a value of the wrong
// JSON type and a field named "password" anywhere are errors naming the field
// and its path, such as
//
//	nodes[1]: unknown field "pasword_env" (did you mean "password_env"?)
//
// Parse does not validate values (durations, enums, references between
// nodes and routes) and does not apply defaults: call [Topology.Validate],
// or use [Load], which does both reading and validating.
func Parse(data []byte) (Topology, error) {
	if err := check(data); err != nil {
		return Topology{}, fmt.Errorf("parse router topology: %w", err)
	}
	// check has proved the shape, field names and types, so this decode
	// only fills the struct; it stays strict in case the two ever disagree.
	var t Topology
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Topology{}, fmt.Errorf("parse router topology: %w", err)
	}
	return t, nil
}

// check walks data token by token against the Topology type, collecting
// every unknown, duplicate, mistyped and password field with its path.
// encoding/json alone cannot do this: it reports only the first unknown
// field, without a path, matches field names case-insensitively and lets a
// duplicate field silently overwrite the first.
func check(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("the file is not valid UTF-8")
	}
	if bytes.HasPrefix(data, []byte("\ufeff")) {
		return errors.New("the file starts with a byte order mark; save it as UTF-8 without one")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("the file is empty; it must hold one JSON object with \"format_version\": 1")
	}
	s := &checker{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	s.dec.UseNumber()
	tok, err := s.dec.Token()
	if err != nil {
		return s.syntax(err)
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("the file must hold one JSON object, found %s", describe(tok))
	}
	if err := s.object("", reflect.TypeFor[Topology]()); err != nil {
		return err
	}
	end := s.dec.InputOffset()
	if _, err := s.dec.Token(); err != io.EOF {
		rest := bytes.TrimLeft(s.data[end:], " \t\r\n")
		line, col := position(s.data, int64(len(s.data)-len(rest)+1))
		return fmt.Errorf("unexpected data after the topology object at line %d, column %d; the file must hold exactly one JSON object", line, col)
	}

	// A password is reported before anything else: it is a leaked secret
	// whatever else is wrong. A version mismatch comes next, because the
	// unknown fields of a newer format are a symptom of it.
	if len(s.passwords) > 0 {
		return errors.Join(s.passwords...)
	}
	if err := s.checkVersion(); err != nil {
		return err
	}
	return errors.Join(s.problems...)
}

// maxDepth bounds the nesting of objects and arrays. The format itself
// nests four deep (routes[0].nodes[0]); the bound stops a hostile file from
// exhausting the stack or memory.
const maxDepth = 32

// checker holds the state of one check.
type checker struct {
	data      []byte
	dec       *json.Decoder
	depth     int     // objects and arrays open
	passwords []error // fields named "password"
	problems  []error // unknown, duplicate and mistyped fields, in file order
	version   versionState
	versionN  json.Number // the format_version found, if an integer
}

// versionState records what the file's format_version was.
type versionState int

const (
	versionMissing  versionState = iota // absent or null
	versionMistyped                     // not an integer: a type problem
	versionFound                        // an integer, in versionN
)

// versionToken records the format_version token.
func (s *checker) versionToken(tok json.Token) {
	switch n, ok := tok.(json.Number); {
	case tok == nil:
		s.version = versionMissing
	case ok && isInteger(n):
		s.version, s.versionN = versionFound, n
	default:
		s.version = versionMistyped
	}
}

// checkVersion reports a missing or unsupported format_version.
func (s *checker) checkVersion() error {
	switch {
	case s.version == versionMissing:
		return fmt.Errorf("%w: format_version is missing; this build reads format_version %d, add \"format_version\": %d", ErrFormatVersion, FormatVersion, FormatVersion)
	case s.version == versionFound && s.versionN != json.Number(strconv.Itoa(FormatVersion)):
		return fmt.Errorf("%w: the file has format_version %s, this build reads format_version %d; write the file with a matching provider or upgrade routerlib", ErrFormatVersion, s.versionN, FormatVersion)
	}
	return nil
}

// isInteger reports whether n is an integer that fits in an int64.
func isInteger(n json.Number) bool {
	_, err := strconv.ParseInt(string(n), 10, 64)
	return err == nil
}

// value checks the next JSON value against t; a nil t means the value is
// not part of the format and is only searched for password fields. It
// returns an error only when the JSON itself is malformed.
func (s *checker) value(path string, t reflect.Type) error {
	tok, err := s.dec.Token()
	if err != nil {
		return s.syntax(err)
	}
	if path == "format_version" {
		s.versionToken(tok)
	}
	if tok == nil || t == nil {
		// null leaves a field unset, as if it were absent.
		return s.skip(tok, path)
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' && t.Kind() == reflect.Struct {
			return s.object(path, t)
		}
		if v == '[' && t.Kind() == reflect.Slice {
			return s.array(path, t.Elem())
		}
	case string:
		if t.Kind() == reflect.String {
			return nil
		}
	case bool:
		if t.Kind() == reflect.Bool {
			return nil
		}
	case json.Number:
		switch t.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64:
			if _, err := strconv.ParseInt(string(v), 10, t.Bits()); err != nil {
				s.problems = append(s.problems, fmt.Errorf("%s: expected an integer from %d to %d, found %s", path, minInt(t.Bits()), maxInt(t.Bits()), describe(v)))
			}
			return nil
		}
	}
	s.problems = append(s.problems, fmt.Errorf("%s: expected %s, found %s", path, kindName(t), describe(tok)))
	return s.skip(tok, path)
}

// skip consumes the rest of a value whose first token is tok, still looking
// for password fields inside it.
func (s *checker) skip(tok json.Token, path string) error {
	switch tok {
	case json.Delim('{'):
		return s.object(path, nil)
	case json.Delim('['):
		return s.array(path, nil)
	}
	return nil
}

// object checks the members of an object whose '{' has been read, against
// struct type t (nil for a value outside the format).
func (s *checker) object(path string, t reflect.Type) error {
	if err := s.enter(path); err != nil {
		return err
	}
	defer s.leave()
	var fields map[string]reflect.Type
	if t != nil {
		fields = jsonFields(t)
	}
	seen := make(map[string]bool)
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return s.syntax(err)
		}
		key := tok.(string) // the decoder guarantees a string key here
		child := join(path, key)
		if strings.EqualFold(key, "password") {
			s.passwords = append(s.passwords, fmt.Errorf("%s: %w: secrets never go in the router file; set password_env to the name of an environment variable holding the password, or passfile to the path of a .pgpass file", join(truncate(path), key), ErrPasswordField))
			if err := s.value(child, nil); err != nil {
				return err
			}
			continue
		}
		var ft reflect.Type
		if t != nil {
			if seen[key] {
				s.problems = append(s.problems, fmt.Errorf("%s: duplicate field %s; give each field once", where(path), quote(key)))
			}
			seen[key] = true
			var ok bool
			if ft, ok = fields[key]; !ok {
				s.problems = append(s.problems, fmt.Errorf("%s: %w %s%s", where(path), ErrUnknownField, quote(key), suggest(key, fields)))
			}
		}
		if err := s.value(child, ft); err != nil {
			return err
		}
	}
	return s.closing()
}

// array checks the elements of an array whose '[' has been read against
// elem (nil for a value outside the format).
func (s *checker) array(path string, elem reflect.Type) error {
	if err := s.enter(path); err != nil {
		return err
	}
	defer s.leave()
	for i := 0; s.dec.More(); i++ {
		if err := s.value(fmt.Sprintf("%s[%d]", path, i), elem); err != nil {
			return err
		}
	}
	return s.closing()
}

// enter records an object or array opening at path.
func (s *checker) enter(path string) error {
	s.depth++
	if s.depth > maxDepth {
		return fmt.Errorf("%s: objects and arrays nest more than %d deep", truncate(path), maxDepth)
	}
	return nil
}

// leave records an object or array closing.
func (s *checker) leave() { s.depth-- }

// closing consumes the '}' or ']' that ends an object or array.
func (s *checker) closing() error {
	if _, err := s.dec.Token(); err != nil {
		return s.syntax(err)
	}
	return nil
}

// syntax turns a decoder error into one that gives the line and column.
func (s *checker) syntax(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("unexpected end of file; the JSON object is not closed")
	}
	if se, ok := err.(*json.SyntaxError); ok {
		// The offsets of the streaming decoder's errors are not consistent
		// (some point at the bad byte, some at the start of its value);
		// Unmarshal validates the whole input first and always points just
		// past the bad byte.
		var full *json.SyntaxError
		if errors.As(json.Unmarshal(s.data, new(json.RawMessage)), &full) {
			se = full
		}
		line, col := position(s.data, se.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	}
	return err
}

// position returns the 1-based line and column of the byte before offset,
// the byte a decoder error points at.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 1), int64(len(data)))
	before := data[:offset-1]
	line = bytes.Count(before, []byte("\n")) + 1
	col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return line, col
}

// jsonFields maps the JSON names of struct type t's fields to their types.
// Deriving the names from the struct tags keeps one definition of the
// format.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields[name] = f.Type
	}
	return fields
}

// suggest returns a "did you mean" hint for a misspelt field name, or "".
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 0
	for name := range fields {
		d := distance(strings.ToLower(key), name)
		if best == "" || d < bestDist || d == bestDist && name < best {
			best, bestDist = name, d
		}
	}
	// Within two edits, and a small share of the name: "nodez" is a slip
	// for "nodes", but "foo" is not one for "pool".
	if best == "" || bestDist > 2 || 3*bestDist > len(key) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// join appends a field name to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// quote quotes a field name for a message, shortened if it is long.
func quote(key string) string {
	short := shorten(key, 64)
	if short == key {
		return strconv.Quote(key)
	}
	return strconv.Quote(short) + "…"
}

// truncate shortens a path for a message.
func truncate(path string) string {
	if short := shorten(path, 200); short != path {
		return short + "…"
	}
	return path
}

// shorten returns at most the first n bytes of s, cut at a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// where names a path in a message, the top level included.
func where(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// kindName names the JSON type a Go type is decoded from.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Slice:
		return "an array"
	default:
		return "an object"
	}
}

// describe names a JSON token in a message, quoting short scalars.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		if len(v) > 40 {
			return "a string"
		}
		return "the string " + strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return "the number " + string(v)
	}
	return fmt.Sprint(tok)
}

// minInt and maxInt are the bounds of a signed integer of the given size.
func minInt(bits int) int64 { return -1 << (bits - 1) }
func maxInt(bits int) int64 { return 1<<(bits-1) - 1 }
