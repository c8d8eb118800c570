package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/util/jsonpath"
)

// kubectl's custom-columns output (-o custom-columns=HEADER:PATH,… and
// -o custom-columns-file=FILE), as `kubectl get` prints it: one header
// row, then one row per object, each cell the JSONPath's results joined
// by commas, "<none>" when it finds nothing. Written here rather than
// imported from k8s.io/kubectl/pkg/cmd/get, whose package init (its help
// texts, rendered through markdown and the translations at start-up) every
// keyless process paid — render children included.

// Output formats of the custom-columns printer.
const (
	customColumnsFormat     = "custom-columns"
	customColumnsFileFormat = "custom-columns-file"
)

// customColumnsFormats are the -o values of the custom-columns printer.
var customColumnsFormats = []string{customColumnsFormat, customColumnsFileFormat}

// errNoColumns is a custom-columns format with no columns.
var errNoColumns = errors.New("custom-columns format specified but no custom columns given")

// relaxedPath turns kubectl's relaxed column paths (name1.name2,
// .name1.name2, {name1.name2}, {.name1.name2}) into a JSONPath template.
var relaxedPath = regexp.MustCompile(`^\{\.?([^{}]+)\}$|^\.?([^{}]+)$`)

func relaxedJSONPath(expr string) (string, error) {
	m := relaxedPath.FindStringSubmatch(expr)
	if m == nil {
		return "", fmt.Errorf("column path %q: want 'name1.name2', '.name1.name2', '{name1.name2}' or '{.name1.name2}'", expr)
	}
	field := m[1]
	if field == "" {
		field = m[2]
	}
	return "{." + field + "}", nil
}

// customColumn is one column: its header and its parsed path.
type customColumn struct {
	header string
	path   *jsonpath.JSONPath
}

// customColumnsPrinter prints objects as kubectl's custom columns.
type customColumnsPrinter struct {
	columns   []customColumn
	noHeaders bool
	// headed: the header row is out (a watch prints it once).
	headed bool
}

// newCustomColumnsPrinter parses format ("custom-columns=SPEC" or
// "custom-columns-file=FILE"); noHeaders applies to the spec form only, as
// in kubectl.
func newCustomColumnsPrinter(format string, noHeaders bool) (*customColumnsPrinter, error) {
	name, value, _ := strings.Cut(format, "=")
	if value == "" {
		return nil, errNoColumns
	}
	var headers, paths []string
	switch name {
	case customColumnsFormat:
		for _, part := range strings.Split(value, ",") {
			header, path, ok := strings.Cut(part, ":")
			if !ok {
				return nil, fmt.Errorf("custom-columns %q: want <header>:<json-path-expr>", part)
			}
			headers, paths = append(headers, header), append(paths, path)
		}
	case customColumnsFileFormat:
		var err error
		if headers, paths, err = readColumnsFile(value); err != nil {
			return nil, err
		}
		noHeaders = false
	default:
		return nil, fmt.Errorf("output format %q: want %s", name, strings.Join(customColumnsFormats, " or "))
	}
	p := &customColumnsPrinter{noHeaders: noHeaders}
	for i, h := range headers {
		tmpl, err := relaxedJSONPath(paths[i])
		if err != nil {
			return nil, err
		}
		jp := jsonpath.New(h).AllowMissingKeys(true)
		if err := jp.Parse(tmpl); err != nil {
			return nil, fmt.Errorf("column %s: %w", h, err)
		}
		p.columns = append(p.columns, customColumn{header: h, path: jp})
	}
	return p, nil
}

// readColumnsFile reads a custom-columns-file: one line of headers, one
// line of paths, separated by white space.
func readColumnsFile(path string) (headers, paths []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("custom-columns-file: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	if !sc.Scan() {
		return nil, nil, fmt.Errorf("custom-columns-file %s: missing the header line (one line of headers, one line of paths)", path)
	}
	headers = strings.Fields(sc.Text())
	if !sc.Scan() {
		return nil, nil, fmt.Errorf("custom-columns-file %s: missing the line of paths (one line of headers, one line of paths)", path)
	}
	paths = strings.Fields(sc.Text())
	if len(headers) != len(paths) {
		return nil, nil, fmt.Errorf("custom-columns-file %s: %d headers but %d paths", path, len(headers), len(paths))
	}
	return headers, paths, nil
}

// PrintObj prints obj (an unstructured object or list) as rows.
func (p *customColumnsPrinter) PrintObj(obj runtime.Object, out io.Writer) error {
	w := printers.GetNewTabWriter(out)
	defer func() { _ = w.Flush() }()
	if !p.noHeaders && !p.headed {
		headers := make([]string, len(p.columns))
		for i, c := range p.columns {
			headers[i] = c.header
		}
		_, _ = fmt.Fprintln(w, strings.Join(headers, "\t"))
		p.headed = true
	}
	objs := []runtime.Object{obj}
	if meta.IsListType(obj) {
		var err error
		if objs, err = meta.ExtractList(obj); err != nil {
			return err
		}
	}
	for _, o := range objs {
		u, ok := o.(runtime.Unstructured)
		if !ok {
			return fmt.Errorf("custom-columns: cannot print %T", o)
		}
		if err := p.printRow(w, u.UnstructuredContent()); err != nil {
			return err
		}
	}
	return nil
}

func (p *customColumnsPrinter) printRow(w io.Writer, content map[string]any) error {
	cells := make([]string, len(p.columns))
	for i, c := range p.columns {
		results, err := c.path.FindResults(content)
		if err != nil {
			return fmt.Errorf("column %s: %w", c.header, err)
		}
		var values []string
		for _, r := range results {
			for _, v := range r {
				values = append(values, printers.EscapeTerminal(fmt.Sprint(v.Interface())))
			}
		}
		if len(values) == 0 {
			values = []string{"<none>"}
		}
		cells[i] = strings.Join(values, ",")
	}
	_, err := fmt.Fprintln(w, strings.Join(cells, "\t"))
	return err
}
