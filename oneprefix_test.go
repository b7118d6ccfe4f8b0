package ztm_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ztmkit/ztm/internal/errfmt"
	"github.com/ztmkit/ztm/internal/zerotest"
)

// One prefix per error: a message names each package once ("est: enroll:
// refused: …", never "est: est: …" nor "file: key: file: keystore: …").
// TestOnePrefixStatic reads every non-test file of the module; the runtime
// walks (runZeroCases, TestOnePrefixRuntime) check the messages real error
// paths return, where the wrapped error is only known at run time.

const modulePath = "github.com/ztmkit/ztm"

// unknownPart stands, in a message shape, for text only known at run time.
const unknownPart = zerotest.RuntimeText

// srcFile is one parsed non-test file of the module.
type srcFile struct {
	name    string            // module-relative
	pkg     string            // import path
	f       *ast.File         //
	imports map[string]string // local name -> import path
}

// moduleSource is the module's non-test code, with what the check needs
// to know about its errors.
type moduleSource struct {
	fset      *token.FileSet
	files     []*srcFile
	sentinels map[string]string // "importpath.Name" -> message of a package-level errors.New
	typed     map[string]string // "importpath.Type" -> message prefix of its Error method
	known     map[string]bool   // package prefixes: package names and sentinels' first parts
}

// parseModule parses every non-test .go file under root (nested modules
// and testdata left out).
func parseModule(root string) (*moduleSource, error) {
	m := &moduleSource{fset: token.NewFileSet(), sentinels: map[string]string{},
		typed: map[string]string{}, known: map[string]bool{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			base := d.Name()
			if p != root && (base == "testdata" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && p != root {
				return filepath.SkipDir // a nested module is checked by its own tests
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(m.fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		pkg := modulePath
		if dir := filepath.ToSlash(filepath.Dir(rel)); dir != "." {
			pkg += "/" + dir
		}
		sf := &srcFile{name: filepath.ToSlash(rel), pkg: pkg, f: f, imports: map[string]string{}}
		for _, im := range f.Imports {
			ip, _ := strconv.Unquote(im.Path.Value)
			name := path.Base(ip)
			if im.Name != nil {
				name = im.Name.Name
			}
			sf.imports[name] = ip
		}
		m.files = append(m.files, sf)
		if f.Name.Name != "main" {
			m.known[f.Name.Name] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, sf := range m.files {
		m.collectErrors(sf)
	}
	for _, msg := range m.sentinels {
		if i := strings.Index(msg, ": "); i > 0 {
			m.known[msg[:i]] = true
		}
	}
	return m, nil
}

// collectErrors records sf's package-level sentinels and the message
// prefixes of its error types.
func (m *moduleSource) collectErrors(sf *srcFile) {
	for _, decl := range sf.f.Decls {
		switch d := decl.(type) {
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				vs, ok := spec.(*ast.ValueSpec)
				if !ok || d.Tok != token.VAR {
					continue
				}
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						break
					}
					if msg, ok := errorsNewMessage(sf, vs.Values[i]); ok {
						m.sentinels[sf.pkg+"."+name.Name] = msg
					}
				}
			}
		case *ast.FuncDecl:
			if d.Name.Name != "Error" || d.Recv == nil || len(d.Recv.List) != 1 || d.Body == nil {
				continue
			}
			typ := d.Recv.List[0].Type
			if st, ok := typ.(*ast.StarExpr); ok {
				typ = st.X
			}
			id, ok := typ.(*ast.Ident)
			if !ok {
				continue
			}
			if p := firstLiteralPrefix(d.Body); p != "" {
				m.typed[sf.pkg+"."+id.Name] = p
			}
		}
	}
}

// errorsNewMessage returns the message of errors.New("…").
func errorsNewMessage(sf *srcFile, e ast.Expr) (string, bool) {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 || !isFunc(sf, call.Fun, "errors", "New") {
		return "", false
	}
	return stringLit(call.Args[0])
}

// firstLiteralPrefix returns the "pkg: " start of the first string literal
// in an Error method, or "".
func firstLiteralPrefix(body *ast.BlockStmt) string {
	var first string
	ast.Inspect(body, func(n ast.Node) bool {
		if first != "" {
			return false
		}
		if s, ok := stringLit(n); ok {
			first = s
		}
		return first == ""
	})
	i := strings.Index(first, ": ")
	if i <= 0 || strings.ContainsAny(first[:i], "%\"") {
		return ""
	}
	return first[:i+2]
}

func stringLit(n any) (string, bool) {
	lit, ok := n.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// isFunc reports whether fun is pkgName.name for the standard package (or
// module-relative internal package) pkgName.
func isFunc(sf *srcFile, fun ast.Expr, pkg, name string) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && sf.imports[id.Name] == pkg
}

// operandMessage is what an error operand of fmt.Errorf is known to say:
// a sentinel's message, an error type's prefix, or unknownPart.
func (m *moduleSource) operandMessage(sf *srcFile, e ast.Expr) string {
	key := ""
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
		e = u.X
	}
	composite := false
	if cl, ok := e.(*ast.CompositeLit); ok {
		e, composite = cl.Type, true
	}
	switch x := e.(type) {
	case *ast.Ident:
		key = sf.pkg + "." + x.Name
	case *ast.SelectorExpr:
		if id, ok := x.X.(*ast.Ident); ok && sf.imports[id.Name] != "" {
			key = sf.imports[id.Name] + "." + x.Sel.Name
		}
	}
	if composite {
		if p, ok := m.typed[key]; ok {
			return p + unknownPart
		}
		return unknownPart
	}
	if msg, ok := m.sentinels[key]; ok {
		return msg
	}
	return unknownPart
}

// shape renders fmt.Errorf(format, args...) with what is known of its
// operands: sentinels' messages, error types' prefixes, else unknownPart.
func (m *moduleSource) shape(sf *srcFile, format string, args []ast.Expr) string {
	var b strings.Builder
	arg := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0123456789.[]*", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			break
		}
		verb := format[j]
		i = j
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if arg < len(args) && strings.IndexByte("vsw", verb) >= 0 {
			b.WriteString(m.operandMessage(sf, args[arg]))
		} else {
			b.WriteString(unknownPart)
		}
		arg++
	}
	return b.String()
}

// TestOnePrefixStatic: no errors.New or fmt.Errorf in the module's code
// makes a message that names a package twice, counting what its %w, %v and
// %s operands are known to say (sentinels, error types). errfmt.Errorf
// calls are read with its rewriting applied.
func TestOnePrefixStatic(t *testing.T) {
	t.Parallel()
	m, err := moduleOnce()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.sentinels) < 50 || len(m.typed) < 10 {
		t.Fatalf("found %d sentinels and %d error types: the scan is broken", len(m.sentinels), len(m.typed))
	}
	var bad []string
	for _, sf := range m.files {
		ast.Inspect(sf.f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			msg, ok := m.callMessage(sf, call)
			if !ok {
				return true
			}
			if p := zerotest.Doubled(msg, m.known); p != "" {
				pos := m.fset.Position(call.Pos())
				bad = append(bad, sf.name+":"+strconv.Itoa(pos.Line)+": "+strconv.Quote(p)+" twice in "+
					strconv.Quote(strings.ReplaceAll(msg, unknownPart, "…")))
			}
			return true
		})
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// callMessage returns the message shape of an errors.New, fmt.Errorf or
// errfmt.Errorf call with a literal format.
func (m *moduleSource) callMessage(sf *srcFile, call *ast.CallExpr) (string, bool) {
	switch {
	case isFunc(sf, call.Fun, "errors", "New") && len(call.Args) == 1:
		return stringLit(call.Args[0])
	case isFunc(sf, call.Fun, "fmt", "Errorf") && len(call.Args) >= 1:
		format, ok := stringLit(call.Args[0])
		if !ok {
			return "", false
		}
		return m.shape(sf, format, call.Args[1:]), true
	case isFunc(sf, call.Fun, modulePath+"/internal/errfmt", "Errorf") && len(call.Args) >= 2:
		prefix, ok1 := stringLit(call.Args[0])
		format, ok2 := stringLit(call.Args[1])
		if !ok1 || !ok2 {
			return "", false
		}
		return errfmt.OnePrefix(prefix, m.shape(sf, format, call.Args[2:])), true
	}
	return "", false
}
