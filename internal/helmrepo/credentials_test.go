package helmrepo

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
	"github.com/keyless-cd/keyless/internal/credential"
)

func helmSecret(typ corev1.SecretType, label, hosts string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: "team",
		Labels: map[string]string{kv1.CredentialLabel: label}, Annotations: map[string]string{kv1.GitHostAnnotation: hosts}},
		Type: typ, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func dockerConfigJSON(host, user, pass string) string {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return fmt.Sprintf(`{"auths":{"https://other.example":{"auth":%q},%q:{"auth":%q}}}`,
		base64.StdEncoding.EncodeToString([]byte("x:y")), host, auth)
}

func TestCredentialsFromSecret(t *testing.T) {
	const helm, repoURL, ociURL = kv1.CredentialHelm, "https://charts.example.com/stable", "oci://registry.example.com:5000/charts"
	opaque := corev1.SecretTypeOpaque
	cases := []struct {
		name    string
		url     string
		secret  *corev1.Secret
		want    *Credentials
		refused error
	}{
		{"basic auth", repoURL, helmSecret(corev1.SecretTypeBasicAuth, helm, "charts.example.com", map[string]string{"username": "u", "password": "p"}),
			&Credentials{Username: "u", Password: "p", Hosts: []string{"charts.example.com"}}, nil},
		{"token, two hosts", repoURL, helmSecret(opaque, helm, "charts.example.com, CDN.example.com", map[string]string{"token": "t"}),
			&Credentials{Token: "t", Hosts: []string{"charts.example.com", "cdn.example.com"}}, nil},
		{"dockerconfigjson: the registry's entry only", ociURL, helmSecret(corev1.SecretTypeDockerConfigJson, helm, "registry.example.com", map[string]string{corev1.DockerConfigJsonKey: dockerConfigJSON("registry.example.com:5000", "bot", "pw")}),
			&Credentials{Username: "bot", Password: "pw", Hosts: []string{"registry.example.com:5000"}}, nil},
		{"dockerconfigjson without the registry", ociURL, helmSecret(corev1.SecretTypeDockerConfigJson, helm, "registry.example.com", map[string]string{corev1.DockerConfigJsonKey: dockerConfigJSON("registry.example.com", "bot", "pw")}),
			nil, ErrCredential},
		{"not labelled helm", repoURL, helmSecret(opaque, kv1.CredentialGit, "charts.example.com", map[string]string{"token": "t"}), nil, credential.ErrRefused},
		{"bound to another host", repoURL, helmSecret(opaque, helm, "attacker.example", map[string]string{"token": "t"}), nil, credential.ErrRefused},
		{"a ServiceAccount token", repoURL, helmSecret(corev1.SecretTypeServiceAccountToken, helm, "charts.example.com", map[string]string{"token": "t"}), nil, credential.ErrRefused},
		{"empty", repoURL, helmSecret(opaque, helm, "charts.example.com", nil), nil, ErrCredential},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CredentialsFromSecret(tc.url, tc.secret)
			if tc.refused != nil {
				if !errors.Is(err, tc.refused) {
					t.Fatalf("err = %v, want %v", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(*got) != fmt.Sprint(*tc.want) {
				t.Errorf("got %+v, want %+v", *got, *tc.want)
			}
		})
	}
}
