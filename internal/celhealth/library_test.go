package celhealth

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

const libraryFixtures = "testdata/library"

// fixture reads a YAML object as the API server hands it to the
// controller: through JSON, integers as int64.
func fixture(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	y, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	o := &unstructured.Unstructured{}
	if err := o.UnmarshalJSON(j); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return o
}

// verdicts maps a fixture's file name to the status it must get:
// current.yaml, inprogress.yaml, failed.yaml and variants named
// <state>-<what>.yaml.
var verdicts = map[string]status.Status{
	"current":    status.CurrentStatus,
	"inprogress": status.InProgressStatus,
	"failed":     status.FailedStatus,
}

func want(t *testing.T, path string) status.Status {
	t.Helper()
	name := strings.TrimSuffix(filepath.Base(path), ".yaml")
	st, ok := verdicts[strings.SplitN(name, "-", 2)[0]]
	if !ok {
		t.Fatalf("%s: a fixture is named current, inprogress or failed[-variant].yaml", path)
	}
	return st
}

// fixtureDir is where an entry's fixtures live: <kind>.<group>, lower case.
func fixtureDir(e Expressions) string {
	gv, _ := schema.ParseGroupVersion(e.APIVersion)
	return filepath.Join(libraryFixtures, strings.ToLower(e.Kind+"."+gv.Group))
}

// assertVerdicts evaluates every fixture in dir with c and checks the
// verdict its name states, then the same objects without status (as
// created, before their operator reconciled them): InProgress, no error.
func assertVerdicts(t *testing.T, c *Checker, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			o := fixture(t, f)
			st, handled, err := c.Status(o)
			if err != nil || !handled || st != want(t, f) {
				t.Fatalf("Status = %s, handled %v, err %v; want %s", st, handled, err, want(t, f))
			}
			for name, fresh := range map[string]any{"without status": nil, "status: {}": map[string]any{}, "no conditions": map[string]any{"conditions": []any{}}} {
				o := o.DeepCopy()
				if fresh == nil {
					delete(o.Object, "status")
				} else {
					o.Object["status"] = fresh
				}
				st, handled, err := c.Status(o)
				if err != nil || !handled || st != status.InProgressStatus {
					t.Errorf("%s: Status = %s, handled %v, err %v; want InProgress without error", name, st, handled, err)
				}
			}
		})
	}
}

// TestLibrary: the library compiles; every entry has a fixture in each
// state, every fixture is of its entry's kind and gets the verdict its
// name states; no fixture directory is left without an entry.
func TestLibrary(t *testing.T) {
	c, err := DefaultChecker()
	if err != nil {
		t.Fatalf("the built-in library does not compile: %v", err)
	}
	if _, err := Compile(Library()); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{}
	for _, e := range Library() {
		dir := fixtureDir(e)
		dirs[filepath.Base(dir)] = true
		t.Run(filepath.Base(dir), func(t *testing.T) {
			for state := range verdicts {
				if _, err := os.Stat(filepath.Join(dir, state+".yaml")); err != nil {
					t.Errorf("%s %s has no %s fixture: add %s/%s.yaml, an object as its operator writes it", e.APIVersion, e.Kind, state, dir, state)
				}
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
			for _, f := range files {
				o := fixture(t, f)
				if gvk := o.GroupVersionKind(); gvk.Kind != e.Kind || gvk.Group != fixtureGroup(e) {
					t.Errorf("%s is a %s, not a %s %s", f, gvk, e.APIVersion, e.Kind)
				}
			}
			assertVerdicts(t, c, dir)
		})
	}
	entries, err := os.ReadDir(libraryFixtures)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range entries {
		if d.IsDir() && d.Name() != "crossplane" && !dirs[d.Name()] {
			t.Errorf("%s/%s has no library entry", libraryFixtures, d.Name())
		}
	}
}

func fixtureGroup(e Expressions) string {
	gv, _ := schema.ParseGroupVersion(e.APIVersion)
	return gv.Group
}

// TestCrossplaneReadySynced: the documented way to judge Crossplane
// claims and composites, an entry without kind for the XRD's group.
func TestCrossplaneReadySynced(t *testing.T) {
	e := CrossplaneReadySynced
	e.APIVersion = "platform.example.org/v1alpha1"
	c, err := Compile([]Expressions{e})
	if err != nil {
		t.Fatal(err)
	}
	assertVerdicts(t, c, filepath.Join(libraryFixtures, "crossplane"))
}

// TestLibraryOverride: an entry for a library kind, in an Application or
// the controller's file, replaces the library's for that kind only.
func TestLibraryOverride(t *testing.T) {
	library, err := DefaultChecker()
	if err != nil {
		t.Fatal(err)
	}
	failedCert := fixture(t, filepath.Join(libraryFixtures, "certificate.cert-manager.io", "failed.yaml"))
	failedIssuer := fixture(t, filepath.Join(libraryFixtures, "issuer.cert-manager.io", "failed.yaml"))
	for _, tc := range []struct {
		name       string
		user       Expressions
		cert, issr status.Status
	}{
		{"same apiVersion and kind", Expressions{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Current: "true"}, status.CurrentStatus, status.FailedStatus},
		{"another version of the kind", Expressions{APIVersion: "cert-manager.io/v1beta1", Kind: "Certificate", Current: "true"}, status.CurrentStatus, status.FailedStatus},
		{"the whole group", Expressions{APIVersion: "cert-manager.io/v1", Current: "true"}, status.CurrentStatus, status.CurrentStatus},
		{"another kind", Expressions{APIVersion: "cert-manager.io/v1", Kind: "CertificateRequest", Current: "true"}, status.FailedStatus, status.FailedStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, err := Compile([]Expressions{tc.user})
			if err != nil {
				t.Fatal(err)
			}
			m := user.Merge(library)
			for o, want := range map[*unstructured.Unstructured]status.Status{failedCert: tc.cert, failedIssuer: tc.issr} {
				if st, handled, err := m.Status(o); err != nil || !handled || st != want {
					t.Errorf("%s: %s, handled %v, %v; want %s", o.GetKind(), st, handled, err, want)
				}
			}
		})
	}
	// Merging left the library itself as it was.
	if st, _, _ := library.Status(failedCert); st != status.FailedStatus {
		t.Errorf("the library after merges: %s", st)
	}
}

// TestGroupEntries: Flux's matching. An entry without kind covers every
// kind of its group, an entry naming the kind wins over it, the version
// is ignored, and the core group needs a kind.
func TestGroupEntries(t *testing.T) {
	c, err := Compile([]Expressions{
		{APIVersion: "example.org/v1", Current: "true"},
		{APIVersion: "example.org/v1", Kind: "Special", Current: "false", Failed: "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		apiVersion, kind string
		handled          bool
		want             status.Status
	}{
		{"example.org/v1", "Any", true, status.CurrentStatus},
		{"example.org/v2beta1", "Other", true, status.CurrentStatus},
		{"example.org/v1", "Special", true, status.FailedStatus},
		{"example.org/v9", "Special", true, status.FailedStatus},
		{"sub.example.org/v1", "Any", false, ""},
		{"v1", "ConfigMap", false, ""},
	} {
		o := object(t, "apiVersion: "+tc.apiVersion+"\nkind: "+tc.kind+"\nmetadata: {name: a}\n")
		st, handled, err := c.Status(o)
		if err != nil || handled != tc.handled || st != tc.want {
			t.Errorf("%s %s: %s, handled %v, %v; want %s, handled %v", tc.apiVersion, tc.kind, st, handled, err, tc.want, tc.handled)
		}
	}
	for name, exprs := range map[string][]Expressions{
		"core group without kind": {{APIVersion: "v1", Current: "true"}},
		"group twice":             {{APIVersion: "example.org/v1", Current: "true"}, {APIVersion: "example.org/v2", Current: "true"}},
		"kind in two versions":    {{APIVersion: "example.org/v1", Kind: "X", Current: "true"}, {APIVersion: "example.org/v2", Kind: "X", Current: "true"}},
	} {
		if _, err := Compile(exprs); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestMergeGroupEntries: the receiver's entries win as layers: its exact
// entry, else its group entry, else the defaults' exact then group entry.
func TestMergeGroupEntries(t *testing.T) {
	defaults, _ := Compile([]Expressions{
		{APIVersion: "example.org/v1", Kind: "A", Current: "true"},
		{APIVersion: "example.org/v1", Current: "true"},
		{APIVersion: "other.org/v1", Kind: "C", Current: "true"},
	})
	app, _ := Compile([]Expressions{
		{APIVersion: "example.org/v1", Failed: "true", Current: "false"},
		{APIVersion: "other.org/v1", Kind: "D", Failed: "true", Current: "false"},
	})
	m := app.Merge(defaults)
	for _, tc := range []struct {
		apiVersion, kind string
		want             status.Status
	}{
		{"example.org/v1", "A", status.FailedStatus}, // the app's group entry over the defaults' exact one
		{"example.org/v1", "B", status.FailedStatus},
		{"other.org/v1", "C", status.CurrentStatus},
		{"other.org/v1", "D", status.FailedStatus},
	} {
		st, handled, err := m.Status(object(t, "apiVersion: "+tc.apiVersion+"\nkind: "+tc.kind+"\nmetadata: {name: a}\n"))
		if err != nil || !handled || st != tc.want {
			t.Errorf("%s %s: %s, handled %v, %v; want %s", tc.apiVersion, tc.kind, st, handled, err, tc.want)
		}
	}
}

// docBlock is the YAML between <!-- name:begin --> and <!-- name:end -->
// in docs/health.md.
func docBlock(t *testing.T, doc, name string) []Expressions {
	t.Helper()
	begin, end := "<!-- "+name+":begin -->\n```yaml\n", "```\n<!-- "+name+":end -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("docs/health.md has no %q … %q block", begin, end)
	}
	var out []Expressions
	if err := yaml.UnmarshalStrict([]byte(doc[i+len(begin):j]), &out); err != nil {
		t.Fatalf("docs/health.md's %s block: %v", name, err)
	}
	return out
}

// TestLibraryDocumented: docs/health.md lists the library and the
// Crossplane expressions exactly as the code has them, has a table row
// for each library kind, and every other example entry compiles.
func TestLibraryDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/health.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	if got := Library(); !reflect.DeepEqual(docBlock(t, doc, "library"), got) {
		y, _ := yaml.Marshal(got)
		t.Errorf("docs/health.md's library differs from Library(); it is:\n%s", y)
	}
	xp := docBlock(t, doc, "crossplane")
	want := CrossplaneReadySynced
	if len(xp) != 1 {
		t.Fatalf("the crossplane block has %d entries, want 1", len(xp))
	}
	want.APIVersion = xp[0].APIVersion
	if xp[0] != want {
		t.Errorf("docs/health.md's Crossplane entry differs from CrossplaneReadySynced")
	}
	missing := []string{}
	for _, e := range Library() {
		if !strings.Contains(doc, "| `"+e.Kind+"` |") {
			missing = append(missing, e.Kind)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/health.md's table has no row for %v", missing)
	}
	for n, block := range strings.Split(doc, "```yaml\n")[1:] {
		block = block[:strings.Index(block, "```")]
		var list []Expressions
		var app struct {
			Spec struct {
				HealthCheckExprs []Expressions `json:"healthCheckExprs"`
			} `json:"spec"`
		}
		if yaml.Unmarshal([]byte(block), &list) != nil {
			if yaml.Unmarshal([]byte(block), &app) != nil {
				continue
			}
			list = app.Spec.HealthCheckExprs
		}
		if len(list) == 0 || strings.Contains(block, "<expression>") {
			continue
		}
		if _, err := Compile(list); err != nil {
			t.Errorf("docs/health.md's YAML block %d does not compile: %v", n+1, err)
		}
	}
}
