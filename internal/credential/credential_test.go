package credential

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kv1 "github.com/keyless-cd/keyless/api/v1alpha1"
)

func secret(label, hosts string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cred", Namespace: "team"}}
	if label != "" {
		s.Labels = map[string]string{kv1.CredentialLabel: label}
	}
	if hosts != "" {
		s.Annotations = map[string]string{kv1.GitHostAnnotation: hosts}
	}
	return s
}

func saToken(label, hosts string) *corev1.Secret {
	s := secret(label, hosts)
	s.Type = corev1.SecretTypeServiceAccountToken
	return s
}

func TestCheck(t *testing.T) {
	const git, forge, notification, helm = kv1.CredentialGit, kv1.CredentialForge, kv1.CredentialNotification, kv1.CredentialHelm
	cases := []struct {
		name     string
		secret   *corev1.Secret
		use      Use
		url      string
		insecure bool
		ok       bool
	}{
		{"labelled, for the host", secret(git, "gitlab.example.com"), Git, "https://gitlab.example.com/org/app.git", false, true},
		{"one of several hosts, any case", secret(git, "github.com, GitLab.Example.com"), Git, "https://gitlab.example.com/org/app.git", false, true},
		{"host with port", secret(git, "git.example.com:8443"), Git, "https://git.example.com:8443/app.git", false, true},
		{"host with another port", secret(git, "git.example.com:8443"), Git, "https://git.example.com:9443/app.git", false, false},
		{"ssh scp-like", secret(git, "gitlab.example.com"), Git, "git@gitlab.example.com:org/app.git", false, true},
		{"ssh URL", secret(git, "gitlab.example.com"), Git, "ssh://git@gitlab.example.com:2222/org/app.git", false, true},
		{"IPv6 host any port", secret(git, "[fd00::1]"), Git, "https://[fd00::1]:8443/app.git", false, true},
		{"any Secret of the namespace", secret("", "gitlab.example.com"), Git, "https://gitlab.example.com/org/app.git", false, false},
		{"no host named", secret(git, ""), Git, "https://gitlab.example.com/org/app.git", false, false},
		{"another host", secret(git, "gitlab.example.com"), Git, "https://attacker.example/org/app.git", false, false},
		{"a look-alike host", secret(git, "gitlab.example.com"), Git, "https://gitlab.example.com.attacker.example/app.git", false, false},
		{"plain http", secret(git, "127.0.0.1"), Git, "http://127.0.0.1:3000/app.git", false, false},
		{"plain http allowed for loopback tests", secret(git, "127.0.0.1"), Git, "http://127.0.0.1:3000/app.git", true, true},
		{"a ServiceAccount token Secret, labelled and bound", saToken(git, "gitlab.example.com"), Git, "https://gitlab.example.com/org/app.git", false, false},

		{"forge token, labelled and bound", secret(forge, "gitea.example.com"), Forge, "https://gitea.example.com/org/app.git", false, true},
		{"forge token without a label", secret("", "gitea.example.com"), Forge, "https://gitea.example.com/org/app.git", false, false},
		{"a Git credential as forge token", secret(git, "gitea.example.com"), Forge, "https://gitea.example.com/org/app.git", false, false},
		{"forge token for another host", secret(forge, "gitea.example.com"), Forge, "https://attacker.example/org/app.git", false, false},
		{"forge token over plain http", secret(forge, "gitea.example.com"), Forge, "http://gitea.example.com/org/app.git", false, false},
		{"forge token, ServiceAccount token", saToken(forge, "gitea.example.com"), Forge, "https://gitea.example.com/org/app.git", false, false},
		{"a forge token as Git credential", secret(forge, "gitea.example.com"), Git, "https://gitea.example.com/org/app.git", false, false},

		{"helm, labelled and bound", secret(helm, "charts.example.com"), Helm, "https://charts.example.com/stable", false, true},
		{"helm, an OCI registry", secret(helm, "registry.example.com"), Helm, "oci://registry.example.com/charts", false, true},
		{"helm for another host", secret(helm, "charts.example.com"), Helm, "oci://attacker.example/charts", false, false},
		{"a Git credential as helm", secret(git, "charts.example.com"), Helm, "https://charts.example.com/stable", false, false},

		{"notification, labelled", secret(notification, ""), Notification, "", false, true},
		{"notification without a label", secret("", ""), Notification, "", false, false},
		{"a Git credential as notification", secret(git, "gitea.example.com"), Notification, "", false, false},
		{"notification, ServiceAccount token", saToken(notification, ""), Notification, "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.secret, tc.use, "spec.field", tc.url, tc.insecure)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("err = %v, want ErrRefused", err)
				}
				if !strings.Contains(err.Error(), "team/cred") || !strings.Contains(err.Error(), "spec.field") {
					t.Errorf("the error names neither the Secret nor the field: %v", err)
				}
			}
		})
	}
}

func TestCheckEmbedded(t *testing.T) {
	if err := CheckEmbedded("http://u:tok@git.example.com/a.git", false); !errors.Is(err, ErrRefused) {
		t.Errorf("a token in a plain http:// URL: err = %v", err)
	}
	if err := CheckEmbedded("https://u:tok@git.example.com/a.git", false); err != nil {
		t.Errorf("a token in an https:// URL: %v", err)
	}
	if err := CheckEmbedded("http://u:tok@127.0.0.1/a.git", true); err != nil {
		t.Errorf("allowed insecure: %v", err)
	}
}

func TestReadable(t *testing.T) {
	if err := Readable(saToken("", ""), "spec.decryption.secretRef"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "spec.decryption.secretRef") {
		t.Errorf("a ServiceAccount token Secret: err = %v", err)
	}
	if err := Readable(secret("", ""), "spec.decryption.secretRef"); err != nil {
		t.Errorf("an Opaque Secret: %v", err)
	}
}
