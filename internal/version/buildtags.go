package version

// BuildTags are the build tags of every keyless binary: make build, make
// release (hack/internal/gobuild) and the benchmarks' builds use them, and
// the Makefile's BUILD_TAGS must equal them (TestMakefileBuildTags).
//
// kustomize_disable_go_plugin_support leaves out kustomize's loader of Go
// plugins (keyless never loads one): linking the standard "plugin" package
// makes the linker export every symbol dynamically — 30 MB of .dynsym and
// .dynstr, a 234 MB binary instead of 166 MB, more of it paged in at every
// start, render children included (docs/benchmarks.md).
const BuildTags = "kustomize_disable_go_plugin_support"
