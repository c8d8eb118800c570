// Package v1alpha1 holds the keyless.dev/v1alpha1 API: the Application resource.
// +kubebuilder:object:generate=true
// +groupName=keyless.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of keyless's resources.
	GroupVersion = schema.GroupVersion{Group: "keyless.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this group version.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
