package controller

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/ociartifact"
)

// validateSource refuses what a source of that kind cannot honour:
// spec.sources first made into spec.source (UseRenderedSource).
func validateSource(app *kv1.Application) error {
	if err := app.Spec.UseRenderedSource(); err != nil {
		return err
	}
	if err := validateRefSources(app); err != nil {
		return err
	}
	src := app.Spec.Source
	if src.IsArtifact() {
		return validateArtifactSource(app)
	}
	if src.Chart == "" {
		return validateGitVerify(src.Verify)
	}
	switch {
	case !strings.HasPrefix(src.RepoURL, "https://") && !strings.HasPrefix(src.RepoURL, "http://") && !strings.HasPrefix(src.RepoURL, "oci://"):
		return fmt.Errorf("spec.source.repoURL %q: a chart comes from a Helm repository (https://) or an OCI registry (oci://)", src.RepoURL)
	case src.Path != "":
		return fmt.Errorf("spec.source.path %q: a chart from a repository is rendered whole; remove path (or spec.source.chart to render a folder of Git)", src.Path)
	case src.Verify != nil:
		return errors.New("spec.source.verify checks Git commit signatures; a chart from a repository is pinned by its digest instead: remove verify")
	case app.Spec.CommitStatus != nil:
		return errors.New("spec.commitStatus reports on Git commits; a chart from a repository has none: remove commitStatus")
	case src.Directory != nil:
		return errors.New("spec.source.directory configures a plain folder, not a chart: remove it")
	}
	return nil
}

// validateRefSources keeps spec.sources to what values from Git beside
// the rendered source need: each ref source is a Git repository read for
// values only, named once, and every $ref the rendered source's valueFiles
// use names one.
func validateRefSources(app *kv1.Application) error {
	refs := map[string]bool{}
	for i, src := range app.Spec.Sources {
		if src.Ref == "" {
			continue
		}
		field := fmt.Sprintf("spec.sources[%d]", i)
		switch {
		case refs[src.Ref]:
			return fmt.Errorf("%s: ref %q is used twice", field, src.Ref)
		case src.Chart != "" || strings.HasPrefix(src.RepoURL, "oci://"):
			return fmt.Errorf("%s (ref %s): a values source is a Git repository, not a chart", field, src.Ref)
		case src.Path != "" || src.Helm != nil || src.Directory != nil:
			return fmt.Errorf("%s (ref %s): a values source is only read for $%s/... values files, never rendered: remove path, helm and directory (or render it in an Application of its own)", field, src.Ref, src.Ref)
		case src.Verify != nil:
			return fmt.Errorf("%s (ref %s): verify is not supported on a values source", field, src.Ref)
		}
		refs[src.Ref] = true
	}
	if h := app.Spec.Source.Helm; h != nil {
		for i, vf := range h.ValueFiles {
			if ref, ok := strings.CutPrefix(vf, "$"); ok {
				name, _, _ := strings.Cut(ref, "/")
				if !refs[name] {
					return fmt.Errorf("helm.valueFiles[%d] %q: no spec.sources entry has ref %q", i, vf, name)
				}
			}
		}
	}
	return nil
}

// validateArtifactSource refuses what a folder from an OCI artifact cannot
// honour.
func validateArtifactSource(app *kv1.Application) error {
	src := app.Spec.Source
	if _, err := ociartifact.SplitURL(src.RepoURL); err != nil {
		return fmt.Errorf("spec.source.repoURL: %w", err)
	}
	if t := src.TargetRevision; !ociartifact.ValidTarget(t) {
		return fmt.Errorf("spec.source.targetRevision %q: an artifact is asked for by a tag, a semver range (1.x, >=1.2 <2) or a digest (sha256:…)", t)
	}
	if v := src.Verify; v != nil {
		switch {
		case v.Provider != kv1.VerifyProviderCosign:
			return errors.New("spec.source.verify of an OCI artifact: set provider: cosign (mode head checks Git commits)")
		case v.Mode != "":
			return errors.New("spec.source.verify.mode checks Git commits; an OCI artifact is verified by provider: cosign: remove mode")
		case v.SecretRef == nil && len(v.MatchIdentities) == 0:
			return errors.New("spec.source.verify (cosign): give secretRef (trusted *.pub keys) or matchIdentities (keyless signers), or both")
		case v.Approvals != nil:
			return errors.New("spec.source.verify.approvals checks pull/merge requests of a Git source; an OCI artifact has none: remove approvals")
		}
		for i, id := range v.MatchIdentities {
			if _, err := regexp.Compile(id.Subject); err != nil {
				return fmt.Errorf("spec.source.verify.matchIdentities[%d].subject: %w", i, err)
			}
		}
	}
	switch {
	case app.Spec.CommitStatus != nil:
		return errors.New("spec.commitStatus reports on Git commits; an OCI artifact has none: remove commitStatus")
	}
	return nil
}

// validateGitVerify refuses a Git source's verify that is not mode head
// with a Secret of keys.
func validateGitVerify(v *kv1.VerifySource) error {
	switch {
	case v == nil:
		return nil
	case v.Provider != "" || v.TransparencyLog != "":
		return errors.New("spec.source.verify: provider and transparencyLog verify OCI artifacts; a Git source takes mode: head, secretRef and matchIdentities")
	case v.Approvals != nil && v.Mode == "" && v.SecretRef == nil && len(v.MatchIdentities) == 0:
		return nil // approvals alone
	case v.Mode != "head" || (v.SecretRef == nil && len(v.MatchIdentities) == 0):
		return errors.New("spec.source.verify of a Git source: set mode: head and secretRef (the Secret of trusted *.asc and *.pub keys), matchIdentities (signers of gitsign commits), or both (or approvals alone)")
	}
	for i, id := range v.MatchIdentities {
		if _, err := regexp.Compile(id.Subject); err != nil {
			return fmt.Errorf("spec.source.verify.matchIdentities[%d].subject: %w", i, err)
		}
	}
	return nil
}
