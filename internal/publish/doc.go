// Package publish is what `keyless publish` and `keyless bump --artifact`
// do: pack a folder as a Flux-format OCI artifact (internal/ociartifact),
// annotate it with where it came from (the source repository, the revision
// and the CI job, read from the CI platform's environment or the folder's
// Git checkout), push it, and move a tag of an artifact already pushed (a
// promotion without a Git commit).
//
// The registry is reached over TLS; plain HTTP only with
// RegistryOptions.AllowInsecureHTTP (loopback tests). Credentials come from
// the options (a CI job's registry login), else from the Docker
// configuration (~/.docker/config.json, credential helpers included), and
// are sent to that registry's host only.
package publish
