package controller

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

func TestCheckCredential(t *testing.T) {
	secret := func(labelled bool, hosts string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git", Namespace: "team"}}
		if labelled {
			s.Labels = map[string]string{kv1.CredentialLabel: kv1.CredentialGit}
		}
		if hosts != "" {
			s.Annotations = map[string]string{kv1.GitHostAnnotation: hosts}
		}
		return s
	}
	cases := []struct {
		name     string
		secret   *corev1.Secret
		url      string
		insecure bool
		ok       bool
	}{
		{"labelled, for the host", secret(true, "gitlab.example.com"), "https://gitlab.example.com/org/app.git", false, true},
		{"one of several hosts, any case", secret(true, "github.com, GitLab.Example.com"), "https://gitlab.example.com/org/app.git", false, true},
		{"host with port", secret(true, "git.example.com:8443"), "https://git.example.com:8443/app.git", false, true},
		{"ssh scp-like", secret(true, "gitlab.example.com"), "git@gitlab.example.com:org/app.git", false, true},
		{"ssh URL", secret(true, "gitlab.example.com"), "ssh://git@gitlab.example.com:2222/org/app.git", false, true},
		{"any Secret of the namespace", secret(false, "gitlab.example.com"), "https://gitlab.example.com/org/app.git", false, false},
		{"no host named", secret(true, ""), "https://gitlab.example.com/org/app.git", false, false},
		{"another host", secret(true, "gitlab.example.com"), "https://attacker.example/org/app.git", false, false},
		{"a look-alike host", secret(true, "gitlab.example.com"), "https://gitlab.example.com.attacker.example/app.git", false, false},
		{"plain http", secret(true, "127.0.0.1"), "http://127.0.0.1:3000/app.git", false, false},
		{"plain http allowed for loopback tests", secret(true, "127.0.0.1"), "http://127.0.0.1:3000/app.git", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCredential(tc.secret, tc.url, tc.insecure)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrCredentialRefused) {
				t.Fatalf("err = %v, want ErrCredentialRefused", err)
			}
		})
	}
	if err := checkEmbeddedCredential("http://u:tok@git.example.com/a.git", false); !errors.Is(err, ErrCredentialRefused) {
		t.Errorf("a token in a plain http:// URL: err = %v", err)
	}
	if err := checkEmbeddedCredential("https://u:tok@git.example.com/a.git", false); err != nil {
		t.Errorf("a token in an https:// URL: %v", err)
	}
}
